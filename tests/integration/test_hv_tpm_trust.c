/*
 * The real cleave-hv with --tpm (hypercall-bridge/TPM.md §2-§5) against a manufactured swtpm
 * per case (tests/lib/swtpmtest.h), driven through its bridge socket and cleave-hvctl: the
 * identity is the TPM's P-256 attestation key (attestations and receipts verified with hvsig
 * and with the openssl command line against the PEM cleave-hvctl prints), the measurement is in
 * PCR 23 and a credential made in software for the TPM's EK and AK comes back as the nonce of an
 * attestation quoted over PCR 23, a restored older copy of the state directory refuses
 * tickets old and new, a wipe leaves a kept copy of the sealed root key unsealable, a restart
 * past the sealed deadline finds the volume closed and carries out the wipe it was due, and a
 * TPM reset lapses the lease whatever the host clock says.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "b64.h"
#include "bridge_msg.h"
#include "hvproc.h"
#include "hvtpm.h"
#include "hvsig.h"
#include "swtpmtest.h"
#include "testlib.h"
#include "tpm.h"
#include "util.h"

#define MAKECRED "tpm2_makecredential"

static int
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok = f != NULL && fwrite(p, 1, n, f) == n;

	return (f != NULL && fclose(f) == 0 && ok) ? 0 : -1;
}

/* `openssl dgst -sha256 -verify` of sig (r || s) over body with the PEM in pem_path: 1 if OK. */
static int
openssl_verifies(const struct hvtpm *tc, const char *pem_path, const uint8_t *body, size_t n,
		 const uint8_t sig[64])
{
	char b[PATH_MAX + 16], s[PATH_MAX + 16], cmd[4 * PATH_MAX], out[256];
	uint8_t der[HVSIG_DER_MAX];
	size_t dl = 0;

	snprintf(b, sizeof(b), "%s/body", tc->tpm.dir);
	snprintf(s, sizeof(s), "%s/sig", tc->tpm.dir);
	if (hvsig_ecdsa_der(sig, der, sizeof(der), &dl) != 0 || write_file(b, body, n) != 0 ||
	    write_file(s, der, dl) != 0)
		return 0;
	snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -verify '%s' -signature '%s' '%s' 2>&1",
		 pem_path, s, b);
	return hvtpm_run(cmd, out, sizeof(out)) == 0 && strstr(out, "Verified OK") != NULL;
}

/* cleave-hvctl pubkey --pem into DIR/ak.pem; 0 when it printed a P-256 public key. */
static int
hvctl_pem(const struct hvtpm *tc, char *pem_path, size_t cap)
{
	char cmd[3 * PATH_MAX], out[512];

	snprintf(pem_path, cap, "%s/ak.pem", tc->tpm.dir);
	snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' pubkey --pem > '%s' && cat '%s'", tc->hvctl,
		 tc->hv.sock, pem_path, pem_path);
	if (hvtpm_run(cmd, out, sizeof(out)) != 0 || strstr(out, "BEGIN PUBLIC KEY") == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "openssl pkey -pubin -in '%s' -noout -text 2>&1", pem_path);
	return hvtpm_run(cmd, out, sizeof(out)) == 0 && strstr(out, "P-256") != NULL ? 0 : -1;
}

static void
tpm_identity_signs_attestations_and_receipts(void)
{
	struct hvtpm tc = {0};
	uint8_t nonce[32] = {7}, buf[512], raw[RECEIPT_LEN];
	struct ed25519_key *server = NULL;
	struct attestation a;
	struct receipt rc;
	char pem[PATH_MAX + 16], out[1024], cmd[2 * PATH_MAX];
	uint8_t hv[32];
	size_t n = 0;

	HVTPM_START(&tc, "ident");
	snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' status", tc.hvctl, tc.hv.sock);
	CHECK(hvtpm_run(cmd, out, sizeof(out)) == 0 && strstr(out, "keystore: tpm") != NULL &&
		      strstr(out, "abi: 1.1") != NULL,
	      "status must say the keystore is the TPM: %s", out);
	CHECK(bridge_call(&tc.c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK &&
		      attest_decode(buf, n, &a) == 0,
	      "attest");
	CHECK(a.sig_alg == WIRE_SIG_ECDSA_P256 && a.flags == 0 && buf[8] == 3,
	      "a version 3 attestation, ECDSA P-256");
	CHECK(memcmp(a.hv_key, tc.hv_key, 32) == 0, "hv_key is SHA-256 of the AK's SPKI");
	CHECK(hvsig_verify(a.sig_alg, a.hv_key, tc.spki, tc.spki_len, buf, ATTEST_BODY_LEN,
			   buf + ATTEST_BODY_LEN) == 0,
	      "hvsig verifies the attestation");
	CHECK(hvctl_pem(&tc, pem, sizeof(pem)) == 0, "cleave-hvctl pubkey --pem");
	CHECK(openssl_verifies(&tc, pem, buf, ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN),
	      "openssl verifies the attestation with the PEM");
	buf[100] ^= 1;
	CHECK(!openssl_verifies(&tc, pem, buf, ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN),
	      "and refuses a changed one");

	/* tickets bind to the same hv_key; the receipt is a version 2 receipt signed in the TPM */
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK && memcmp(hv, tc.hv_key, 32) == 0, "pin");
	CHECK(hvp_order(&tc.c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 1, &rc, raw) == CLV_OK,
	      "lock with a receipt hvsig verifies");
	CHECK(rc.sig_alg == WIRE_SIG_ECDSA_P256 && raw[8] == 2, "a version 2 receipt");
	CHECK(openssl_verifies(&tc, pem, raw, RECEIPT_BODY_LEN, raw + RECEIPT_BODY_LEN),
	      "openssl verifies the receipt with the PEM");
	CHECK(hvp_order(&tc.c, server, tc.spki, CLV_FN_UNLOCK, TICKET_UNLOCK, 2, &rc, NULL) ==
		      CLV_E_BAD_TICKET,
	      "a ticket bound to another key is refused");
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

/* tpm2_makecredential (software) of secret for the AK (ak_pub) to the EK (ek_pub) into path. */
static int
make_credential(const struct hvtpm *tc, const struct tpm_id *id, const uint8_t secret[32],
		char *path, size_t cap)
{
	char ek[PATH_MAX + 16], sec[PATH_MAX + 16], cmd[4 * PATH_MAX + 128], hex[69], out[64];
	uint8_t digest[32];

	/* The AK's name: nameAlg SHA-256 (0x000b) || SHA-256 of its TPMT_PUBLIC. */
	SHA256(id->part[2] + 2, id->len[2] - 2, digest);
	snprintf(hex, sizeof(hex), "000b");
	for (int i = 0; i < 32; i++)
		snprintf(hex + 4 + 2 * i, 3, "%02x", digest[i]);
	snprintf(ek, sizeof(ek), "%s/ek.pub", tc->tpm.dir);
	snprintf(sec, sizeof(sec), "%s/secret", tc->tpm.dir);
	snprintf(path, cap, "%s/cred", tc->tpm.dir);
	if (write_file(ek, id->part[1], id->len[1]) != 0 || write_file(sec, secret, 32) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), MAKECRED " --tcti none -u '%s' -s '%s' -n %s -o '%s' 2>&1", ek,
		 sec, hex, path);
	return hvtpm_run(cmd, out, sizeof(out));
}

/* Decodes `name: base64` from hvctl's output into p (cap); the length, or -1. */
static long
field(const char *text, const char *name, uint8_t *p, size_t cap)
{
	char key[32];
	const char *s, *e;

	snprintf(key, sizeof(key), "%s: ", name);
	s = strstr(text, key);
	if (s == NULL)
		return -1;
	s += strlen(key);
	e = strchr(s, '\n');
	return b64_decode(p, cap, s, e != NULL ? (size_t)(e - s) : strlen(s));
}

/*
 * The quote of TPM_ACTIVATE: a TPM quote over PCR 23 whose value is the replay of the log (PCR 23
 * reset, then extended with log), naming the attestation att, signed by the AK.
 */
static void
check_quote(const struct hvtpm *tc, const uint8_t *att, const uint8_t *quote, size_t ql,
	    const uint8_t *qsig, size_t sl, const uint8_t log[32])
{
	uint8_t qual[32], want[32], pcr[64] = {0}, rs[64];
	TPMS_ATTEST ta = {0};
	TPMT_SIGNATURE ts = {0};
	const void *parts[2] = {"cleave-quote", att};
	size_t lens[2] = {12, ATTEST_BODY_LEN}, off = 0;

	CHECK(Tss2_MU_TPMS_ATTEST_Unmarshal(quote, ql, &off, &ta) == 0 &&
		      ta.magic == TPM2_GENERATED_VALUE && ta.type == TPM2_ST_ATTEST_QUOTE,
	      "a TPM quote");
	crypto_sha256_parts(parts, lens, 2, qual);
	CHECK(ta.extraData.size == 32 && memcmp(ta.extraData.buffer, qual, 32) == 0,
	      "qualifying data = SHA-256(\"cleave-quote\" || attestation body)");
	memcpy(pcr + 32, log, 32); /* PCR 23 was reset: zeros, then extended with the measurement */
	SHA256(pcr, 64, want);
	SHA256(want, 32, want);
	CHECK(ta.attested.quote.pcrDigest.size == 32 &&
		      memcmp(ta.attested.quote.pcrDigest.buffer, want, 32) == 0,
	      "the quoted PCR 23 is the replay of the log");
	off = 0;
	CHECK(Tss2_MU_TPMT_SIGNATURE_Unmarshal(qsig, sl, &off, &ts) == 0 &&
		      ts.sigAlg == TPM2_ALG_ECDSA,
	      "an ECDSA quote signature");
	memcpy(rs, ts.signature.ecdsa.signatureR.buffer, 32);
	memcpy(rs + 32, ts.signature.ecdsa.signatureS.buffer, 32);
	CHECK(ts.signature.ecdsa.signatureR.size == 32 &&
		      ts.signature.ecdsa.signatureS.size == 32 &&
		      hvsig_verify(WIRE_SIG_ECDSA_P256, tc->hv_key, tc->spki, tc->spki_len, quote,
				   ql, rs) == 0,
	      "the quote is signed by the AK");
}

static void
tpm_activate_and_quote(void)
{
	static struct tpm_id id;
	static char out[8192];
	struct hvtpm tc = {0};
	uint8_t secret[32], att[ATTEST_LEN], quote[1024], qsig[256], log[128];
	char cred[PATH_MAX + 16], cmd[3 * PATH_MAX];
	struct attestation a;
	long ql = 0, sl = 0, ll;

	if (system("command -v " MAKECRED " >/dev/null") != 0)
		SKIP("tpm2-tools not installed (scripts/deps.sh installs it)");
	HVTPM_START(&tc, "quote");
	CHECK(tpm_identity(&tc.c, &id) == 0 && id.len[0] > 100 && id.len[1] > 200 && id.len[2] > 60,
	      "TPM identity: EK certificate, EK public, AK public");
	snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' tpm-identity", tc.hvctl, tc.hv.sock);
	CHECK(hvtpm_run(cmd, out, sizeof(out)) == 0 && strstr(out, "ek_cert: ") &&
		      strstr(out, "ak_spki: "),
	      "cleave-hvctl tpm-identity: %s", out);
	for (int i = 0; i < 32; i++)
		secret[i] = (uint8_t)(0xa0 + i);
	CHECK(make_credential(&tc, &id, secret, cred, sizeof(cred)) == 0, MAKECRED);
	snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' tpm-activate '%s'", tc.hvctl, tc.hv.sock,
		 cred);
	CHECK(hvtpm_run(cmd, out, sizeof(out)) == 0, "cleave-hvctl tpm-activate: %s", out);
	CHECK(field(out, "attestation", att, sizeof(att)) == ATTEST_LEN &&
		      (ql = field(out, "quote", quote, sizeof(quote))) > 0 &&
		      (sl = field(out, "quote_sig", qsig, sizeof(qsig))) > 0 &&
		      (ll = field(out, "pcr_log", log, sizeof(log))) == 32,
	      "attestation, quote, signature and a one-entry event log: %s", out);
	CHECK(attest_decode(att, ATTEST_LEN, &a) == 0 && memcmp(a.nonce, secret, 32) == 0,
	      "the attestation's nonce is the credential's secret");
	CHECK(hvsig_verify(a.sig_alg, a.hv_key, tc.spki, tc.spki_len, att, ATTEST_BODY_LEN,
			   att + ATTEST_BODY_LEN) == 0,
	      "signed by the AK");
	CHECK(memcmp(log, a.measurement, 32) == 0, "the log's entry is the measurement");
	check_quote(&tc, att, quote, (size_t)ql, qsig, (size_t)sl, log);
	if (t_failed_now)
		return;
	snprintf(cmd, sizeof(cmd), "grep -c 'creating the EK from its template' '%s.log'",
		 tc.hv.dir);
	CHECK(hvtpm_run(cmd, out, sizeof(out)) >= 0 && atoi(out) == 0,
	      "identity and activation used swtpm_setup's persistent EK: none created");
	/* a credential for another AK name is refused */
	id.buf[id.part[2] - id.buf + 20] ^= 1;
	CHECK(make_credential(&tc, &id, secret, cred, sizeof(cred)) == 0, MAKECRED " (other)");
	strncat(cmd, " 2>/dev/null", sizeof(cmd) - strlen(cmd) - 1);
	CHECK(hvtpm_run(cmd, out, sizeof(out)) != 0,
	      "a credential for another key must be refused");
	hvtpm_end(&tc);
}

/* A lease ticket (counter) accepted: its state write increments the TPM's state counter. */
static int
lease(struct hvtpm *tc, struct ed25519_key *server, uint64_t counter)
{
	uint8_t tk[TICKET_LEN], buf[64];
	size_t n;

	hvp_ticket(server, tc->hv_key, "dev_ord", TICKET_LEASE, counter,
		   (uint64_t)time(NULL) + 3600, tk);
	return bridge_call(&tc->c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n);
}

static void
tpm_restored_state_refuses_tickets(void)
{
	struct hvtpm tc = {0};
	struct ed25519_key *server = NULL;
	uint8_t hv[32], nonce[32] = {3}, buf[512], old[TICKET_LEN];
	char cmd[3 * PATH_MAX + 64], out[1024];
	struct attestation a;
	struct receipt rc;
	size_t n;

	HVTPM_START(&tc, "restore");
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK, "pin");
	CHECK(lease(&tc, server, 1) == CLV_OK, "lease 1");
	/* the thief's copy of the state directory, taken while cleave-hv is stopped */
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGTERM);
	snprintf(cmd, sizeof(cmd), "cp -a --sparse=always '%s' '%s.kept'", tc.hv.dir, tc.hv.dir);
	CHECK(system(cmd) == 0, "copy the state directory");
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "restart");
	hvp_ticket(server, hv, "dev_ord", TICKET_LOCK, 2, 0, old);
	CHECK(hvp_order(&tc.c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 2, &rc, NULL) == CLV_OK,
	      "lock 2");
	CHECK(lease(&tc, server, 3) == CLV_OK, "lease 3");
	/* put the kept copy back: it is older than the TPM's state counter */
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGKILL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mv '%s.kept' '%s'", tc.hv.dir, tc.hv.dir,
		 tc.hv.dir);
	CHECK(system(cmd) == 0, "restore the old copy");
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0,
	      "cleave-hv starts on the old copy");
	CHECK(bridge_call(&tc.c, CLV_FN_LOCK, old, sizeof(old), buf, sizeof(buf), &n) ==
		      CLV_E_DENIED,
	      "the lock ticket the old copy never saw is refused");
	CHECK(lease(&tc, server, 4) == CLV_E_DENIED, "a new lease is refused");
	CHECK(hvp_order(&tc.c, server, hv, CLV_FN_WIPE, TICKET_WIPE, 5, &rc, NULL) == CLV_E_DENIED,
	      "a new wipe is refused");
	CHECK(bridge_call(&tc.c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK &&
		      attest_decode(buf, n, &a) == 0 && (a.flags & ATTEST_FLAG_STALE_STATE),
	      "attestations say the state is stale");
	snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' status", tc.hvctl, tc.hv.sock);
	CHECK(hvtpm_run(cmd, out, sizeof(out)) == 0 && strstr(out, "trust state: stale") != NULL,
	      "status says so: %s", out);
	/* kill -9 and restart: still stale (the TPM's counter does not go back) */
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGKILL);
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "restart");
	CHECK(lease(&tc, server, 6) == CLV_E_DENIED, "still refused after a restart");
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

/* A stop between the state write and the TPM increment: the next start finishes it. */
static void
tpm_state_counter_catches_up(void)
{
	struct hvtpm tc = {0};
	struct ed25519_key *server = NULL;
	uint8_t hv[32];

	HVTPM_START(&tc, "catchup");
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK, "pin");
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGTERM);
	/* the third durable step of the next lease is the rename after fsync: die just after */
	setenv("CLEAVE_HV_FAULT", "tpm-before-state-increment", 1);
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "restart");
	unsetenv("CLEAVE_HV_FAULT");
	CHECK(lease(&tc, server, 1) != CLV_OK, "cleave-hv dies before the TPM increment");
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGKILL);
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "restart");
	CHECK(lease(&tc, server, 1) == CLV_E_BAD_TICKET, "the lease was accepted (a replay now)");
	CHECK(lease(&tc, server, 2) == CLV_OK, "and the state is current: the next one is taken");
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

static int pending_of(struct hvtpm *tc, uint16_t type, struct receipt *rc);

/* Unseals the blob at path with the case's TPM (cleave-hv stopped): tpm_unseal's result. */
static int
unseal_file(struct hvtpm *tc, const char *path)
{
	uint8_t blob[TPM_SEALED_MAX], key[TPM_ROOT_LEN];
	struct tpm *t = NULL;
	FILE *f = fopen(path, "rb");
	size_t n = f != NULL ? fread(blob, 1, sizeof(blob), f) : 0;
	int r;

	if (f != NULL)
		fclose(f);
	if (n == 0 || tpm_open(tc->tpm.tcti, &t) != 0)
		return -999;
	r = tpm_unseal(t, blob, n, key);
	tpm_close(t);
	return r;
}

/* How many lines of cleave-hv's log contain what. */
static int
log_count(const struct hvtpm *tc, const char *what)
{
	char cmd[2 * PATH_MAX], out[16] = "";

	snprintf(cmd, sizeof(cmd), "grep -c '%s' '%s.log'", what, tc->hv.dir);
	(void)hvtpm_run(cmd, out, sizeof(out)); /* grep -c exits 1 when it counts 0 */
	return atoi(out);
}

/* 1 when cleave-hv's log says its volume's root key could not be unsealed. */
static int
log_says_closed(const struct hvtpm *tc)
{
	return log_count(tc, "cannot be unsealed") > 0;
}

static void
tpm_wipe_kills_kept_copy(void)
{
	struct hvtpm tc = {0};
	struct ed25519_key *server = NULL;
	char cmd[3 * PATH_MAX + 64], kept[PATH_MAX + 64], live[PATH_MAX + 64];
	struct receipt rc;
	uint64_t e0 = 0, e1 = 0;
	uint8_t hv[32];

	HVTPM_START(&tc, "wipe");
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK, "pin");
	CHECK(hvp_state(&tc.c, &e0) == HV_STATE_ACTIVE, "active");
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGTERM);
	snprintf(cmd, sizeof(cmd), "cp -a --sparse=always '%s' '%s.kept'", tc.hv.dir, tc.hv.dir);
	CHECK(system(cmd) == 0, "the thief's copy of the state directory");
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "restart");
	CHECK(hvp_order(&tc.c, server, hv, CLV_FN_WIPE, TICKET_WIPE, 1, &rc, NULL) == CLV_OK,
	      "wipe, with a receipt signed in the TPM");
	CHECK(rc.wipe_counter_after == rc.wipe_counter_before + 1 && rc.wipe_counter_before > 0,
	      "the receipt reports the wipe counter moving by one (%llu -> %llu)",
	      (unsigned long long)rc.wipe_counter_before,
	      (unsigned long long)rc.wipe_counter_after);
	CHECK(hvp_state(&tc.c, &e1) == HV_STATE_ACTIVE && e1 > e0, "a fresh volume after the wipe");
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGTERM);
	snprintf(kept, sizeof(kept), "%s.kept/root-%llu.sealed", tc.hv.dir, (unsigned long long)e0);
	snprintf(live, sizeof(live), "%s/root-%llu.sealed", tc.hv.dir, (unsigned long long)e1);
	CHECK(unseal_file(&tc, live) == 0, "the new epoch's sealed root key unseals");
	CHECK(unseal_file(&tc, kept) == -EPERM, "the kept copy of the old one does not");
	/* cleave-hv started on the kept copy cannot open its volume */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mv '%s.kept' '%s'", tc.hv.dir, tc.hv.dir,
		 tc.hv.dir);
	CHECK(system(cmd) == 0, "put the kept copy in place");
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0,
	      "cleave-hv starts on the kept copy");
	CHECK(log_says_closed(&tc), "its volume stays closed: the root key cannot be unsealed");
	CHECK(hvp_state(&tc.c, &e1) == HV_STATE_LOCKED && e1 == e0,
	      "and cleave-hv locks it (epoch %llu)", (unsigned long long)e1);
	CHECK(pending_of(&tc, RECEIPT_AUTO_LOCK, &rc) >= 0, "with an auto-lock receipt");
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

/* Receipts pending in cleave-hv; the index of the first of type, or -1. */
static int
pending_of(struct hvtpm *tc, uint16_t type, struct receipt *rc)
{
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	size_t n = 0;

	if (bridge_call(&tc->c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n) != CLV_OK)
		return -1;
	for (unsigned i = 0; i < buf[0] && 8 + (i + 1) * RECEIPT_LEN <= n; i++)
		if (receipt_decode(buf + 8 + i * RECEIPT_LEN, RECEIPT_LEN, rc) == 0 &&
		    rc->type == type &&
		    hvsig_verify(rc->sig_alg, tc->hv_key, tc->spki, tc->spki_len,
				 buf + 8 + i * RECEIPT_LEN, RECEIPT_BODY_LEN,
				 buf + 8 + i * RECEIPT_LEN + RECEIPT_BODY_LEN) == 0)
			return (int)i;
	return -1;
}

static void
tpm_past_sealed_deadline_wipes_at_start(void)
{
	struct hvtpm tc = {0};
	struct ed25519_key *server = NULL;
	char blob[PATH_MAX + 64];
	struct receipt rc;
	uint64_t e0 = 0, e1 = 0;
	uint8_t hv[32];

	HVTPM_START(&tc, "deadline");
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK, "pin");
	CHECK(hvp_state(&tc.c, &e0) == HV_STATE_ACTIVE, "active");
	/* lock 1 s, wipe 2 s after a lease that ends now: sealed until TPM clock + 2 s */
	CHECK(hvp_policy(&tc.c, server, hv, 1, 1, 2, 0) == CLV_OK, "policy");
	{
		uint8_t tk[TICKET_LEN], buf[64];
		size_t n;

		hvp_ticket(server, hv, "dev_ord", TICKET_LEASE, 2, (uint64_t)time(NULL), tk);
		CHECK(bridge_call(&tc.c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf),
				  &n) == CLV_OK,
		      "lease");
	}
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGKILL); /* before it could lock: the phone is switched off */
	sleep(3);
	snprintf(blob, sizeof(blob), "%s/root-%llu.sealed", tc.hv.dir, (unsigned long long)e0);
	CHECK(unseal_file(&tc, blob) == -EPERM, "past the deadline the TPM refuses to unseal");
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "restart");
	CHECK(log_says_closed(&tc), "the volume could not be opened");
	CHECK(hvp_state(&tc.c, &e1) == HV_STATE_ACTIVE && e1 > e0,
	      "the wipe it was due was carried out at start (epoch %llu -> %llu)",
	      (unsigned long long)e0, (unsigned long long)e1);
	CHECK(pending_of(&tc, RECEIPT_AUTO_WIPE, &rc) >= 0 && rc.result == 0 &&
		      rc.checks_run == rc.checks_passed &&
		      rc.wipe_counter_after == rc.wipe_counter_before + 1,
	      "with its receipt, signed in the TPM");
	usleep(300000);
	CHECK(log_count(&tc, "cannot start the corporate VM") == 0,
	      "the fresh VM started once (not again and again after the wipe at start)");
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

static void
tpm_reset_lapses_lease(void)
{
	struct hvtpm tc = {0};
	struct ed25519_key *server = NULL;
	struct receipt rc;
	uint64_t e = 0;
	uint8_t hv[32];

	HVTPM_START(&tc, "reset");
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK, "pin");
	/* lock an hour after the lease, which itself ends in an hour: the host says all is well */
	CHECK(hvp_policy(&tc.c, server, hv, 1, 3600, 7200, 0) == CLV_OK, "policy");
	CHECK(lease(&tc, server, 2) == CLV_OK, "lease");
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGTERM);
	swtpm_stop(&tc.tpm); /* the phone reboots: a TPM reset */
	CHECK(swtpm_start(&tc.tpm) == 0, "TPM powered on again");
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "restart");
	CHECK(hvp_state(&tc.c, &e) == HV_STATE_LOCKED,
	      "a TPM reset since the lease lapses it: locked, whatever the host clock says");
	CHECK(pending_of(&tc, RECEIPT_AUTO_LOCK, &rc) >= 0, "an auto-lock receipt");
	CHECK(lease(&tc, server, 3) == CLV_OK, "a new lease");
	CHECK(hvp_order(&tc.c, server, hv, CLV_FN_UNLOCK, TICKET_UNLOCK, 4, &rc, NULL) == CLV_OK &&
		      rc.result == 0,
	      "then an unlock: the sealed root key still opens");
	usleep(500000);
	CHECK(hvp_state(&tc.c, &e) == HV_STATE_ACTIVE, "and it stays unlocked");
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

/* The number of TPM clock reads cleave-hv logged (--log-level debug) so far. */
static int
clock_reads(const struct hvtpm *tc)
{
	char cmd[PATH_MAX + 64], out[16];

	snprintf(cmd, sizeof(cmd), "grep -c 'TPM clock read' '%s.log'", tc->hv.dir);
	return hvtpm_run(cmd, out, sizeof(out)) >= 0 ? atoi(out) : -1;
}

/* An idle cleave-hv with a far lease does not keep asking the TPM for its clock. */
static void
tpm_clock_read_only_near_deadlines(void)
{
	struct hvtpm tc = {0};
	struct ed25519_key *server = NULL;
	uint8_t hv[32];
	uint64_t e = 0;
	int r0, r1;

	HVTPM_START(&tc, "clockreads");
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGTERM);
	tc.hv.extra[4] = "--log-level";
	tc.hv.extra[5] = "debug";
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0,
	      "restart with debug logging");
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK, "pin");
	/* lock an hour after a lease that ends in an hour */
	CHECK(hvp_policy(&tc.c, server, hv, 1, 3600, 7200, 0) == CLV_OK, "policy");
	CHECK(lease(&tc, server, 2) == CLV_OK, "lease");
	r0 = clock_reads(&tc);
	CHECK(r0 >= 1, "the lease renewal reads the TPM clock (%d reads logged)", r0);
	sleep(3); /* 15 main-loop ticks */
	CHECK(hvp_state(&tc.c, &e) == HV_STATE_ACTIVE, "still active");
	r1 = clock_reads(&tc);
	CHECK(r1 >= r0 && r1 - r0 <= 1,
	      "3 s idle with the next deadline an hour away: %d TPM clock reads (at most 1)",
	      r1 - r0);
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

/* Restarts cleave-hv with its host clock turned by skew_s (CLEAVE_HV_CLOCK_SKEW_S). */
static int
restart_skewed(struct hvtpm *tc, long skew_s)
{
	char v[32];
	int r;

	bridge_close(&tc->c);
	hvp_stop(&tc->hv, SIGTERM);
	snprintf(v, sizeof(v), "%ld", skew_s);
	setenv("CLEAVE_HV_CLOCK_SKEW_S", v, 1);
	r = hvp_start(&tc->hv);
	unsetenv("CLEAVE_HV_CLOCK_SKEW_S");
	return r == 0 ? bridge_connect(&tc->c, tc->hv.sock, 5000) : -1;
}

static void
tpm_clock_decides_lease(void)
{
	struct hvtpm tc = {0};
	struct ed25519_key *server = NULL;
	uint8_t hv[32], tk[TICKET_LEN], buf[64];
	uint64_t e0 = 0, e = 0;
	uint32_t st = 0;
	size_t n;

	HVTPM_START(&tc, "clock");
	CHECK(hvp_pin_new(&tc.c, &server, hv) == CLV_OK, "pin");
	CHECK(hvp_state(&tc.c, &e0) == HV_STATE_ACTIVE, "active");
	/* lock 1 s after a lease that ends in 3 s; wipe an hour after it */
	CHECK(hvp_policy(&tc.c, server, hv, 1, 1, 3600, 0) == CLV_OK, "policy");
	hvp_ticket(server, hv, "dev_ord", TICKET_LEASE, 2, (uint64_t)time(NULL) + 3, tk);
	CHECK(bridge_call(&tc.c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_OK,
	      "lease");
	/* the host clock two hours ahead: the host would wipe now; the TPM says the lease runs */
	CHECK(restart_skewed(&tc, 7200) == 0, "restart with the host clock 2 h ahead");
	usleep(1000000);
	CHECK(hvp_state(&tc.c, &e) == HV_STATE_ACTIVE && e == e0,
	      "the host clock turned forward changes nothing");
	/* the host clock an hour back: the host says the lease runs an hour more */
	CHECK(restart_skewed(&tc, -3600) == 0, "restart with the host clock 1 h back");
	for (int i = 0; i < 60 && st != HV_STATE_LOCKED; i++) { /* at most 6 s */
		usleep(100000);
		st = hvp_state(&tc.c, &e);
	}
	CHECK(st == HV_STATE_LOCKED && e == e0,
	      "locked 1 s past the lease on the TPM clock, whatever the host clock says");
	ed25519_key_free(server);
	hvtpm_end(&tc);
}

/*
 * A relay between cleave-ticket and cleave-hv on fake (listening already on lfd) that spoils
 * one reply: spoil 'a' flips a bit of the attestation's measurement; 'k' puts other_spki (a
 * valid P-256 key of the AK's size, not the AK) into TPM_IDENTITY's reply. The child's pid.
 */
static pid_t
relay_start(int lfd, const char *real, int spoil, const uint8_t *other_spki)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	int cfd = accept(lfd, NULL, NULL);
	struct bridge_client up;
	uint8_t in[4096], out[CLV_MSG_PAYLOAD_MAX], msg[4096];

	if (cfd < 0 || bridge_connect(&up, real, 5000) != 0)
		_exit(1);
	for (int i = 0; i < 8; i++) {
		ssize_t n = recv(cfd, in, sizeof(in), 0);
		struct clv_msg_hdr h;
		const uint8_t *pl;
		size_t rl = 0;
		long m;
		int st;

		if (n <= 0 || clv_msg_decode(in, (size_t)n, &h, &pl) != 0)
			break;
		st = bridge_call(&up, h.fid, pl, h.payload_len, out, sizeof(out), &rl);
		if (st == CLV_OK && spoil == 'a' && h.fid == CLV_FN_ATTEST)
			out[80] ^= 1; /* the measurement: the signature no longer covers the body */
		if (st == CLV_OK && spoil == 'k' && h.fid == CLV_FN_TPM_IDENTITY && rl > 91)
			memcpy(out + rl - 91, other_spki, 91); /* the AK's SPKI is last */
		h.kind = CLV_MSG_REPLY;
		h.status = st < -9 ? CLV_E_INVALID_STATE : st;
		h.payload_len = st == CLV_OK ? (uint32_t)rl : 0;
		m = clv_msg_encode(&h, out, msg, sizeof(msg));
		if (m < 0 || send(cfd, msg, (size_t)m, 0) != m)
			break;
	}
	_exit(0);
}

/* The DER SPKI of a fresh software P-256 key into out (91 bytes). 0 or -1. */
static int
other_p256_spki(uint8_t out[91])
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	unsigned char *p = out;
	int n = k != NULL ? i2d_PUBKEY(k, NULL) : -1;

	if (n == 91)
		n = i2d_PUBKEY(k, &p);
	EVP_PKEY_free(k);
	return n == 91 ? 0 : -1;
}

/* cleave-ticket make --hv-socket through a relay spoiling it as spoil says: its exit status. */
static int
ticket_via_relay(struct hvtpm *tc, int spoil)
{
	char fake[PATH_MAX + 16], cmd[4 * PATH_MAX], out[512];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t other[91];
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), st;
	pid_t pid;

	snprintf(fake, sizeof(fake), "%s/relay.sock", tc->tpm.dir);
	str_copy(sa.sun_path, sizeof(sa.sun_path), fake);
	unlink(fake);
	if (lfd < 0 || other_p256_spki(other) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0)
		return -1;
	pid = relay_start(lfd, tc->hv.sock, spoil, other);
	close(lfd);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && '%s' make --key owner.key --hv-socket '%s' --device dev_ord "
		 "--counter 9 --out spoiled.tk lock 2>&1",
		 tc->tpm.dir, tc->ticket, fake);
	st = hvtpm_run(cmd, out, sizeof(out));
	waitpid(pid, NULL, 0);
	return st;
}

/* cleave-ticket asks a --tpm cleave-hv for its identity: a v3 attestation and the AK's SPKI. */
static void
tpm_ticket_tool_takes_tpm_identity(void)
{
	struct hvtpm tc = {0};
	char cmd[4 * PATH_MAX], out[1024];
	uint64_t e = 0;

	HVTPM_START(&tc, "ticket");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && '%s' keygen owner.key > owner.pub && '%s' --socket '%s' pin "
		 "\"$(cat owner.pub)\" dev_ord && '%s' make --key owner.key --hv-socket '%s' "
		 "--device dev_ord --counter 1 --out lock.tk lock && '%s' --socket '%s' lock "
		 "--ticket lock.tk 2>&1",
		 tc.tpm.dir, tc.ticket, tc.hvctl, tc.hv.sock, tc.ticket, tc.hv.sock, tc.hvctl,
		 tc.hv.sock);
	CHECK(hvtpm_run(cmd, out, sizeof(out)) == 0,
	      "pin, a ticket from the TPM's identity, and a "
	      "lock by it: %s",
	      out);
	CHECK(hvp_state(&tc.c, &e) == HV_STATE_LOCKED, "cleave-hv took the ticket: locked");
	CHECK(ticket_via_relay(&tc, 0) == 0, "through a faithful relay the ticket is made");
	CHECK(ticket_via_relay(&tc, 'a') != 0, "an attestation its key did not sign is refused");
	CHECK(ticket_via_relay(&tc, 'k') != 0,
	      "an SPKI that is not the key the attestation names is refused");
	hvtpm_end(&tc);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"tpm_identity_signs_attestations_and_receipts",
		 tpm_identity_signs_attestations_and_receipts},
		{"tpm_activate_and_quote", tpm_activate_and_quote},
		{"tpm_restored_state_refuses_tickets", tpm_restored_state_refuses_tickets},
		{"tpm_state_counter_catches_up", tpm_state_counter_catches_up},
		{"tpm_wipe_kills_kept_copy", tpm_wipe_kills_kept_copy},
		{"tpm_past_sealed_deadline_wipes_at_start",
		 tpm_past_sealed_deadline_wipes_at_start},
		{"tpm_reset_lapses_lease", tpm_reset_lapses_lease},
		{"tpm_clock_decides_lease", tpm_clock_decides_lease},
		{"tpm_clock_read_only_near_deadlines", tpm_clock_read_only_near_deadlines},
		{"tpm_ticket_tool_takes_tpm_identity", tpm_ticket_tool_takes_tpm_identity},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
