/* Running cleavectl from the integration tests: see ctl.h. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
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
ctl_up_conf(struct ctl_env *e, const char *tag, const char *conf)
{
	char tok[PATH_MAX + 16], path[PATH_MAX + 16];
	const char *extra[] = {"--config", path, NULL};

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0)
		return -1;
	/* Beside the data directory (its last part, "/data", made by the server itself). */
	snprintf(path, sizeof(path), "%.*s/ctl.conf", (int)(strlen(e->s.dir) - 5), e->s.dir);
	if (conf != NULL && file_write_atomic(path, conf, strlen(conf), 0600) != 0)
		return -1;
	if (srv_start(&e->s, conf != NULL ? extra : NULL) != 0)
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

int
ctl_up(struct ctl_env *e, const char *tag)
{
	return ctl_up_conf(e, tag, NULL);
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

int
ctl_device_serve(struct ctl_env *e, struct device_sim *d, const char *id, double seconds)
{
	double end = now_s() + seconds;
	int done = 0;

	while (!done && now_s() < end) {
		struct resp r;
		json_t *j, *it;
		size_t k;

		if (dev_req(d, e->anon, "POST", "/device/v1/checkin", "{\"wait\":1}", 0, &r) != 0)
			return -1;
		j = r.status == 200 ? resp_json(&r) : NULL;
		resp_free(&r);
		json_array_foreach(json_object_get(j, "commands"), k, it)
		{
			const char *cid = json_string_value(json_object_get(it, "id"));
			const char *tb = json_string_value(json_object_get(it, "ticket"));
			uint8_t ticket[TICKET_LEN], rc[RECEIPT_LEN];
			char path[160], body[1024], rb[600] = "";

			snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", cid);
			dev_req(d, e->anon, "POST", path, NULL, 0, &r);
			resp_free(&r);
			if (strcmp(json_string_value(json_object_get(it, "type")), "policy") != 0 &&
			    b64_decode(ticket, sizeof(ticket), tb, strlen(tb)) == TICKET_LEN) {
				dev_receipt(d, ticket, 0, rc);
				b64_encode(rb, sizeof(rb), rc, sizeof(rc));
			}
			snprintf(body, sizeof(body), "{\"status\":\"completed\"%s%s%s}",
				 rb[0] ? ",\"receipt\":\"" : "", rb, rb[0] ? "\"" : "");
			snprintf(path, sizeof(path), "/device/v1/commands/%s/result", cid);
			dev_req(d, e->anon, "POST", path, body, 0, &r);
			resp_free(&r);
			done |= strcmp(cid, id) == 0;
		}
		json_decref(j);
	}
	return done ? 0 : -1;
}

/* The bytes of the base32 (RFC 4648, unpadded) secret= of an otpauth URI; their count or -1. */
static int
otpauth_key(const char *uri, uint8_t *key, int cap)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	const char *p = strstr(uri, "secret=");
	unsigned buf = 0, nbits = 0;
	int n = 0;

	for (p = p ? p + 7 : ""; *p != '\0' && *p != '&'; p++) {
		const char *at = strchr(alphabet, *p);

		if (at == NULL || n >= cap)
			return -1;
		buf = (buf << 5) | (unsigned)(at - alphabet);
		if ((nbits += 5) >= 8) {
			nbits -= 8;
			key[n++] = (uint8_t)(buf >> nbits);
		}
	}
	return n > 0 ? n : -1;
}

/* RFC 6238 now: HMAC-SHA1 over the 30-second step, dynamic truncation, six digits. */
static void
totp_now(const uint8_t *key, int klen, char out[8])
{
	uint8_t step[8], mac[EVP_MAX_MD_SIZE];
	unsigned mlen = 0, at;
	uint64_t t = (uint64_t)time(NULL) / 30;

	for (int i = 0; i < 8; i++)
		step[i] = (uint8_t)(t >> (56 - 8 * i));
	HMAC(EVP_sha1(), key, klen, step, sizeof(step), mac, &mlen);
	at = mac[mlen - 1] & 0x0f;
	snprintf(out, 8, "%06u",
		 (((uint32_t)mac[at] & 0x7f) << 24 | (uint32_t)mac[at + 1] << 16 |
		  (uint32_t)mac[at + 2] << 8 | mac[at + 3]) %
			 1000000u);
}

/* POST path body as client c (with hdrs); the answer's string member into out. 0 or -1. */
static int
post_str(struct client *c, const char *path, const char *body, const char *const *hdrs, long want,
	 const char *member, char *out, size_t cap)
{
	struct resp r;
	int rc = -1;

	if (client_req(c, "POST", path, body, hdrs, &r) != 0)
		return -1;
	if (r.status == want && resp_str(&r, member, out, cap) == 0)
		rc = 0;
	else
		printf("    POST %s: %ld %s\n", path, r.status, r.body ? r.body : "");
	resp_free(&r);
	return rc;
}

int
ctl_approver(struct ctl_env *e, const char *email, char *tok, size_t cap)
{
	static const char pw[] = "approver passphrase long enough";
	char body[512], id[80], path[160], uri[512], code[8], csrf[128], hc[600], hx[200];
	const char *hdrs[] = {hc, hx, NULL};
	uint8_t key[64];
	struct resp r;
	int klen;

	snprintf(body, sizeof(body),
		 "{\"email\":\"%s\",\"display_name\":\"Approver\",\"role\":\"admin\","
		 "\"password\":\"%s\"}",
		 email, pw);
	if (post_str(e->admin, "/api/v1/admins", body, NULL, 201, "id", id, sizeof(id)) != 0)
		return -1;
	snprintf(path, sizeof(path), "/api/v1/admins/%s/totp", id);
	if (post_str(e->admin, path, "{}", NULL, 201, "otpauth_uri", uri, sizeof(uri)) != 0 ||
	    (klen = otpauth_key(uri, key, sizeof(key))) <= 0)
		return -1;
	totp_now(key, klen, code);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\",\"totp\":\"%s\"}",
		 email, pw, code);
	if (client_req(e->anon, "POST", "/api/v1/session", body, NULL, &r) != 0)
		return -1;
	if (r.status != 200 || resp_str(&r, "csrf_token", csrf, sizeof(csrf)) != 0) {
		printf("    sign-in %s: %ld %s\n", email, r.status, r.body ? r.body : "");
		resp_free(&r);
		return -1;
	}
	snprintf(hc, sizeof(hc), "Cookie: %.*s", (int)strcspn(r.set_cookie, ";"), r.set_cookie);
	snprintf(hx, sizeof(hx), "X-CSRF-Token: %s", csrf);
	resp_free(&r);
	return post_str(e->anon, "/api/v1/tokens",
			"{\"name\":\"approver\",\"role\":\"admin\",\"permissions\":[\"approve\"]}",
			hdrs, 201, "token", tok, cap);
}
