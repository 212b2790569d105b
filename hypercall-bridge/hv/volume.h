/*
 * The corporate volume: one file in a private state directory holding two header copies and an
 * AES-256-XTS encrypted data area of 4096-byte sectors, plus the crash-resumable cryptographic
 * erase that the selective wipe uses. It does not authenticate wipe commands, sign receipts or
 * touch the VM: cleave-hv does that around these calls. Format: hypercall-bridge/VOLUME.md.
 * Every function returns 0 or a negative errno unless stated otherwise.
 */
#ifndef CLEAVE_HV_VOLUME_H
#define CLEAVE_HV_VOLUME_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "volume_hdr.h"

#define VOLUME_MAX_IO_SECTORS 256u            /* one read or write moves at most 1 MiB */
#define VOLUME_MAX_MIB        (1024u * 1024u) /* 1 TiB */
#define VOLUME_NAME_MAX       64

/* Bits of volume_wipe_verify's result. */
enum {
	VOLUME_CHECK_INTENT = 1u << 0,     /* both copies carry the wipe command hash */
	VOLUME_CHECK_HDR_ERASED = 1u << 1, /* both copies valid, ERASED, key blob changed */
	VOLUME_CHECK_KEY_GONE = 1u << 2,   /* root key file of the wiped epoch absent */
	VOLUME_CHECK_NO_UNWRAP = 1u << 3,  /* no available root key unwraps either copy's blob */
	VOLUME_CHECK_MEM_CLEAR = 1u << 4,  /* the handle holds no key material */
	VOLUME_CHECKS_ALL = (1u << 5) - 1,
};

/* Public view of a volume, copied out by volume_info. */
struct volume_info {
	uint32_t state; /* HV_STATE_* of common/wire.h */
	uint64_t seq;
	uint64_t key_epoch;
	uint64_t sectors;
	uint8_t uuid[VOLUME_UUID_LEN];
	int keys_loaded;
};

struct volume;

/*
 * Formats a fresh volume file name (no '/', not "." or "..") of mib MiB of data in the existing
 * directory dir (borrowed), with a new root key epoch 1 and a random VMK, state ACTIVE. Fails
 * with -EEXIST when the file exists. *out is owned by the caller (volume_close).
 */
int volume_create(const char *dir, const char *name, uint64_t mib,
		  struct volume **out) __must_check;

/*
 * Opens an existing volume: reads both header copies, keeps the valid one with the highest seq
 * and rewrites the other from it. When the state is ACTIVE the VMK is unwrapped with the
 * current epoch's root key (-EKEYREJECTED with a wrong key, -ENOENT without one); LOCKED,
 * WIPE_PENDING and ERASED volumes open without keys. -EBADMSG when neither copy is valid.
 * *out is owned by the caller (volume_close).
 */
int volume_open(const char *dir, const char *name, struct volume **out) __must_check;

/* Wipes every key in memory and closes the files. NULL is ignored. */
void volume_close(struct volume *v);

/*
 * Brings the handle back to what volume_open would find now: the newest valid header copy
 * (the other rewritten from it), keys loaded when ACTIVE and dropped otherwise. For a retry
 * after a failed step, whose header write may have reached one copy only. 0 or -errno.
 */
int volume_reload(struct volume *v) __must_check;

/* Copies the current header view into *out (caller storage). */
void volume_info(const struct volume *v, struct volume_info *out);

/*
 * Reads or writes count (1..VOLUME_MAX_IO_SECTORS) sectors starting at sector; buf (borrowed)
 * holds count * 4096 bytes. -EACCES without keys (locked, wiping, erased), -ERANGE beyond the
 * data area. Sectors never written read as zeros. Writes are not synced; see volume_sync.
 */
int volume_read(struct volume *v, uint64_t sector, uint32_t count, void *buf) __must_check;
int volume_write(struct volume *v, uint64_t sector, uint32_t count, const void *buf) __must_check;
int volume_sync(struct volume *v) __must_check;

/* ACTIVE -> LOCKED: records LOCKED in both copies, then wipes the keys in memory. */
int volume_lock(struct volume *v) __must_check;
/* LOCKED -> ACTIVE: unwraps the VMK with the current root key, then records ACTIVE. */
int volume_unlock(struct volume *v) __must_check;

/*
 * Rotates the root key epoch of an ACTIVE volume: new root key file (epoch + 1), the same VMK
 * rewrapped under it in both copies, then the old root key file destroyed. Data is not
 * re-encrypted (see VOLUME.md for what that does and does not protect).
 */
int volume_rekey(struct volume *v) __must_check;
/*
 * The rekey of an order accepted at epoch from, safe to repeat after a crash: when the header
 * already names a later epoch it only destroys the root key files of epoch from and older
 * (leftovers of the interrupted run); otherwise it is volume_rekey. Returns 0 or -errno.
 */
int volume_rekey_from(struct volume *v, uint64_t from) __must_check;

/*
 * Wipe step 1: records WIPE_PENDING and the intent (cmd_hash, borrowed, 32 bytes, not all zero)
 * durably in both copies, then wipes the keys in memory; the volume never unlocks again.
 * Idempotent with the same hash; -EBUSY when a different wipe is already recorded.
 */
int volume_wipe_begin(struct volume *v, const uint8_t cmd_hash[VOLUME_HASH_LEN]) __must_check;

/*
 * Wipe step 2, the cryptographic commit point: destroys the root key file of the epoch (and any
 * older leftovers), then overwrites the wrapped VMK in both copies with random bytes and
 * records ERASED. Idempotent; -EPERM unless WIPE_PENDING or ERASED.
 */
int volume_wipe_destroy(struct volume *v) __must_check;

/*
 * Wipe step 3: re-reads both copies from the file and the state dir and sets *passed to the
 * VOLUME_CHECK_* bits that hold (all of VOLUME_CHECKS_ALL on success). Returns 0 when the
 * checks ran, whatever they found, or -errno when they could not.
 */
int volume_wipe_verify(struct volume *v, uint32_t *passed) __must_check;

/*
 * Wipe step 4: turns an ERASED volume into a fresh empty ACTIVE one in the same file: new
 * uuid, new root key epoch (old + 1), new VMK; the old ciphertext is discarded (hole punched)
 * as best-effort clean-up. -EPERM unless ERASED.
 */
int volume_wipe_provision(struct volume *v) __must_check;

/*
 * Returns 1 when a wipe was recorded and not yet destroyed (WIPE_PENDING; cmd_hash, caller
 * storage or NULL, gets the command hash), 0 otherwise. A caller resumes with wipe_destroy.
 */
int volume_wipe_pending(const struct volume *v, uint8_t cmd_hash[VOLUME_HASH_LEN]);
/* 1 when no root key file of epoch is present (it was destroyed, or never made), else 0. */
int volume_epoch_destroyed(struct volume *v, uint64_t epoch);

/*
 * Tries root (KEYS_ROOT_LEN bytes, borrowed) against the wrapped VMK of both on-disk copies:
 * 0 when either unwraps, -EKEYREJECTED when neither does. For verification and tests.
 */
int volume_try_root_key(struct volume *v, const uint8_t *root) __must_check;

#endif
