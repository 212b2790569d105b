/* A manufactured swtpm per test case (swtpmtest.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "swtpmtest.h"
#include "testlib.h"

#define SWTPM       "/usr/bin/swtpm"
#define SWTPM_SETUP "/usr/bin/swtpm_setup"
#define SWTPM_CA    "/usr/bin/swtpm_localca"

const char *
swtpm_skip_reason(void)
{
	if (access(SWTPM, X_OK) != 0)
		return "swtpm not installed (scripts/deps.sh installs swtpm)";
	if (access(SWTPM_SETUP, X_OK) != 0 || access(SWTPM_CA, X_OK) != 0)
		return "swtpm_setup/swtpm_localca not installed (scripts/deps.sh installs "
		       "swtpm-tools)";
	return NULL;
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (f == NULL)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : rc;
}

/* dir, state, CA paths and ports of a TPM whose directory is made from tag. */
static int
swtpm_paths(struct swtpm *t, const char *tag)
{
	const char *base = getenv("CLEAVE_TEST_OUT");
	char ca[PATH_MAX + 8];

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "%s/swtpm-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (mkdtemp(t->dir) == NULL)
		return -1;
	/* A TPM is the case's own: it goes with the case, passed or failed (swtpm.log with it). */
	t_remove_after_case(t->dir);
	snprintf(t->state, sizeof(t->state), "%s/state", t->dir);
	snprintf(ca, sizeof(ca), "%s/ca", t->dir);
	snprintf(t->ca_root, sizeof(t->ca_root), "%s/swtpm-localca-rootca-cert.pem", ca);
	snprintf(t->ca_issuer, sizeof(t->ca_issuer), "%s/issuercert.pem", ca);
	snprintf(t->log, sizeof(t->log), "%s/swtpm.log", t->dir);
	if (mkdir(t->state, 0700) != 0 || mkdir(ca, 0700) != 0)
		return -1;
	return 0;
}

int
swtpm_make(struct swtpm *t, const char *tag)
{
	char conf[PATH_MAX + 32], text[4 * PATH_MAX], cmd[4 * PATH_MAX];
	char caconf[PATH_MAX + 32];

	if (swtpm_paths(t, tag) != 0)
		return -1;
	/* swtpm_localca makes its CA on first use in statedir: this TPM's manufacturer. */
	snprintf(caconf, sizeof(caconf), "%s/localca.conf", t->dir);
	snprintf(text, sizeof(text),
		 "statedir = %s/ca\nsigningkey = %s/ca/signkey.pem\n"
		 "issuercert = %s/ca/issuercert.pem\ncertserial = %s/ca/certserial\n",
		 t->dir, t->dir, t->dir, t->dir);
	if (write_file(caconf, text) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/swtpm_setup.conf", t->dir);
	snprintf(text, sizeof(text),
		 "create_certs_tool = %s\ncreate_certs_tool_config = %s\n"
		 "create_certs_tool_options = %s/localca.options\nactive_pcr_banks = sha256\n",
		 SWTPM_CA, caconf, t->dir);
	if (write_file(conf, text) != 0)
		return -1;
	snprintf(text, sizeof(text), "%s/localca.options", t->dir);
	if (write_file(text, "--platform-manufacturer Cleave-Test\n--platform-version 2.1\n"
			     "--platform-model cleave-swtpm\n") != 0)
		return -1;
	/* One run makes both EKs' certificates: RSA 2048 (the common kind) and ECC. */
	snprintf(cmd, sizeof(cmd),
		 "%s --tpm2 --tpmstate %s --config %s --create-ek-cert --create-platform-cert "
		 "--lock-nvram --overwrite --logfile %s/setup.log >/dev/null 2>&1",
		 SWTPM_SETUP, t->state, conf, t->dir);
	if (system(cmd) != 0) {
		printf("    swtpm_setup failed: see %s/setup.log\n", t->dir);
		return -1;
	}
	return 0;
}

int
swtpm_copy(struct swtpm *t, const struct swtpm *from, const char *tag)
{
	char cmd[3 * PATH_MAX + 64];

	if (swtpm_paths(t, tag) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/' && cp -a '%s/ca/.' '%s/ca/'", from->state,
		 t->state, from->dir, t->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Bounded (10 s) wait until 127.0.0.1:port accepts a connection. */
static int
wait_port(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		usleep(50000);
	}
	return -1;
}

/* 1 when nothing listens on 127.0.0.1:port and it can be bound now. */
static int
port_free(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* tpm2-tss's swtpm TCTI finds the control port at the TPM port + 1: a free pair. */
static int
free_port_pair(unsigned *port)
{
	for (int i = 0; i < 50; i++) {
		unsigned p = t_free_port();

		if (p != 0 && p < 65535 && port_free(p + 1)) {
			*port = p;
			return 0;
		}
	}
	return -1;
}

/* Starts swtpm with argv (its output to t->log) as the case's child, in t->pid; 0 or -1. */
static int
spawn_swtpm(struct swtpm *t, const char *const *argv)
{
	t->pid = fork();
	if (t->pid < 0)
		return -1;
	if (t->pid == 0) {
		if (freopen(t->log, "a", stdout) == NULL || freopen(t->log, "a", stderr) == NULL)
			_exit(127);
		execv(SWTPM, (char *const *)argv);
		_exit(127);
	}
	t_track_child(t->pid, 1);
	return 0;
}

int
swtpm_start(struct swtpm *t)
{
	char state[PATH_MAX + 16], server[64], ctrl[64];

	if (free_port_pair(&t->port) != 0)
		return -1;
	t->ctrl_port = t->port + 1;
	snprintf(t->tcti, sizeof(t->tcti), "swtpm:host=127.0.0.1,port=%u", t->port);
	snprintf(state, sizeof(state), "dir=%s", t->state);
	snprintf(server, sizeof(server), "type=tcp,port=%u,bindaddr=127.0.0.1", t->port);
	snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%u,bindaddr=127.0.0.1", t->ctrl_port);
	const char *argv[] = {"swtpm", "socket",   "--tpm2",        "--tpmstate",
			      state,   "--server", server,          "--ctrl",
			      ctrl,    "--flags",  "startup-clear", NULL};

	if (spawn_swtpm(t, argv) != 0)
		return -1;
	if (wait_port(t->port) != 0) {
		printf("    swtpm did not listen: see %s\n", t->log);
		return -1;
	}
	return 0;
}

int
swtpm_start_qemu(struct swtpm *t)
{
	char state[PATH_MAX + 16], ctrl[PATH_MAX + 48];
	struct stat sb;

	snprintf(t->sock, sizeof(t->sock), "%s/tpm.sock", t->dir);
	if (strlen(t->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		printf("    %s: too long for a Unix socket (CLEAVE_TEST_OUT)\n", t->sock);
		return -1;
	}
	snprintf(state, sizeof(state), "dir=%s", t->state);
	snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s", t->sock);
	const char *argv[] = {"swtpm", "socket", "--tpm2", "--tpmstate",
			      state,   "--ctrl", ctrl,     NULL};

	if (spawn_swtpm(t, argv) != 0)
		return -1;
	for (int i = 0; i < 200 && stat(t->sock, &sb) != 0; i++)
		usleep(50000);
	if (stat(t->sock, &sb) != 0) {
		printf("    swtpm did not listen on %s: see %s\n", t->sock, t->log);
		return -1;
	}
	return 0;
}

void
swtpm_stop(struct swtpm *t)
{
	if (t->pid > 0)
		t_stop_child(t->pid, SIGTERM, 10000);
	t->pid = 0;
}

int
swtpm_ca_bundle(const struct swtpm *t, char *out, size_t cap)
{
	char cmd[4 * PATH_MAX];

	if ((size_t)snprintf(out, cap, "%s/tpm-cas.pem", t->dir) >= cap)
		return -1;
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", t->ca_root, t->ca_issuer, out);
	return system(cmd) == 0 ? 0 : -1;
}

/* The issuing CA's subject as openssl prints it in RFC 2253 into out. 0 or -1. */
int
swtpm_issuer_subject(const struct swtpm *t, char *out, size_t cap)
{
	char cmd[PATH_MAX + 128];
	FILE *p;
	int ok;

	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -subject -nameopt RFC2253 -in '%s'",
		 t->ca_issuer);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	ok = fgets(out, (int)cap, p) != NULL;
	pclose(p);
	out[strcspn(out, "\n")] = '\0';
	if (!ok || strncmp(out, "subject=", 8) != 0)
		return -1;
	memmove(out, out + 8, strlen(out + 8) + 1);
	return 0;
}

/* tpm2-tools' TPM2B_PUBLIC of a P-256 signing key that is not restricted, in t's TPM. */
long
swtpm_unrestricted_key(const struct swtpm *t, uint8_t *out, size_t cap)
{
	char cmd[4 * PATH_MAX], path[PATH_MAX + 16];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && export TPM2TOOLS_TCTI='%s' && { tpm2_createprimary -C o -g sha256 "
		 "-G ecc -c prim.ctx && tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256 -a "
		 "'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' -u free.pub -r "
		 "free.priv; } >tools.log 2>&1; rc=$?; tpm2_flushcontext -t >/dev/null 2>&1; "
		 "exit $rc",
		 t->dir, t->tcti);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/free.pub", t->dir);
	f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	n = fread(out, 1, cap, f);
	fclose(f);
	return (long)n;
}
