/*
 * Trust-only hypercalls of cleave-hv and the measurement of the corporate VM. Every handler
 * checks its input sizes again (the codec already did) and changes state only after a ticket
 * passed trust_check_ticket and its counter was made durable.
 */
#include "hv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "hypercall-bridge/lib/bridge_msg.h"
#include "log.h"
#include "util.h"
#include "volume.h"

/*
 * The host clock. CLEAVE_HV_CLOCK_SKEW_S (signed seconds, for tests, like CLEAVE_HV_FAULT)
 * turns it forward or back, as whoever owns the host can: with --tpm the lease must not care.
 */
static uint64_t
wall_ms(void)
{
	static long long skew_ms = -1;
	struct timespec ts;

	if (skew_ms == -1) {
		const char *e = getenv("CLEAVE_HV_CLOCK_SKEW_S");

		skew_ms = e != NULL ? strtoll(e, NULL, 10) * 1000 : 0;
		if (skew_ms == -1)
			skew_ms = 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + skew_ms);
}

static int64_t
h_status(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	struct clv_status s = {
		.abi_version = CLV_ABI_VERSION,
		.state = h->state,
		.key_epoch = h->key_epoch,
		.ticket_counter = h->trust.counter,
		.receipt_seq = h->trust.receipt_seq,
		.lease_until = h->trust.lease_until,
		.flags = (h->tpm != NULL ? CLV_STATUS_TPM : 0) |
			 (h->trust.stale ? CLV_STATUS_STALE_STATE : 0),
	};

	memcpy(s.measurement, h->measurement, sizeof(s.measurement));
	if (c->out == NULL || c->out_cap < 64) {
		/* Guest callers get the state, key epoch and disk size (sectors) in registers. */
		struct volume_info vi = {0};

		if (h->vol != NULL)
			volume_info(h->vol, &vi);
		c->results[0] = s.state;
		c->results[1] = s.key_epoch;
		c->results[2] = vi.sectors;
		return 0;
	}
	clv_status_encode(&s, c->out);
	c->out_len = 64;
	return 0;
}

static int64_t
h_attest(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;

	if (c->in_len != 32 || c->out_cap < ATTEST_LEN)
		return CLV_E_INVALID_PARAMETER;
	if (trust_attest(&h->trust, c->in, (uint16_t)h->state, h->measurement, h->key_epoch,
			 h->clock(), c->out) != 0)
		return CLV_E_IO;
	c->out_len = ATTEST_LEN;
	return 0;
}

static int64_t
h_pin(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	char device[WIRE_ID_LEN];

	if (c->in_len != 64 || c->in[32 + WIRE_ID_LEN - 1] != '\0')
		return CLV_E_INVALID_PARAMETER;
	memcpy(device, c->in + 32, sizeof(device));
	return trust_pin(&h->trust, c->in, device);
}

/* Checks a ticket of type want; CLV_OK or the refusal (logged). Changes nothing. */
static int
check_ticket(struct hv *h, const struct dispatch_call *c, uint16_t want, struct ticket *tk)
{
	int r = trust_check_ticket(&h->trust, c->in, c->in_len, want, h->clock() / 1000, tk);

	if (r != CLV_OK)
		log_warn("cleave-hv: %s ticket refused (%d)", ticket_type_name(want), r);
	return r;
}

/* The lease end and its counter become durable in one write: a crash keeps both or neither. */
static int64_t
h_lease(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	struct ticket tk;
	struct trust before = h->trust;
	int r = check_ticket(h, c, TICKET_LEASE, &tk);

	if (r != CLV_OK)
		return r;
	h->trust.lease_until = tk.args[0];
	/* With a TPM the lease also ends on its clock, recorded in the same write. */
	if ((h->tpm != NULL && hv_tpm_lease(h, tk.args[0]) != 0) ||
	    trust_accept(&h->trust, &tk, NULL) != 0) {
		h->trust = before;
		return CLV_E_IO;
	}
	if (h->tpm != NULL)
		hv_tpm_reseal(h);
	return CLV_OK;
}

/* Like the lease: the policy and the ticket counter become durable in one write. */
static int64_t
h_policy(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	struct ticket tk;
	uint64_t before[4];
	int r = check_ticket(h, c, TICKET_POLICY, &tk);

	if (r != CLV_OK)
		return r;
	memcpy(before, h->trust.policy, sizeof(before));
	memcpy(h->trust.policy, tk.args, sizeof(h->trust.policy));
	if (trust_accept(&h->trust, &tk, NULL) != 0) {
		memcpy(h->trust.policy, before, sizeof(before));
		return CLV_E_IO;
	}
	if (h->tpm != NULL)
		hv_tpm_reseal(h); /* the wipe-after time moves the sealed deadline */
	log_info("cleave-hv: policy v%llu: lock after %llu s offline, wipe after %llu s",
		 (unsigned long long)tk.args[3], (unsigned long long)tk.args[0],
		 (unsigned long long)tk.args[1]);
	return CLV_OK;
}

static int64_t
h_receipts(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	unsigned n = MIN(h->trust.npending, (unsigned)CLV_RECEIPTS_PER_MSG);

	if (c->out_cap < 8 + (size_t)n * RECEIPT_LEN)
		return CLV_E_INVALID_PARAMETER;
	memset(c->out, 0, 8);
	c->out[0] = (uint8_t)n;
	memcpy(c->out + 8, h->trust.pending, (size_t)n * RECEIPT_LEN);
	c->out_len = 8 + (size_t)n * RECEIPT_LEN;
	return 0;
}

static int64_t
h_receipt_ack(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	uint64_t upto = 0;

	if (c->in_len != 8)
		return CLV_E_INVALID_PARAMETER;
	for (int i = 7; i >= 0; i--)
		upto = upto << 8 | c->in[i];
	return trust_receipts_ack(&h->trust, upto) == 0 ? CLV_OK : CLV_E_IO;
}

/* SHA-256 over the guest image and the VM configuration: what attestations report. */
static int
measure(struct hv *h, const char *guest_path, const char *vm_config)
{
	size_t n = 0;
	char *img = file_read_all(guest_path, 64u << 20, &n);
	const void *parts[2];
	size_t lens[2];

	if (img == NULL) {
		log_errno(errno, "cleave-hv: cannot read the guest image %s", guest_path);
		return -errno;
	}
	parts[0] = img;
	lens[0] = n;
	parts[1] = vm_config;
	lens[1] = strlen(vm_config);
	crypto_sha256_parts(parts, lens, 2, h->measurement);
	free(img);
	return 0;
}

int
hv_open(struct hv *h, const char *state_dir, const char *guest_path, const char *vm_config,
	hv_clock_fn clock, struct tpm *tpm)
{
	struct stat st;
	int r;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->vm_lock, NULL);
	pthread_mutex_init(&h->vol_lock, NULL);
	h->clock = clock ? clock : wall_ms;
	h->tpm = tpm;
	h->state = HV_STATE_ACTIVE;
	if (str_copy(h->state_dir, sizeof(h->state_dir), state_dir) != 0 ||
	    str_copy(h->guest_path, sizeof(h->guest_path), guest_path) != 0)
		return -ENAMETOOLONG;
	if (stat(state_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_err("cleave-hv: state directory %s does not exist", state_dir);
		return -ENOENT;
	}
	if ((st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		log_err("cleave-hv: state directory %s must be private (mode 0700, owned by us)",
			state_dir);
		return -EPERM;
	}
	r = measure(h, guest_path, vm_config);
	if (r == 0)
		r = trust_open(&h->trust, state_dir, tpm);
	if (r != 0)
		return r;
	dispatch_init(&h->d, h);
	dispatch_register(&h->d, CLV_FN_STATUS, h_status);
	dispatch_register(&h->d, CLV_FN_ATTEST, h_attest);
	dispatch_register(&h->d, CLV_FN_PIN_OWNER, h_pin);
	dispatch_register(&h->d, CLV_FN_RENEW_LEASE, h_lease);
	dispatch_register(&h->d, CLV_FN_SET_POLICY, h_policy);
	dispatch_register(&h->d, CLV_FN_RECEIPTS, h_receipts);
	dispatch_register(&h->d, CLV_FN_RECEIPT_ACK, h_receipt_ack);
	hv_vm_register(h);
	if (tpm != NULL && (r = hv_tpm_open(h)) != 0)
		trust_close(&h->trust);
	return r;
}

void
hv_close(struct hv *h)
{
	trust_close(&h->trust);
	pthread_mutex_destroy(&h->vm_lock);
	pthread_mutex_destroy(&h->vol_lock);
}
