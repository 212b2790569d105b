/*
 * Cryptographic erase of the corporate volume as separate, idempotent, durable steps (begin,
 * destroy, verify, provision) so that cleave-hv can resume after a crash at any point: the
 * intent is in both header copies before anything is destroyed, and each step only moves the
 * state forward. The data area is never overwritten on the critical path; its cost is a few
 * 4 KiB writes whatever the volume size. Stopping the VM and signing the receipt are not here.
 */
#include "volume_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "durable.h"
#include "log.h"
#include "wire.h"

static int
hash_is_zero(const uint8_t *p)
{
	static const uint8_t zero[VOLUME_HASH_LEN];

	return memcmp(p, zero, sizeof(zero)) == 0;
}

int
volume_wipe_begin(struct volume *v, const uint8_t cmd_hash[VOLUME_HASH_LEN])
{
	struct volume_hdr h = v->hdr;

	if (cmd_hash == NULL || hash_is_zero(cmd_hash))
		return -EINVAL;
	if (v->hdr.state == HV_STATE_WIPE_PENDING || v->hdr.state == HV_STATE_ERASED) {
		volume_keys_drop(v);
		return memcmp(v->hdr.intent_cmd, cmd_hash, VOLUME_HASH_LEN) == 0 ? 0 : -EBUSY;
	}
	/* From here the volume is never unlocked; keys go before the first write. */
	volume_keys_drop(v);
	h.state = HV_STATE_WIPE_PENDING;
	memcpy(h.intent_cmd, cmd_hash, VOLUME_HASH_LEN);
	crypto_sha256(h.wrapped, sizeof(h.wrapped), h.intent_wrap);
	return volume_hdr_commit(v, &h);
}

int
volume_wipe_destroy(struct volume *v)
{
	struct volume_hdr h = v->hdr;
	int err;

	if (v->hdr.state != HV_STATE_WIPE_PENDING && v->hdr.state != HV_STATE_ERASED)
		return -EPERM;
	volume_keys_drop(v);
	/*
	 * The commit point: without the root key no copy of the wrapped VMK can be opened. With a
	 * TPM the wipe counter moves first, which kills every sealed copy, kept ones included.
	 */
	if ((err = keys_root_revoke()) != 0 ||
	    (err = keys_root_destroy_upto(v->dirfd, v->hdr.key_epoch)) != 0)
		return err;
	if (v->hdr.state == HV_STATE_ERASED)
		return 0;
	if (crypto_random(h.wrapped, sizeof(h.wrapped)) != 0)
		return -EIO;
	h.state = HV_STATE_ERASED;
	return volume_hdr_commit(v, &h);
}

/* 1 when no root key file present for the header's epoch unwraps a valid copy's blob. */
static int
no_unwrap(struct volume *v, const struct volume_hdr h[2], const int rc[2])
{
	struct keys_secret *root = NULL, *vmk = NULL;
	uint8_t aad[VOLUME_AAD_LEN];
	int ok = 1, err;

	err = keys_root_load(v->dirfd, v->hdr.key_epoch, &root);
	if (err == -ENOENT)
		return 1;
	if (err != 0 || keys_secret_new(KEYS_VMK_LEN, &vmk) != 0) {
		keys_secret_free(root);
		return 0;
	}
	for (int i = 0; i < 2 && ok; i++) {
		if (rc[i] != 0)
			continue;
		if (keys_unwrap(root->p, h[i].wrapped, aad, volume_hdr_aad(&h[i], aad), vmk->p) !=
		    -EKEYREJECTED)
			ok = 0;
	}
	keys_secret_free(vmk);
	keys_secret_free(root);
	return ok;
}

int
volume_wipe_verify(struct volume *v, uint32_t *passed)
{
	struct volume_hdr h[2];
	uint8_t wrap_hash[VOLUME_HASH_LEN];
	uint32_t bits = 0;
	int rc[2], err, intent = 1, erased = 1;

	*passed = 0;
	if ((err = volume_hdr_read_both(v, h, rc)) != 0)
		return err;
	for (int i = 0; i < 2; i++) {
		if (rc[i] != 0) {
			intent = erased = 0;
			continue;
		}
		if (hash_is_zero(v->hdr.intent_cmd) ||
		    memcmp(h[i].intent_cmd, v->hdr.intent_cmd, VOLUME_HASH_LEN) != 0)
			intent = 0;
		crypto_sha256(h[i].wrapped, sizeof(h[i].wrapped), wrap_hash);
		if (h[i].state != HV_STATE_ERASED ||
		    memcmp(wrap_hash, h[i].intent_wrap, VOLUME_HASH_LEN) == 0)
			erased = 0;
	}
	if (intent)
		bits |= VOLUME_CHECK_INTENT;
	if (erased)
		bits |= VOLUME_CHECK_HDR_ERASED;
	err = keys_root_exists(v->dirfd, v->hdr.key_epoch);
	if (err < 0)
		return err;
	if (err == 0)
		bits |= VOLUME_CHECK_KEY_GONE;
	if (no_unwrap(v, h, rc))
		bits |= VOLUME_CHECK_NO_UNWRAP;
	if (v->xts == NULL && v->enc == NULL && v->dec == NULL)
		bits |= VOLUME_CHECK_MEM_CLEAR;
	*passed = bits;
	return 0;
}

/* Drops the old ciphertext: a hole where supported, zeros otherwise. Best effort, not secrecy. */
static int
discard_data(struct volume *v)
{
	uint64_t off = v->hdr.data_offset, len = v->hdr.data_length;
	int err;

	if (fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
	    0)
		return fdatasync(v->fd) == 0 ? 0 : -errno;
	if (errno != EOPNOTSUPP && errno != ENOSYS) {
		err = -errno;
		log_errno(-err, "volume %s: cannot discard the data area", v->name);
		return err;
	}
	memset(v->bounce, 0, (size_t)VOLUME_MAX_IO_SECTORS * VOLUME_SECTOR_SIZE);
	while (len > 0) {
		size_t n = (size_t)MIN(len, (uint64_t)VOLUME_MAX_IO_SECTORS * VOLUME_SECTOR_SIZE);
		ssize_t w = pwrite(v->fd, v->bounce, n, (off_t)off);

		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			err = w < 0 ? -errno : -EIO;
			log_errno(-err, "volume %s: cannot zero the data area", v->name);
			return err;
		}
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return fdatasync(v->fd) == 0 ? 0 : -errno;
}

int
volume_wipe_provision(struct volume *v)
{
	int err;

	if (v->hdr.state != HV_STATE_ERASED)
		return -EPERM;
	if (v->hdr.key_epoch == UINT64_MAX)
		return -EOVERFLOW;
	if ((err = durable_step("volume data discard")) != 0 || (err = discard_data(v)) != 0)
		return err;
	return volume_format(v, v->hdr.key_epoch + 1);
}

int
volume_wipe_pending(const struct volume *v, uint8_t cmd_hash[VOLUME_HASH_LEN])
{
	if (v->hdr.state != HV_STATE_WIPE_PENDING)
		return 0;
	if (cmd_hash != NULL)
		memcpy(cmd_hash, v->hdr.intent_cmd, VOLUME_HASH_LEN);
	return 1;
}

int
volume_try_root_key(struct volume *v, const uint8_t *root)
{
	struct keys_secret *vmk = NULL;
	struct volume_hdr h[2];
	uint8_t aad[VOLUME_AAD_LEN];
	int rc[2], err;

	if ((err = volume_hdr_read_both(v, h, rc)) != 0 ||
	    (err = keys_secret_new(KEYS_VMK_LEN, &vmk)) != 0)
		return err;
	err = -EKEYREJECTED;
	for (int i = 0; i < 2 && err != 0; i++) {
		if (rc[i] == 0 &&
		    keys_unwrap(root, h[i].wrapped, aad, volume_hdr_aad(&h[i], aad), vmk->p) == 0)
			err = 0;
	}
	keys_secret_free(vmk);
	return err;
}

int
volume_epoch_destroyed(struct volume *v, uint64_t epoch)
{
	return keys_root_exists(v->dirfd, epoch) == 0;
}
