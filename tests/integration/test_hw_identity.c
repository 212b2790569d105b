/*
 * A deployment that requires a hardware identity (issue 13, hypercall-bridge/TPM.md): with
 * require_hardware_identity = 1 and the TPM manufacturers' CAs in tpm_ca_file, a device whose
 * hypervisor key is a software key (the simulated device of testlib, and cleave-devsim, the
 * tool anyone can run) is refused at enrollment with the reason, the refusal is audited, no
 * device appears and the enrollment token keeps its use; without the setting the same device
 * enrolls (and shows as a file-keystore identity). The settings are checked at start: requiring
 * hardware without CAs, or a CA file with no certificate, fails --check-config. The CAs are a
 * real TPM manufacturer's: those swtpm_localca makes for a manufactured swtpm (swtpmtest.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "swtpmtest.h"
#include "testlib.h"
#include "util.h"

static int
write_conf(const struct srv *s, const char *text, char *path, size_t cap)
{
	FILE *f;

	char *slash;

	/* beside the server's log, in its case directory (the data directory comes later) */
	str_copy(path, cap, s->log);
	slash = strrchr(path, '/');
	if (slash == NULL)
		return -1;
	str_copy(slash + 1, cap - (size_t)(slash + 1 - path), "cleave.conf");
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

static void
software_keys_refused_when_hardware_required(void)
{
	struct swtpm t;
	struct srv s;
	struct client *admin = NULL, *dc = NULL;
	struct device_sim d;
	struct resp r = {0};
	char cas[PATH_MAX + 16], conf[PATH_MAX + 16], text[PATH_MAX + 128], tok[128];
	char cmd[4 * PATH_MAX], state[PATH_MAX + 8];
	const char *bin = getenv("CLEAVE_BIN");
	json_t *j;
	long st;
	int rc;

	if (swtpm_skip_reason() != NULL)
		SKIP("%s", swtpm_skip_reason());
	CHECK(swtpm_make(&t, "maker") == 0 && swtpm_ca_bundle(&t, cas, sizeof(cas)) == 0,
	      "a TPM manufacturer's CAs");
	CHECK(srv_init(&s, "hwid") == 0, "server dir");
	snprintf(text, sizeof(text), "require_hardware_identity = 1\ntpm_ca_file = %s\n", cas);
	CHECK(write_conf(&s, text, conf, sizeof(conf)) == 0, "config");
	{
		const char *extra[] = {"--config", conf, NULL};

		CHECK(srv_start(&s, extra) == 0, "server with require_hardware_identity");
	}
	admin = client_new(&s, s.admin);
	dc = client_new(&s, NULL);
	CHECK(admin != NULL && dc != NULL, "clients");

	/* the simulated device: a valid attestation, but by a software Ed25519 key */
	CHECK(admin_etoken(admin, "eve@example.com", 1, tok, sizeof(tok)) == 0, "etoken");
	CHECK(dev_init(&d) == 0 && dev_enroll(&d, dc, tok, &r) == 0, "enroll request");
	CHECK_STATUS(r, 403);
	CHECK(strstr(r.body, "software key") != NULL && strstr(r.body, "TPM") != NULL,
	      "the refusal says why: %.300s", r.body);
	resp_free(&r);

	/* cleave-devsim, the simulator anyone can run, is refused too */
	snprintf(state, sizeof(state), "%s/devsim", s.dir);
	snprintf(cmd, sizeof(cmd),
		 "%s/cleave-devsim --state %s enroll --server %s --token %s --ca-cert %s "
		 ">/dev/null 2>&1",
		 bin ? bin : "build/bin", state, s.url, tok, s.cacert);
	rc = system(cmd);
	CHECK(WEXITSTATUS(rc) != 0, "cleave-devsim must not enroll (exit %d)", WEXITSTATUS(rc));

	j = client_get_json(admin, "/api/v1/devices", &st);
	CHECK(st == 200 && json_array_size(json_object_get(j, "items")) == 0,
	      "no device was enrolled");
	json_decref(j);
	/* a refusal is on the audit record (the first of its kind from an address at once) */
	CHECK(srv_db_int(&s, "SELECT count(*) FROM audit WHERE action = 'device.enroll' AND "
			     "outcome = 'denied' AND detail LIKE '%software key%'") >= 1,
	      "the refusal is in the audit log");
	CHECK(srv_db_int(&s, "SELECT uses FROM enrollment_tokens") == 0,
	      "the token kept its use (uses = %lld)",
	      srv_db_int(&s, "SELECT uses FROM enrollment_tokens"));
	dev_fini(&d);
	client_free(admin);
	client_free(dc);
	srv_cleanup(&s);
}

static void
software_keys_enroll_by_default(void)
{
	struct srv s;
	struct client *admin, *dc;
	struct device_sim d;
	struct resp r = {0};
	char tok[128];

	CHECK(srv_init(&s, "hwid-off") == 0 && srv_start(&s, NULL) == 0, "server");
	admin = client_new(&s, s.admin);
	dc = client_new(&s, NULL);
	CHECK(admin_etoken(admin, "sam@example.com", 1, tok, sizeof(tok)) == 0, "etoken");
	CHECK(dev_init(&d) == 0 && dev_enroll(&d, dc, tok, &r) == 0, "enroll request");
	CHECK_STATUS(r, 201);
	resp_free(&r);
	dev_fini(&d);
	client_free(admin);
	client_free(dc);
	srv_cleanup(&s);
}

/* Exit status of cleave-server --check-config with conf's text as its config file. */
static int
check_config(const char *text)
{
	char dir[] = "/tmp/cleave-hwid-XXXXXX", path[64], cmd[PATH_MAX + 256];
	const char *bin = getenv("CLEAVE_BIN");
	FILE *f;
	int rc;

	if (mkdtemp(dir) == NULL)
		return -1;
	t_remove_after_case(dir);
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "%s/cleave-server --data %s/d --config %s --check-config >/dev/null 2>&1",
		 bin ? bin : "build/bin", dir, path);
	rc = system(cmd);
	return WEXITSTATUS(rc);
}

static void
hardware_settings_checked(void)
{
	struct swtpm t;
	char cas[PATH_MAX + 16], text[PATH_MAX + 128];

	CHECK(check_config("require_hardware_identity = 1\n") == 2,
	      "requiring hardware without manufacturer CAs is refused");
	CHECK(check_config("tpm_ca_file = /etc/hostname\n") == 2, "a CA file without certificates");
	CHECK(check_config("tpm_ca_file = /nonexistent/cas.pem\n") == 2, "a missing CA file");
	CHECK(check_config("require_hardware_identity = 2\n") == 2, "only 0 or 1");
	if (swtpm_skip_reason() != NULL)
		SKIP("%s", swtpm_skip_reason());
	CHECK(swtpm_make(&t, "maker") == 0 && swtpm_ca_bundle(&t, cas, sizeof(cas)) == 0, "CAs");
	snprintf(text, sizeof(text), "require_hardware_identity = 1\ntpm_ca_file = %s\n", cas);
	CHECK(check_config(text) == 0, "the manufacturer's CAs are accepted");
	{
		/* the bundle with a CRL that its issuing CA may not sign (swtpm's lacks cRLSign) */
		char cmd[4 * PATH_MAX];

		snprintf(cmd, sizeof(cmd),
			 "cd '%s' && printf '[ca]\\ndefault_ca = d\\n[d]\\ndatabase = "
			 "index.txt\\ndefault_md = sha256\\ndefault_crl_days = 1\\n' > "
			 "crl.cnf && : > index.txt && openssl ca -config crl.cnf -gencrl -keyfile "
			 "ca/signkey.pem -cert ca/issuercert.pem -out crl.pem 2>/dev/null && cat "
			 "'%s' crl.pem > cas-crl.pem",
			 t.dir, cas);
		CHECK(system(cmd) == 0, "a CRL by the swtpm maker's issuing CA");
		snprintf(text, sizeof(text), "tpm_ca_file = %s/cas-crl.pem\n", t.dir);
		CHECK(check_config(text) == 2, "a CRL its CA may not sign is refused at start");
	}
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"software_keys_refused_when_hardware_required",
		 software_keys_refused_when_hardware_required},
		{"software_keys_enroll_by_default", software_keys_enroll_by_default},
		{"hardware_settings_checked", hardware_settings_checked},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
