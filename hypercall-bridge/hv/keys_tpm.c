/*
 * The per-epoch root key sealed in a TPM (hypercall-bridge/TPM.md §4), behind keys.h's
 * keys_root_* when keys_tpm_use was called: "root-<epoch>.sealed" holds tpm_seal's blob, bound
 * to the wipe counter's value and a deadline on the TPM clock. A wipe increments the wipe
 * counter (keys_root_revoke), after which no kept copy of any earlier blob unseals; past the
 * deadline none unseals either. One TPM per process: cleave-hv has one state directory. Builds
 * without tpm2-tss (CLEAVE_NO_TPM) never enable it.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "durable.h"
#include "log.h"

#ifndef CLEAVE_NO_TPM
#include "tpm.h"

static struct tpm *seal_tpm;
static uint64_t seal_deadline = KEYS_DEADLINE_FAR;
static uint64_t wipe_base = UINT64_MAX; /* UINT64_MAX: no wipe recorded its "before" */

int
keys_tpm_active(void)
{
	return seal_tpm != NULL;
}

int
keys_wipe_counter(uint64_t *v)
{
	if (seal_tpm == NULL)
		return -ENOTSUP;
	return tpm_counter_read(seal_tpm, TPM_NV_WIPE_COUNTER, v);
}

int
keys_tpm_use(struct tpm *t)
{
	uint64_t v;
	int r = tpm_counter_ensure(t, TPM_NV_WIPE_COUNTER);

	if (r == 0)
		r = tpm_counter_read(t, TPM_NV_WIPE_COUNTER, &v);
	/* A counter never incremented has no value PolicyNV could compare: give it one. */
	if (r == -ENODATA)
		r = tpm_counter_increment(t, TPM_NV_WIPE_COUNTER);
	if (r == 0)
		seal_tpm = t;
	return r;
}

void
keys_tpm_deadline(uint64_t deadline_ms)
{
	seal_deadline = deadline_ms;
}

/* Seals key (KEYS_ROOT_LEN) under the wipe counter's value now and deadline into name. */
static int
seal_to(int dirfd, const char *name, const uint8_t *key, uint64_t deadline)
{
	uint8_t blob[TPM_SEALED_MAX];
	uint64_t counter = 0;
	size_t n = 0;
	int r = tpm_counter_read(seal_tpm, TPM_NV_WIPE_COUNTER, &counter);

	if (r == 0)
		r = tpm_seal(seal_tpm, key, counter, deadline, blob, sizeof(blob), &n);
	if (r == 0)
		r = durable_replace(dirfd, name, blob, n);
	return r;
}

int
keys_tpm_root_create(int dirfd, const char *name)
{
	struct keys_secret *key = NULL;
	int r = keys_secret_new(KEYS_ROOT_LEN, &key);

	if (r == 0)
		r = crypto_random(key->p, KEYS_ROOT_LEN) == 0 ? 0 : -EIO;
	if (r == 0)
		r = seal_to(dirfd, name, key->p, seal_deadline);
	keys_secret_free(key);
	return r;
}

int
keys_tpm_root_load(int dirfd, const char *name, struct keys_secret **out)
{
	uint8_t blob[TPM_SEALED_MAX];
	struct keys_secret *key = NULL;
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r;

	*out = NULL;
	if (fd < 0)
		return -errno;
	n = read(fd, blob, sizeof(blob));
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r == 0)
		r = keys_secret_new(KEYS_ROOT_LEN, &key);
	if (r == 0)
		r = tpm_unseal(seal_tpm, blob, (size_t)n, key->p);
	if (r == -EPERM)
		log_warn("keys: the TPM refuses the sealed root key %s (the wipe counter moved, or "
			 "the TPM clock is past its deadline)",
			 name);
	if (r != 0)
		keys_secret_free(key);
	else
		*out = key;
	return r;
}

int
keys_tpm_reseal(int dirfd, const char *name, uint64_t deadline_ms)
{
	struct keys_secret *key = NULL;
	int r = keys_tpm_root_load(dirfd, name, &key);

	if (r == 0)
		r = seal_to(dirfd, name, key->p, deadline_ms);
	keys_secret_free(key);
	return r;
}

void
keys_tpm_wipe_base(uint64_t before)
{
	wipe_base = before;
}

int
keys_root_revoke(void)
{
	uint64_t v = 0;
	int r;

	if (seal_tpm == NULL)
		return 0; /* the file keystore: deleting the files is all there is */
	r = tpm_counter_read(seal_tpm, TPM_NV_WIPE_COUNTER, &v);
	if (r != 0)
		return r;
	if (wipe_base != UINT64_MAX && v != wipe_base) {
		/* Moved past the wipe's "before" already (a resumed wipe): the old blobs are dead. */
		log_info("keys: the wipe counter already moved for this wipe (%llu -> %llu)",
			 (unsigned long long)wipe_base, (unsigned long long)v);
		return 0;
	}
	/* A crash point of its own: the NV increment is a durable step like a file write. */
	r = durable_step("TPM wipe counter increment");
	return r != 0 ? r : tpm_counter_increment(seal_tpm, TPM_NV_WIPE_COUNTER);
}

#else /* CLEAVE_NO_TPM */

int
keys_tpm_active(void)
{
	return 0;
}

int
keys_wipe_counter(uint64_t *v)
{
	(void)v;
	return -ENOTSUP;
}

int
keys_tpm_use(struct tpm *t)
{
	(void)t;
	return -ENOTSUP;
}

void
keys_tpm_deadline(uint64_t deadline_ms)
{
	(void)deadline_ms;
}

int
keys_tpm_root_create(int dirfd, const char *name)
{
	(void)dirfd, (void)name;
	return -ENOTSUP;
}

int
keys_tpm_root_load(int dirfd, const char *name, struct keys_secret **out)
{
	(void)dirfd, (void)name;
	*out = NULL;
	return -ENOTSUP;
}

int
keys_tpm_reseal(int dirfd, const char *name, uint64_t deadline_ms)
{
	(void)dirfd, (void)name, (void)deadline_ms;
	return -ENOTSUP;
}

void
keys_tpm_wipe_base(uint64_t before)
{
	(void)before;
}

int
keys_root_revoke(void)
{
	return 0;
}

#endif
