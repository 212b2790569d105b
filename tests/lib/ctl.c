/* Running cleavectl from the integration tests: see ctl.h. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "b64.h"
#include "ctl.h"
#include "fileio.h"

const char *
ctl_bin(void)
{
	static char path[PATH_MAX];
	const char *dir = getenv("CLEAVE_BIN");

	snprintf(path, sizeof(path), "%s/cleavectl", dir && *dir ? dir : "build/bin");
	return path;
}

int
ctl_cert_pin(const char *pem, char *out, size_t cap)
{
	FILE *f = fopen(pem, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL, h[32];
	unsigned hl = 0;
	int n;

	if (f)
		fclose(f);
	n = x ? i2d_PUBKEY(X509_get0_pubkey(x), &der) : -1;
	X509_free(x);
	if (n <= 0 || EVP_Digest(der, (size_t)n, h, &hl, EVP_sha256(), NULL) != 1) {
		OPENSSL_free(der);
		return -1;
	}
	OPENSSL_free(der);
	return b64_encode(out, cap, h, hl) > 0 ? 0 : -1;
}

/* stdout and stderr go to files in HOME, read back by ctl_wait. */
pid_t
ctl_spawn(struct ctl_env *e, const char *input, const char *const *args)
{
	char outp[PATH_MAX + 8], errp[PATH_MAX + 8], inp[PATH_MAX + 8], home[PATH_MAX + 8];
	const char *argv[40], *envp[8];
	int n = 0, k = 0;
	pid_t pid;

	snprintf(outp, sizeof(outp), "%s/out", e->home);
	snprintf(errp, sizeof(errp), "%s/err", e->home);
	snprintf(inp, sizeof(inp), "%s/in", e->home);
	snprintf(home, sizeof(home), "HOME=%s", e->home);
	if (file_write_atomic(inp, input ? input : "", input ? strlen(input) : 0, 0600) != 0)
		return -1;
	argv[n++] = ctl_bin();
	for (int i = 0; args[i] != NULL && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	envp[k++] = home;
	envp[k++] = e->cfg;
	envp[k++] = "PATH=/usr/bin:/bin";
	if (e->token_env[0])
		envp[k++] = e->token_env;
	envp[k] = NULL;
	if ((pid = fork()) == 0) {
		int in = open(inp, O_RDONLY), o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600),
		    er = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(in, 0);
		dup2(o, 1);
		dup2(er, 2);
		execve(argv[0], (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	if (pid > 0)
		t_track_child(pid, 1);
	return pid;
}

int
ctl_wait(struct ctl_env *e, pid_t pid)
{
	char path[PATH_MAX + 8];
	int st = 0, code = -1;
	char *s;
	size_t n;

	for (int i = 0; i < 6000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		usleep(10000);
	}
	if (code < 0)
		t_stop_child(pid, SIGKILL, 1000);
	else
		t_track_child(pid, 0);
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "%s/%s", e->home, k ? "err" : "out");
		s = file_read_all(path, CTL_OUT_MAX - 1, &n);
		snprintf(k ? e->err : e->out, CTL_OUT_MAX, "%s", s ? s : "");
		free(s);
	}
	return code;
}

int
ctl_in(struct ctl_env *e, const char *input, ...)
{
	const char *args[36];
	int n = 0;
	va_list ap;
	pid_t pid;

	va_start(ap, input);
	while (n < 35 && (args[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	args[n] = NULL;
	pid = ctl_spawn(e, input, args);
	return pid > 0 ? ctl_wait(e, pid) : -1;
}

int
ctl_up(struct ctl_env *e, const char *tag)
{
	char tok[PATH_MAX + 16];

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || srv_start(&e->s, NULL) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	e->anon = client_new(&e->s, NULL);
	snprintf(e->home, sizeof(e->home), "%s/home", e->s.dir);
	snprintf(e->cfg, sizeof(e->cfg), "XDG_CONFIG_HOME=%s/xdg", e->home);
	if (mkdir(e->home, 0700) != 0 || ctl_cert_pin(e->s.cacert, e->pin, sizeof(e->pin)) != 0)
		return -1;
	snprintf(tok, sizeof(tok), "%s/admin-token", e->s.dir);
	return ctl(e, "login", "--server", e->s.url, "--pin", e->pin, "--token-file", tok) == 0
		       ? 0
		       : -1;
}

void
ctl_down(struct ctl_env *e)
{
	client_free(e->admin);
	client_free(e->anon);
	srv_cleanup(&e->s);
}

json_t *
ctl_json(const struct ctl_env *e)
{
	return json_loads(e->out, 0, NULL);
}

int
ctl_out_str(const struct ctl_env *e, const char *name, char *out, size_t cap)
{
	json_t *j = ctl_json(e);
	const char *v = json_string_value(json_object_get(j, name));

	out[0] = '\0';
	if (v != NULL)
		snprintf(out, cap, "%s", v);
	json_decref(j);
	return out[0] ? 0 : -1;
}
