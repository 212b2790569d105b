/*
 * The trust state's TPM side (hypercall-bridge/TPM.md §2, §5): the identity is the TPM's
 * attestation key (AK), whose blob is kept in the state directory and loads only in that TPM;
 * attestations and receipts are signed by it (ECDSA P-256, hv_key = SHA-256 of its SPKI); and
 * the state file's state_nv is bound to the TPM's state counter, so that a restored older copy
 * of the state directory is recognised and refuses tickets. Builds without tpm2-tss (the static
 * arm64 cleave-hv, CLEAVE_NO_TPM) have no TPM: every entry point says so with -ENOTSUP.
 */
#include "trust.h"

#include <errno.h>

#include "log.h"

#ifndef CLEAVE_NO_TPM
#include "hvsig.h"
#include "tpm.h"

int
trust_tpm_identity(struct trust *t)
{
	uint8_t spki[TPM_SPKI_MAX];
	size_t n = 0;
	int r = tpm_ak_init(t->tpm, t->dirfd);

	if (r == -EKEYREJECTED)
		log_err("cleave-hv: %s/%s was made by another TPM (or is damaged): this TPM "
			"cannot be the identity it names; move it away to start a new identity",
			t->dir, TPM_AK_BLOB_NAME);
	if (r == 0)
		r = tpm_ak_spki(t->tpm, spki, sizeof(spki), &n);
	if (r == 0 && hvsig_key_id(spki, n, t->hv_key) != 0)
		r = -EINVAL;
	if (r == 0)
		t->sig_alg = WIRE_SIG_ECDSA_P256;
	return r;
}

int
trust_tpm_sign(struct trust *t, const void *body, size_t len, uint8_t sig[WIRE_SIG_LEN])
{
	return tpm_sign(t->tpm, body, len, sig);
}

/* The TPM's state counter, defined on first use; *v is 0 while it was never incremented. */
static int
counter_now(struct trust *t, uint64_t *v)
{
	int r = tpm_counter_ensure(t->tpm, TPM_NV_STATE_COUNTER);

	if (r == 0)
		r = tpm_counter_read(t->tpm, TPM_NV_STATE_COUNTER, v);
	if (r == -ENODATA) {
		*v = 0;
		r = 0;
	}
	return r;
}

/* Marks the state stale: every ticket is refused, attestations say so (ATTEST_FLAG_STALE_STATE). */
static void
mark_stale(struct trust *t, uint64_t tpm_value)
{
	t->stale = 1;
	log_err("cleave-hv: the trust state says state counter %llu but the TPM's is %llu: this is "
		"an older copy of the state directory; every ticket is refused until the device "
		"is enrolled again",
		(unsigned long long)t->state_nv, (unsigned long long)tpm_value);
}

/*
 * A state that was never bound (fresh, or written without a TPM) and holds no enrollment takes
 * the TPM's value: incremented once, so that the counter is initialised and later values of
 * this state are all above any a copy made before could hold.
 */
static int
bind_fresh(struct trust *t)
{
	uint64_t v = 0;
	int r = tpm_counter_increment(t->tpm, TPM_NV_STATE_COUNTER);

	if (r == 0)
		r = tpm_counter_read(t->tpm, TPM_NV_STATE_COUNTER, &v);
	if (r != 0)
		return r;
	t->state_nv = v;
	return trust_save(t);
}

int
trust_tpm_bind(struct trust *t)
{
	uint64_t v = 0;
	int r = counter_now(t, &v);

	if (r != 0)
		return r;
	if (t->state_nv == 0 && !t->pinned && t->order.type == 0)
		return bind_fresh(t);
	if (t->state_nv == v)
		return 0;
	if (t->state_nv == v + 1) {
		log_warn("cleave-hv: finishing the TPM state counter increment a stop interrupted");
		return tpm_counter_increment(t->tpm, TPM_NV_STATE_COUNTER);
	}
	mark_stale(t, v);
	return 0;
}

int
trust_tpm_advance(struct trust *t)
{
	uint64_t v = 0;
	int r = counter_now(t, &v);

	/* At most two steps: this write's, and one a failed earlier increment left behind. */
	for (int i = 0; r == 0 && v < t->state_nv && i < 2; i++) {
		r = tpm_counter_increment(t->tpm, TPM_NV_STATE_COUNTER);
		if (r == 0)
			r = tpm_counter_read(t->tpm, TPM_NV_STATE_COUNTER, &v);
	}
	if (r == 0 && v != t->state_nv) {
		mark_stale(t, v);
		r = -ESTALE;
	}
	return r;
}

#else /* CLEAVE_NO_TPM */

int
trust_tpm_identity(struct trust *t)
{
	(void)t;
	log_err("cleave-hv: this build has no TPM support (tpm2-tss)");
	return -ENOTSUP;
}

int
trust_tpm_sign(struct trust *t, const void *body, size_t len, uint8_t sig[WIRE_SIG_LEN])
{
	(void)t, (void)body, (void)len, (void)sig;
	return -ENOTSUP;
}

int
trust_tpm_bind(struct trust *t)
{
	(void)t;
	return -ENOTSUP;
}

int
trust_tpm_advance(struct trust *t)
{
	(void)t;
	return -ENOTSUP;
}

#endif
