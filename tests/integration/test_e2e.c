/*
 * The product end to end: the real cleave-server, cleave-hv and cleave-agent on 127.0.0.1. An
 * admin's wipe reaches the parked agent, cleave-hv erases the corporate half, and the server
 * shows the command completed with a receipt it verified, while a personal folder stays
 * byte-identical. Also lock/unlock/rekey/retire, crashes and restarts of each process, the
 * offline policy enforced by cleave-hv alone, and forged or foreign reports refused; the
 * agent's and cleave-devsim's --version and unknown options. Parts that need the corporate VM
 * (its console) print "skipped: ..." where /dev/kvm cannot be opened (tests/run.sh lists them).
 * Every process is stopped with SIGTERM and must exit 0, so `make asan` sees its leaks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "e2e.h"
#include "fileio.h"
#include "util.h"
#include "vmm.h"
#include "wire.h"

#define CMD_MS 20000 /* an order from POST to verified receipt, generous for loaded machines */

/* Types a console line in the corporate guest; out gets its answer. 0 or -1. */
static int
console_ms(struct e2e *e, const char *line, char *out, size_t cap, int ms)
{
	int fd = hvp_console_open(&e->hv, ms), r;

	out[0] = '\0';
	if (fd < 0)
		return -1;
	r = hvp_console_cmd(fd, line, out, cap, ms);
	close(fd);
	return r;
}

static int
console(struct e2e *e, const char *line, char *out, size_t cap)
{
	return console_ms(e, line, out, cap, 10000);
}

static int
personal_fingerprint(const char *dir, char *out, size_t cap)
{
	char cmd[PATH_MAX * 2];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && find . -type f -printf '%%p %%s %%T@ %%m\\n' | sort && find . -type f "
		 "| sort | xargs sha256sum",
		 dir);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	return pclose(f) == 0 && n > 0 ? 0 : -1;
}

/* A process stopped with SIGTERM must exit 0 (under `make asan`: also without leaks). */
#define STOP_CLEANLY(call, what)                                                                   \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		CHECK(rc_ == 0, "%s must exit 0 on SIGTERM, not %d", (what), rc_);                 \
	} while (0)

static int
personal_make(const char *dir)
{
	char path[PATH_MAX + 32];

	if (mkdir(dir, 0700) != 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		uint8_t data[30000];

		for (size_t k = 0; k < sizeof(data); k++)
			data[k] = (uint8_t)(k * 13 + (size_t)i);
		snprintf(path, sizeof(path), "%s/file%d.bin", dir, i);
		if (file_write_atomic(path, data, sizeof(data), 0644) != 0)
			return -1;
	}
	return 0;
}

/* The verified receipt of a finished command, checked again here with openssl alone. */
static int
auditor_verifies(struct e2e *e, json_t *cmd, const char *dir)
{
	char path[160], line[PATH_MAX * 4];
	json_t *dev;
	int r;

	snprintf(path, sizeof(path), "/api/v1/devices/%s", e->device_id);
	dev = e2e_get(e, path);
	if (dev == NULL)
		return -1;
	/* the README's auditor steps, with the values an auditor would copy from the API */
	snprintf(line, sizeof(line),
		 "cd '%s' && echo '%s' | base64 -d > receipt.bin && echo '%s' | base64 -d > "
		 "ticket.bin && echo '%s' | base64 -d > hv_key.bin && { printf "
		 "'\\060\\052\\060\\005\\006\\003\\053\\145\\160\\003\\041\\000'; cat hv_key.bin; "
		 "} | "
		 "openssl pkey -pubin -inform DER -out hv.pem && head -c 256 receipt.bin > "
		 "body.bin && "
		 "tail -c 64 receipt.bin > sig.bin && openssl pkeyutl -verify -pubin -inkey hv.pem "
		 "-rawin -in body.bin -sigfile sig.bin >/dev/null && [ \"$(od -An -tx1 -v -j112 "
		 "-N32 "
		 "receipt.bin | tr -d ' \\n')\" = \"$(sha256sum < ticket.bin | cut -d' ' -f1)\" ]",
		 dir, e2e_str(cmd, "receipt"), e2e_str(cmd, "ticket"),
		 e2e_str(json_object_get(dev, "hypervisor"), "key"));
	json_decref(dev);
	r = system(line);
	return r == 0 ? 0 : -1;
}

static void
test_e2e_wipe_verified_personal_untouched(void)
{
	struct e2e e;
	char id[64], out[4096], personal[PATH_MAX + 32], before[8192], after[8192];
	int kvm = vmm_kvm_available();
	json_t *cmd;
	int64_t t0;

	CHECK(e2e_up(&e, "e2e-wipe", NULL) == 0, "start server and cleave-hv");
	CHECK(e2e_policy(&e, "{\"offline\":{\"lock_after_hours\":72}}") == 0, "policy");
	CHECK(e2e_enroll(&e, "alice@example.com") == 0, "enroll (see %s)", e.agent_log);
	CHECK(e2e_agent_start(&e, NULL) == 0, "agent");
	CHECK(e2e_wait_reported(&e, "active", CMD_MS) == 0, "the agent never reported in");
	{
		char path[160], att[16] = "";

		snprintf(path, sizeof(path), "/api/v1/devices/%s", e.device_id);
		for (int k = 0; k < 200 && (att[0] == '\0' || strcmp(att, "enrolled") == 0); k++) {
			json_t *dev = e2e_get(&e, path);

			str_copy(att, sizeof(att),
				 e2e_str(json_object_get(dev, "hypervisor"), "attestation"));
			json_decref(dev);
			usleep(50000);
		}
		CHECK(strcmp(att, "ok") == 0,
		      "the agent's check-in attestation must verify on the server (%s)", att);
		/* compliant on evidence: cleave-hv attests the policy it enforces */
		for (int k = 0; k < 200; k++) {
			json_t *dev = e2e_get(&e, path);
			int ok = json_is_true(
				json_object_get(json_object_get(dev, "compliance"), "compliant"));

			json_decref(dev);
			if (ok)
				break;
			CHECK(k < 199, "the device never became compliant");
			usleep(50000);
		}
	}
	snprintf(personal, sizeof(personal), "%s.personal", e.agent_dir);
	CHECK(personal_make(personal) == 0 &&
		      personal_fingerprint(personal, before, sizeof(before)) == 0,
	      "personal folder");
	if (kvm) {
		CHECK(console(&e, "put plan merger closes on the 14th", out, sizeof(out)) == 0 &&
			      strstr(out, "saved") != NULL,
		      "put: %s", out);
	} else {
		printf("    skipped: its console parts (/dev/kvm cannot be opened here)\n");
	}
	/* the admin's wipe, delivered to the parked agent */
	usleep(300000);
	t0 = e2e_now_ms();
	CHECK(e2e_command(&e, "wipe", id, sizeof(id)) == 202, "queue the wipe");
	cmd = e2e_wait_command(&e, id, CMD_MS);
	CHECK(cmd != NULL, "the wipe did not finish (see %s)", e.agent_log);
	printf("    POST -> verified receipt: %lld ms\n", (long long)(e2e_now_ms() - t0));
	CHECK(strcmp(e2e_str(cmd, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(cmd, "verified")),
	      "the wipe must be completed and verified: %s", e2e_str(cmd, "status"));
	CHECK(auditor_verifies(&e, cmd, e.hv.dir) == 0,
	      "openssl must verify the receipt against the device's hypervisor key");
	json_decref(cmd);
	CHECK(e2e_wait_reported(&e, "wiped", 5000) == 0, "reported state should be wiped");
	if (kvm) {
		CHECK(console(&e, "get plan", out, sizeof(out)) == 0 &&
			      strstr(out, "no record plan") != NULL,
		      "the record survived the wipe: %s", out);
	}
	CHECK(personal_fingerprint(personal, after, sizeof(after)) == 0 &&
		      strcmp(before, after) == 0,
	      "the personal folder changed");
	snprintf(out, sizeof(out), "rm -rf '%s'", personal);
	(void)!system(out);
	e2e_down(&e);
}

/* The device record's field in a sub-object ("" when missing). */
static const char *
dev_field(struct e2e *e, const char *obj, const char *key, char *out, size_t cap)
{
	char path[160];
	json_t *j, *v;

	snprintf(path, sizeof(path), "/api/v1/devices/%s", e->device_id);
	j = e2e_get(e, path);
	v = obj ? json_object_get(json_object_get(j, obj), key) : json_object_get(j, key);
	if (json_is_string(v))
		str_copy(out, cap, json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, cap, "%lld", (long long)json_integer_value(v));
	else
		str_copy(out, cap, "");
	json_decref(j);
	return out;
}

/* Queues type and waits for it to be completed with a verified receipt. 0 or -1. */
static int
order(struct e2e *e, const char *type)
{
	char id[64];
	json_t *cmd;
	int ok;

	long st = e2e_command(e, type, id, sizeof(id));

	if (st != 202) {
		printf("    %s: queued with HTTP %ld\n", type, st);
		return -1;
	}
	cmd = e2e_wait_command(e, id, CMD_MS);
	ok = cmd != NULL && strcmp(e2e_str(cmd, "status"), "completed") == 0 &&
	     json_is_true(json_object_get(cmd, "verified"));
	if (!ok)
		printf("    %s: %s (see %s)\n", type, cmd ? e2e_str(cmd, "status") : "timeout",
		       e->agent_log);
	json_decref(cmd);
	return ok ? 0 : -1;
}

/* Server, cleave-hv and a running, enrolled agent. */
static int
up_enrolled(struct e2e *e, const char *tag, const char *conf, const char *policy)
{
	if (e2e_up(e, tag, conf) != 0 || e2e_policy(e, policy) != 0 ||
	    e2e_enroll(e, "bo@example.com") != 0 || e2e_agent_start(e, NULL) != 0)
		return -1;
	return e2e_wait_reported(e, "active", CMD_MS);
}

static const char *const std_policy = "{\"offline\":{\"lock_after_hours\":72}}";

static void
test_e2e_lock_unlock_rekey_retire(void)
{
	struct e2e e;
	char before[32], after[32], out[4096], st[32];

	CHECK(up_enrolled(&e, "e2e-orders", NULL, std_policy) == 0, "enrolled agent");
	CHECK(order(&e, "lock") == 0, "lock");
	CHECK(e2e_wait_reported(&e, "locked", 5000) == 0, "reported locked");
	if (vmm_kvm_available())
		CHECK(console_ms(&e, "list", out, sizeof(out), 1000) != 0,
		      "the locked corporate half answered its console: %s", out);
	CHECK(order(&e, "unlock") == 0, "unlock");
	CHECK(e2e_wait_reported(&e, "active", 5000) == 0, "reported active");
	if (vmm_kvm_available())
		CHECK(console(&e, "list", out, sizeof(out)) == 0, "console after unlock");
	dev_field(&e, "hypervisor", "key_epoch", before, sizeof(before));
	CHECK(order(&e, "rekey") == 0, "rekey");
	dev_field(&e, "hypervisor", "key_epoch", after, sizeof(after));
	CHECK(atoll(after) == atoll(before) + 1, "rekey: key epoch %s -> %s", before, after);
	/* the employee leaves: unenroll retires the corporate half with a receipt */
	STOP_CLEANLY(e2e_agent_stop(&e, SIGTERM), "cleave-agent");
	CHECK(e2e_agent_cmd(&e, "unenroll", out, sizeof(out)) == 0, "unenroll: %s", out);
	CHECK(strcmp(dev_field(&e, NULL, "status", st, sizeof(st)), "retired") == 0,
	      "the device must be retired, is %s", st);
	CHECK(e2e_wait_reported(&e, "wiped", 5000) == 0, "reported wiped after retire");
	e2e_down(&e);
}

/* hvctl status field (e.g. "receipt seq") of cleave-hv, or -1. */
static long long
hv_status(struct e2e *e, const char *name)
{
	char cmd[PATH_MAX * 2], line[256];
	const char *bin = getenv("CLEAVE_BIN");
	long long v = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s/cleave-hvctl --socket '%s' status",
		 bin && *bin ? bin : "build/bin", e->hv.sock);
	f = popen(cmd, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':')
			v = atoll(line + strlen(name) + 1);
	if (f != NULL)
		pclose(f);
	return v;
}

static void
test_e2e_agent_kill9_mid_command(void)
{
	static const char *const points[] = {"after-received", "before-order", "after-order",
					     "before-report"};

	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		struct e2e e;
		char env[64], id[64];
		long long seq0, seq1;
		json_t *cmd;
		int st = 0;

		CHECK(up_enrolled(&e, "e2e-kill9", NULL, std_policy) == 0, "enrolled agent");
		/* the agent again, armed to die at this point of the next command */
		STOP_CLEANLY(e2e_agent_stop(&e, SIGTERM), "cleave-agent");
		snprintf(env, sizeof(env), "CLEAVE_AGENT_FAULT=%s", points[i]);
		CHECK(e2e_agent_start(&e, env) == 0, "armed agent");
		usleep(300000);
		seq0 = hv_status(&e, "receipt seq");
		CHECK(e2e_command(&e, "lock", id, sizeof(id)) == 202, "queue lock");
		for (int k = 0; k < 1000; k++) { /* it dies by itself (10 s) */
			if (waitpid(e.agent_pid, &st, WNOHANG) == e.agent_pid) {
				t_track_child(e.agent_pid, 0);
				e.agent_pid = 0;
				break;
			}
			usleep(10000);
		}
		CHECK(e.agent_pid == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "%s: the agent did not die at the fault point", points[i]);
		CHECK(e2e_agent_start(&e, NULL) == 0, "restart");
		cmd = e2e_wait_command(&e, id, CMD_MS);
		CHECK(cmd != NULL && strcmp(e2e_str(cmd, "status"), "completed") == 0 &&
			      json_is_true(json_object_get(cmd, "verified")),
		      "%s: the lock must complete, verified, after the restart", points[i]);
		json_decref(cmd);
		seq1 = hv_status(&e, "receipt seq");
		CHECK(seq1 == seq0 + 1,
		      "%s: cleave-hv must have run it exactly once (%lld -> %lld)", points[i], seq0,
		      seq1);
		CHECK(e2e_wait_reported(&e, "locked", 5000) == 0, "reported locked");
		e2e_down(&e);
	}
}

static void
test_e2e_server_restart_while_parked(void)
{
	struct e2e e;

	CHECK(up_enrolled(&e, "e2e-restart", NULL, std_policy) == 0, "enrolled agent");
	usleep(500000); /* parked */
	STOP_CLEANLY(e2e_server_stop(&e, SIGTERM), "cleave-server");
	CHECK(e2e_server_start(&e) == 0, "server restart");
	CHECK(order(&e, "lock") == 0, "a lock after the restart must reach the agent");
	e2e_down(&e);
}

static void
test_e2e_server_down_backoff_then_wipe(void)
{
	struct e2e e;

	CHECK(up_enrolled(&e, "e2e-down", NULL, std_policy) == 0, "enrolled agent");
	STOP_CLEANLY(e2e_server_stop(&e, SIGTERM), "cleave-server");
	sleep(3);
	CHECK(e2e_agent_logged(&e, "retrying in"),
	      "the agent should back off while the server is down");
	CHECK(e2e_server_start(&e) == 0, "server back");
	CHECK(order(&e, "wipe") == 0, "the wipe queued after the outage must be delivered");
	CHECK(e2e_agent_logged(&e, "server reachable again"), "reconnect not logged");
	e2e_down(&e);
}

/* Offline too long: cleave-hv locks, then wipes by itself; the receipts reach the server. */
static void
test_e2e_offline_lease_lapse(void)
{
	struct e2e e;
	char path[200], v[32];
	int64_t end;
	json_t *j;
	int locked = 0, wiped = 0;
	long long epoch0;

	CHECK(up_enrolled(&e, "e2e-lease", "lease_seconds = 5\n",
			  "{\"offline\":{\"lock_after_seconds\":2,\"wipe_after_seconds\":5}}") == 0,
	      "enrolled agent");
	for (int k = 0;
	     k < 100 && strcmp(dev_field(&e, "policy", "applied_version", v, sizeof(v)), "1") != 0;
	     k++)
		usleep(100000);
	CHECK(strcmp(v, "1") == 0, "the policy was not applied");
	epoch0 = hv_status(&e, "key epoch");
	/* the phone goes offline */
	STOP_CLEANLY(e2e_agent_stop(&e, SIGTERM), "cleave-agent");
	end = e2e_now_ms() + 30000;
	while (e2e_now_ms() < end && !wiped) {
		char state[32] = "";
		char cmd[PATH_MAX * 2];
		const char *bin = getenv("CLEAVE_BIN");
		FILE *f;

		snprintf(cmd, sizeof(cmd),
			 "%s/cleave-hvctl --socket '%s' status | sed -n 's/^state: //p'",
			 bin && *bin ? bin : "build/bin", e.hv.sock);
		f = popen(cmd, "r");
		if (f != NULL && fgets(state, sizeof(state), f) != NULL)
			state[strcspn(state, "\n")] = '\0';
		if (f != NULL)
			pclose(f);
		locked |= strcmp(state, "locked") == 0;
		wiped = strcmp(state, "active") == 0 && hv_status(&e, "key epoch") > epoch0;
		usleep(200000);
	}
	CHECK(locked, "cleave-hv never locked the offline corporate half");
	CHECK(wiped, "cleave-hv never wiped the offline corporate half");
	/* back online: the agent uploads both receipts, the server records them */
	CHECK(e2e_agent_start(&e, NULL) == 0, "agent back");
	CHECK(e2e_wait_reported(&e, "wiped", CMD_MS) == 0,
	      "the auto-wipe receipt did not reach the server");
	snprintf(path, sizeof(path), "/api/v1/audit?action=device.receipt&target=%s", e.device_id);
	j = e2e_get(&e, path);
	{
		char *dump = j ? json_dumps(j, 0) : NULL;
		int ok = dump && strstr(dump, "auto_lock") && strstr(dump, "auto_wipe");

		free(dump);
		json_decref(j);
		CHECK(ok, "both auto receipts must be in the audit log");
	}
	e2e_down(&e);
}

/* Loads the agent's device key into a simulated device, to speak as that device. */
static int
as_device(struct e2e *e, struct device_sim *d)
{
	char path[PATH_MAX + 32];

	memset(d, 0, sizeof(*d));
	snprintf(path, sizeof(path), "%s/device.key", e->agent_dir);
	str_copy(d->id, sizeof(d->id), e->device_id);
	d->nonce = (uint64_t)1 << 62; /* above anything the agent used (it is stopped for good) */
	return ed25519_key_load(path, &d->key);
}

static void
test_e2e_forged_receipts_and_foreign_device(void)
{
	struct e2e e;
	struct device_sim me, other;
	struct client *dc, *oc;
	char lid[64], rid[64], path[160], body[1024], token[256];
	uint8_t raw[RECEIPT_LEN];
	struct resp r;
	json_t *cmd;
	const char *b;

	CHECK(up_enrolled(&e, "e2e-forge", NULL, std_policy) == 0, "enrolled agent");
	CHECK(order(&e, "lock") == 0, "lock");
	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?status=completed", e.device_id);
	CHECK(e2e_command(&e, "refresh", rid, sizeof(rid)) == 202, "refresh");
	cmd = e2e_wait_command(&e, rid, CMD_MS);
	json_decref(cmd);
	/* the lock's real receipt, offered for another command, and a tampered copy */
	STOP_CLEANLY(e2e_agent_stop(&e, SIGTERM), "cleave-agent");
	CHECK(e2e_command(&e, "unlock", lid, sizeof(lid)) == 202, "queue unlock");
	{
		json_t *lock = NULL, *list;
		size_t k;
		json_t *it;

		list = e2e_get(&e, path);
		json_array_foreach(json_object_get(list, "items"), k,
				   it) if (strcmp(e2e_str(it, "type"), "lock") == 0) lock = it;
		b = lock ? e2e_str(lock, "receipt") : "";
		CHECK(b64_decode(raw, sizeof(raw), b, strlen(b)) == RECEIPT_LEN,
		      "lock receipt from the API");
		json_decref(list);
	}
	CHECK(as_device(&e, &me) == 0, "device key");
	dc = client_new(&e.s, NULL);
	for (int forge = 0; forge < 2; forge++) {
		char rb64[600];

		if (forge)
			raw[200] ^= 1;
		b64_encode(rb64, sizeof(rb64), raw, sizeof(raw));
		snprintf(body, sizeof(body), "{\"status\":\"completed\",\"receipt\":\"%s\"}", rb64);
		snprintf(path, sizeof(path), "/device/v1/commands/%s/result", lid);
		CHECK(dev_req(&me, dc, "POST", path, body, 0, &r) == 0, "tx");
		CHECK_STATUS(r, 422);
		resp_free(&r);
	}
	snprintf(path, sizeof(path), "/api/v1/commands/%s", lid);
	cmd = e2e_get(&e, path);
	CHECK(cmd && strcmp(e2e_str(cmd, "status"), "completed") != 0 &&
		      !json_is_true(json_object_get(cmd, "verified")),
	      "a replayed or forged receipt must leave the command open");
	json_decref(cmd);
	/* a second enrolled device: it never sees, and cannot touch, the first one's commands */
	CHECK(dev_init(&other) == 0 &&
		      admin_etoken(e.admin, "eve@example.com", 1, token, sizeof(token)) == 0,
	      "second device");
	oc = client_new(&e.s, NULL);
	CHECK(dev_enroll(&other, oc, token, &r) == 0 && r.status == 201,
	      "enroll the second device");
	resp_free(&r);
	CHECK(dev_req(&other, oc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0, "tx");
	CHECK(r.body == NULL || strstr(r.body, lid) == NULL, "another device got the command");
	resp_free(&r);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", lid);
	CHECK(dev_req(&other, oc, "POST", path, "{}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 404);
	resp_free(&r);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", lid);
	CHECK(dev_req(&other, oc, "POST", path, "{\"status\":\"failed\"}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 404);
	resp_free(&r);
	client_free(dc);
	client_free(oc);
	ed25519_key_free(me.key);
	dev_fini(&other);
	e2e_down(&e);
}

/* Enrollment mistakes a newcomer makes get a clear message, a distinct exit code, and no state. */
static void
test_e2e_enroll_errors(void)
{
	struct e2e e;
	char token[256], args[PATH_MAX * 3], out[4096], bad_url[64];
	int rc;

	CHECK(e2e_up(&e, "e2e-enrollerr", NULL) == 0, "start server and cleave-hv");
	CHECK(admin_etoken(e.admin, "dan@example.com", 1, token, sizeof(token)) == 0, "token");
	/* a wrong token: refused by the server (3) */
	snprintf(args, sizeof(args),
		 "enroll --server %s --token cet_wrong --ca-cert '%s' --hv-socket '%s'", e.s.url,
		 e.s.cacert, e.hv.sock);
	rc = e2e_agent_cmd(&e, args, out, sizeof(out));
	CHECK(rc == 3 && strstr(out, "token") != NULL, "wrong token: exit %d: %s", rc, out);
	/* nothing listening: unreachable (4) */
	snprintf(bad_url, sizeof(bad_url), "https://127.0.0.1:1");
	snprintf(args, sizeof(args),
		 "enroll --server %s --token %s --ca-cert '%s' --hv-socket '%s'", bad_url, token,
		 e.s.cacert, e.hv.sock);
	rc = e2e_agent_cmd(&e, args, out, sizeof(out));
	CHECK(rc == 4, "unreachable server: exit %d: %s", rc, out);
	/* a pinned key that is not the server's: certificate mismatch (4) */
	snprintf(args, sizeof(args),
		 "enroll --server %s --token %s --pin-sha256 "
		 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= --hv-socket '%s'",
		 e.s.url, token, e.hv.sock);
	rc = e2e_agent_cmd(&e, args, out, sizeof(out));
	CHECK(rc == 4 && (strstr(out, "certificate") != NULL || strstr(out, "pin") != NULL),
	      "certificate mismatch: exit %d: %s", rc, out);
	/* cleave-hv not running (5) */
	snprintf(args, sizeof(args),
		 "enroll --server %s --token %s --ca-cert '%s' --hv-socket /nonexistent/hv.sock",
		 e.s.url, token, e.s.cacert);
	rc = e2e_agent_cmd(&e, args, out, sizeof(out));
	CHECK(rc == 5 && strstr(out, "cleave-hv") != NULL, "hypervisor not running: exit %d: %s",
	      rc, out);
	/* and the token was not used up by any of these: the right enrollment still works */
	snprintf(args, sizeof(args),
		 "enroll --server %s --token %s --ca-cert '%s' --hv-socket '%s'", e.s.url, token,
		 e.s.cacert, e.hv.sock);
	rc = e2e_agent_cmd(&e, args, out, sizeof(out));
	CHECK(rc == 0, "enrollment after the mistakes: exit %d: %s", rc, out);
	e2e_down(&e);
}

/* Runs bin_dir/exe with args (shell words), output of both streams into out; exit code. */
static int
run_tool(const char *exe, const char *args, char *out, size_t cap)
{
	const char *bin = getenv("CLEAVE_BIN");
	char cmd[PATH_MAX + 256];
	size_t n;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "timeout 10 '%s/%s' %s 2>&1", bin && *bin ? bin : "build/bin",
		 exe, args);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Both device-side tools print their version, and name an option they do not know. */
static void
test_e2e_cli_version_and_unknown_option(void)
{
	static const char *const tools[] = {"cleave-agent", "cleave-devsim"};
	char out[4096], want[64];
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
		snprintf(want, sizeof(want), "%s 0.", tools[i]);
		rc = run_tool(tools[i], "--version", out, sizeof(out));
		CHECK(rc == 0 && strncmp(out, want, strlen(want)) == 0 && strchr(out, '\n') &&
			      strchr(out, '\n')[1] == '\0',
		      "%s --version: exit %d, '%s'", tools[i], rc, out);
		rc = run_tool(tools[i], "--state /nonexistent --frobnicate checkin", out,
			      sizeof(out));
		CHECK(rc == 2 && strstr(out, "unknown option --frobnicate") != NULL,
		      "%s with an unknown option: exit %d, '%s'", tools[i], rc, out);
		rc = run_tool(tools[i], "--state", out, sizeof(out));
		CHECK(rc == 2 && strstr(out, "--state needs a value") != NULL,
		      "%s --state without a value: exit %d, '%s'", tools[i], rc, out);
	}
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"e2e_wipe_verified_personal_untouched", test_e2e_wipe_verified_personal_untouched},
		{"e2e_enroll_errors", test_e2e_enroll_errors},
		{"e2e_lock_unlock_rekey_retire", test_e2e_lock_unlock_rekey_retire},
		{"e2e_agent_kill9_mid_command", test_e2e_agent_kill9_mid_command},
		{"e2e_server_restart_while_parked", test_e2e_server_restart_while_parked},
		{"e2e_server_down_backoff_then_wipe", test_e2e_server_down_backoff_then_wipe},
		{"e2e_offline_lease_lapse", test_e2e_offline_lease_lapse},
		{"e2e_forged_receipts_and_foreign_device",
		 test_e2e_forged_receipts_and_foreign_device},
		{"e2e_cli_version_and_unknown_option", test_e2e_cli_version_and_unknown_option},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
