/*
 * Internals shared by volume.c (lifecycle, sector I/O, lock, rekey) and volume_wipe.c (the
 * crypto-erase steps). Not part of the API: nothing outside hypercall-bridge/hv/volume*.c
 * includes this file.
 */
#ifndef CLEAVE_HV_VOLUME_INT_H
#define CLEAVE_HV_VOLUME_INT_H

#include <stdint.h>

#include <openssl/evp.h>

#include "keys.h"
#include "volume.h"

struct volume {
	int dirfd;                  /* the private state dir; every name is relative to it */
	int fd;                     /* the volume file */
	char name[VOLUME_NAME_MAX]; /* file name inside dirfd, no '/' */
	uint64_t file_size;         /* fixed at create */
	struct volume_hdr hdr;      /* the copy last read or written (both copies agree) */
	struct keys_secret *xts;    /* data key; NULL while locked, wiping or erased */
	EVP_CIPHER_CTX *enc, *dec;  /* keyed with xts; NULL together with it */
	uint8_t *bounce;            /* VOLUME_MAX_IO_SECTORS sectors of ciphertext */
};

/* Writes h with seq = current + 1 to copy A, fdatasync, then copy B, fdatasync; adopts it. */
int volume_hdr_commit(struct volume *v, struct volume_hdr *h) __must_check;

/* Reads and decodes both copies from the file: rc[i] is 0 or the decode error of copy i. */
int volume_hdr_read_both(struct volume *v, struct volume_hdr h[2], int rc[2]) __must_check;

/* Wipes the data key and the cipher contexts (which hold its schedule). */
void volume_keys_drop(struct volume *v);

/*
 * Gives v a brand-new identity in its existing file: uuid, root key of epoch, VMK, state
 * ACTIVE, intent cleared, keys loaded. Used by create and provision.
 */
int volume_format(struct volume *v, uint64_t epoch) __must_check;

#endif
