/*
 * Internals shared by volume.c (lifecycle, sector I/O, lock, rekey) and volume_wipe.c (the
 * crypto-erase steps). Not part of the API: nothing outside hypercall-bridge/hv/volume*.c
 * includes this file.
 */
#ifndef CLEAVE_HV_VOLUME_INT_H
#define CLEAVE_HV_VOLUME_INT_H

#include <stdint.h>

#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "keys.h"
#include "volume.h"

/*
 * The provider functions behind AES-256-XTS, looked up once per key install and called
 * directly for each sector (volume.c says why not through EVP). cipher holds a reference to the
 * provider, which keeps these functions loaded while the contexts exist.
 */
struct volume_xts_impl {
	EVP_CIPHER *cipher;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *einit;
	OSSL_FUNC_cipher_decrypt_init_fn *dinit;
	OSSL_FUNC_cipher_cipher_fn *run;
};

struct volume {
	int dirfd;                  /* the private state dir; every name is relative to it */
	int fd;                     /* the volume file */
	char name[VOLUME_NAME_MAX]; /* file name inside dirfd, no '/' */
	uint64_t file_size;         /* fixed at create */
	struct volume_hdr hdr;      /* the copy last read or written (both copies agree) */
	struct keys_secret *xts;    /* data key; NULL while locked, wiping or erased */
	struct volume_xts_impl aes; /* set while enc and dec exist, else zero */
	void *enc, *dec;            /* provider contexts keyed with xts; NULL together with it */
	uint8_t *bounce;            /* VOLUME_MAX_IO_SECTORS sectors of ciphertext, page-aligned */
};

/* Writes h with seq = current + 1 to copy A, fdatasync, then copy B, fdatasync; adopts it. */
int volume_hdr_commit(struct volume *v, struct volume_hdr *h) __must_check;

/* Reads and decodes both copies from the file: rc[i] is 0 or the decode error of copy i. */
int volume_hdr_read_both(struct volume *v, struct volume_hdr h[2], int rc[2]) __must_check;

/* Wipes the data key and frees the cipher contexts (the provider cleanses their schedules). */
void volume_keys_drop(struct volume *v);

/*
 * Gives v a brand-new identity in its existing file: uuid, root key of epoch, VMK, state
 * ACTIVE, intent cleared, keys loaded. Used by create and provision.
 */
int volume_format(struct volume *v, uint64_t epoch) __must_check;

#endif
