/*
 * cleave-server: wiring only. Takes its settings from config.c, prepares the data
 * directory on first start (database, TLS certificate, ticket-signing key, audit checkpoint
 * key, first admin token),
 * starts the HTTPS daemon, runs the once-a-second service tick, and stops cleanly on SIGTERM or
 * SIGINT. What requests mean lives in api/ and service/.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/oidc.h"
#include "config.h"
#include "crypto.h"
#include "crypto/tls_cert.h"
#include "http/httpd.h"
#include "fileio.h"
#include "log.h"
#include "service/service.h"
#include "siem/siem.h"
#include "store/store.h"
#include "util.h"

static int
ensure_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	log_errno(errno, "cannot create %s", path);
	return -errno;
}

static int
ensure_tls(struct config *c, char **cert, char **key)
{
	char dir[PATH_MAX];
	const char *dns[] = {"localhost"};
	const char *ips[] = {"127.0.0.1", "::1", c->host};
	size_t nips = strcmp(c->host, "127.0.0.1") && strcmp(c->host, "::1") &&
				      strcmp(c->host, "0.0.0.0") && strcmp(c->host, "::")
			      ? 3
			      : 2;

	if (c->tls_cert[0] == '\0') {
		snprintf(dir, sizeof(dir), "%s/tls", c->data);
		snprintf(c->tls_cert, sizeof(c->tls_cert), "%s/cert.pem", dir);
		snprintf(c->tls_key, sizeof(c->tls_key), "%s/key.pem", dir);
		if (ensure_dir(dir) != 0)
			return -1;
		if (access(c->tls_cert, R_OK) != 0 || access(c->tls_key, R_OK) != 0) {
			if (tls_cert_generate(c->tls_cert, c->tls_key, dns, 1, ips, nips, 825) !=
			    0) {
				log_err("cannot create a TLS certificate in %s", dir);
				return -1;
			}
			log_info("created a self-signed TLS certificate: %s", c->tls_cert);
		}
	}
	*cert = file_read_all(c->tls_cert, 64 * 1024, NULL);
	*key = file_read_all(c->tls_key, 64 * 1024, NULL);
	if (*cert == NULL || *key == NULL) {
		log_err("cannot read TLS certificate %s or key %s", c->tls_cert, c->tls_key);
		return -1;
	}
	return 0;
}

/* Loads DIR/keys/name, creating it (mode 0600) on first start; what names it in logs. */
static int
ensure_key(struct config *c, const char *name, const char *what, struct ed25519_key **k)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat sb;
	int r;

	if (c->keys_dir[0] != '\0')
		str_copy(dir, sizeof(dir), c->keys_dir);
	else
		snprintf(dir, sizeof(dir), "%s/keys", c->data);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (ensure_dir(dir) != 0)
		return -1;
	/* Shared by copying: a copy others can read is a leaked key. */
	if (c->keys_dir[0] != '\0' && (stat(dir, &sb) != 0 || (sb.st_mode & 077) != 0)) {
		log_err("the keys directory %s must be mode 0700 (chmod 700 it)", dir);
		return -1;
	}
	r = ed25519_key_load(path, k);
	if (r == -ENOENT) {
		r = ed25519_key_generate(k);
		if (r == 0)
			r = ed25519_key_save(*k, path);
		if (r == 0)
			log_info("created the %s key: %s", what, path);
	}
	if (r != 0)
		log_err("cannot load or create the %s key %s", what, path);
	return r;
}

/* The database knows the deployment's public keys: a server with others stops here. */
static int
pin_keys(const struct config *c, struct store *st, const struct ed25519_key *tkey,
	 const struct ed25519_key *akey)
{
	uint8_t tpub[32], apub[32];

	ed25519_key_public(tkey, tpub);
	ed25519_key_public(akey, apub);
	return service_pin_keys(st, tpub, apub, c->accept_new_keys, (int64_t)time(NULL));
}

/*
 * The URL without its password, for logs: postgresql://user:SECRET@host/db becomes user:***@host,
 * and a query from password= on becomes password=***.
 */
static void
redact_url(const char *url, char *out, size_t cap)
{
	const char *scheme = strstr(url, "://");
	const char *at = strchr(url, '@');
	const char *colon = scheme != NULL ? strchr(scheme + 3, ':') : NULL;
	char *pw;

	if (scheme == NULL || at == NULL || colon == NULL || colon > at)
		snprintf(out, cap, "%s", url);
	else
		snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
	/* The rest of the query goes too: simpler than splicing, and a log line needs no more. */
	pw = strstr(out, "password=");
	if (pw != NULL)
		snprintf(pw + 9, cap - (size_t)(pw + 9 - out), "***");
}

/* SQLite in DIR, or the PostgreSQL database the settings name; logs which. */
static int
open_store(const struct config *c, struct store **st)
{
	char where[PATH_MAX + 64];
	int r;

	if (c->database[0] != '\0') {
		redact_url(c->database, where, sizeof(where));
		r = store_pg_open(c->database, st);
		if (r == 0)
			log_info("store: postgresql at %s, schema version %d", where,
				 store_pg_schema_version(*st));
		else
			log_err("store: cannot open the PostgreSQL database at %s", where);
		return r;
	}
	snprintf(where, sizeof(where), "%s/cleave.db", c->data);
	r = store_sqlite_open(where, st);
	if (r == 0)
		log_info("store: sqlite at %s, schema version %d", where,
			 store_sqlite_schema_version(*st));
	return r;
}

/* Holds an exclusive lock on DIR/server.lock for the life of the process. */
static int
lock_data_dir(const char *data)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/server.lock", data);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_err("%s is in use by another cleave-server (or cannot be locked)", data);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Descriptors kept for what is not a connection: the database, logs, keys, the listener. */
#define FD_RESERVE   64
#define CONN_CEILING 1000000u /* the most max_connections accepts */

/*
 * Raises the open-file soft limit to the hard limit (each connection holds one descriptor)
 * and returns how many connections fit: `asked`, or all that fit when asked is 0. Logs both
 * limits and the result, so a deployment sees at start why it holds as many phones as it does.
 */
static unsigned
conn_budget(unsigned asked)
{
	struct rlimit rl;
	rlim_t before;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return asked ? asked : 1024 - FD_RESERVE;
	before = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open-file limit to %llu: %s",
				 (unsigned long long)rl.rlim_max, strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)CONN_CEILING + FD_RESERVE)
		fit = CONN_CEILING;
	else
		fit = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)rl.rlim_cur - FD_RESERVE
						   : FD_RESERVE;
	if (asked > fit)
		log_warn("max_connections = %u does not fit the open-file limit: %u connections",
			 asked, fit);
	else if (asked != 0)
		fit = asked;
	log_info("open files: soft limit %llu (was %llu), hard limit %llu; up to %u connections",
		 (unsigned long long)rl.rlim_cur, (unsigned long long)before,
		 (unsigned long long)rl.rlim_max, fit);
	return fit;
}

static int
write_admin_token(struct service *svc, const char *data)
{
	char path[PATH_MAX], *secret = NULL, *line;
	int r = service_bootstrap_admin(svc, &secret);

	if (r != 0 || secret == NULL)
		return r;
	snprintf(path, sizeof(path), "%s/admin-token", data);
	line = malloc(strlen(secret) + 2);
	if (line == NULL) {
		free(secret);
		return -ENOMEM;
	}
	snprintf(line, strlen(secret) + 2, "%s\n", secret);
	r = file_write_atomic(path, line, strlen(line), 0600);
	secure_zero(secret, strlen(secret));
	secure_zero(line, strlen(line));
	free(secret);
	free(line);
	if (r == 0)
		log_info("wrote the first admin API token to %s", path);
	else
		log_errno(r, "cannot write %s", path);
	return r;
}

/* Signed audit checkpoints: the settings, with the checkpoint file in DIR by default. */
static int
start_checkpoints(struct config *c, struct service *svc, const struct ed25519_key *akey)
{
	struct audit_ckpt_config ac = {
		.file = c->ckpt_file,
		.every_entries = c->ckpt_entries,
		.every_s = c->ckpt_s,
	};

	if (c->ckpt_file[0] == '\0')
		snprintf(c->ckpt_file, sizeof(c->ckpt_file), "%s/audit-checkpoints.log", c->data);
	return service_set_audit_checkpoints(svc, akey, &ac);
}

/* Webhook delivery workers (issue 11 §3) with the settings' limits. */
static int
start_webhooks(const struct config *c, struct service *svc)
{
	struct svc_webhook_config wc = {
		.workers = (int)c->webhook_workers,
		.timeout_s = (int)c->webhook_timeout_s,
		.allow_http = (int)c->webhook_allow_http,
		.time_divisor = (int64_t)c->webhook_time_divisor,
		.ca_file = c->webhook_ca,
	};
	int r = service_start_webhooks(svc, &wc);

	if (r != 0)
		log_errno(-r, "cannot start webhook delivery");
	return r;
}

/* Single sign-on, when configured: its callback is under the public URL (or the bound port). */
static int
oidc_start(const struct config *c, struct api *api)
{
	char base[300];

	if (c->public_url_set)
		str_copy(base, sizeof(base), c->public_url);
	else
		snprintf(base, sizeof(base),
			 strchr(c->host, ':') ? "https://[%s]:%u" : "https://%s:%u", c->host,
			 c->bound_port);
	return api_set_oidc(api, &c->oidc, base) == 0 ? 0 : -EINVAL;
}

static int
serve(struct config *c, struct store *st, struct ed25519_key *tkey, struct ed25519_key *akey,
      const char *cert, const char *key)
{
	struct service_config sc = {
		.command_ttl_s = (int64_t)c->command_ttl_h * 3600,
		.enroll_ttl_s = 7 * 86400,
		.nonce_ttl_s = 300,
		.sig_skew_s = 300,
		.max_wait_s = (int)c->max_wait_s,
		.lease_s = (int64_t)c->lease_s,
		.refusal_limit = (int64_t)c->refusal_limit,
		.bulk_batch = (int)c->bulk_batch,
		.session_idle_s = (int64_t)c->session_idle_s,
		.session_max_s = (int64_t)c->session_max_s,
		.require_totp = (int)c->require_totp,
		.two_person = (int)c->two_person,
		.approval_bulk_size = (int64_t)c->approval_bulk_size,
		.approval_ttl_s = (int64_t)c->approval_expiry_s,
		.tpm_ca_file = c->tpm_ca_file,
		.require_hw_identity = (int)c->require_hw_identity,
		.public_url = c->public_url,
	};
	struct httpd_config hc = {
		.listen_fd = c->listen_fd,
		.cert_pem = cert,
		.key_pem = key,
		.tls_priorities = c->tls_priorities,
		.threads = c->threads,
		.conn_limit = conn_budget(c->max_connections),
		.pool_size = (size_t)c->pool_kib * 1024,
		.idle_timeout_s = 120,
		.handshake_timeout_s = c->handshake_s,
		.admit = c->admit,
		.proxies = c->proxies,
		.web_root = c->web_root,
	};
	struct service *svc = NULL;
	struct siem *siem = NULL;
	struct api *api = NULL;
	struct httpd *h = NULL;
	char path[PATH_MAX], url[128];
	int armed = 0;
	sigset_t set;
	int r, sig = 0;

	r = service_new(st, tkey, &sc, NULL, &svc);
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/replay", c->data);
		r = service_set_replay_log(svc, path);
		if (r != 0)
			log_errno(-r, "cannot use the replay log %s.0/.1", path);
	}
	if (r == 0)
		r = start_checkpoints(c, svc, akey);
	if (r == 0 && (r = siem_start(st, &c->siem, &siem)) != 0)
		log_errno(-r, "cannot start the audit stream to the SIEM");
	if (r == 0)
		service_set_siem(svc, siem);
	if (r == 0) /* before the API and the workers: both read sealed secrets */
		r = service_set_webhook_key(svc, akey);
	if (r == 0)
		r = start_webhooks(c, svc);
	if (r == 0)
		r = api_new(svc, &api);
	if (r == 0)
		r = api_set_server_cert(api, cert);
	if (r == 0)
		r = oidc_start(c, api);
	if (r == 0)
		r = write_admin_token(svc, c->data);
	if (hc.admit.reserve >= hc.conn_limit) {
		hc.admit.reserve = hc.conn_limit / 2;
		log_warn("only %u connections fit: keeping %u of them for trusted addresses",
			 hc.conn_limit, hc.admit.reserve);
	}
	if (r == 0) {
		c->listen_fd = -1; /* httpd_start consumes it, even when it fails */
		r = httpd_start(&hc, api, svc, &h);
	}
	if (r != 0)
		goto out;
	service_set_waker(svc, httpd_wake, h);
	r = service_listen(svc, httpd_parked_ids, h);
	if (r != 0) {
		log_errno(-r, "cannot listen for the other servers' wake-ups");
		goto out;
	}
	api_set_metrics_source(api, httpd_metrics, h);
	snprintf(url, sizeof(url), strchr(c->host, ':') ? "https://[%s]:%u\n" : "https://%s:%u\n",
		 c->host, c->bound_port);
	if (c->port == 0 && !c->public_url_set) {
		char bare[sizeof(url)];

		str_copy(bare, sizeof(bare), url);
		bare[strcspn(bare, "\n")] = '\0';
		service_set_public_url(svc, bare);
	}
	/* No admin account yet: the one-time setup code (a failure is logged; tokens still work). */
	snprintf(path, sizeof(path), "%s/admin-setup", c->data);
	if (service_arm_setup(svc, path, service_config(svc)->public_url, &armed) != 0)
		log_warn("first-start setup of the console is not available");
	/* Last: whoever waits for server.url finds everything else of the start in place. */
	snprintf(path, sizeof(path), "%s/server.url", c->data);
	file_write_atomic(path, url, strlen(url), 0644);
	url[strcspn(url, "\n")] = '\0';
	log_info("cleave-server %s listening on %s (data %s, store %s, %u threads, %u connections "
		 "max, %u per address, %u reserved for %zu trusted networks)",
		 CLEAVE_VERSION, url, c->data, st->ops->name, hc.threads, hc.conn_limit,
		 hc.admit.per_address, hc.admit.reserve, hc.admit.ntrusted);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while (sig != SIGTERM && sig != SIGINT) {
		struct timespec ts = {1, 0};

		sig = sigtimedwait(&set, NULL, &ts);
		service_tick(svc);
	}
	log_info("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
out:
	service_quiesce(svc); /* its waker resumes parked requests: stopped before the httpd */
	svc_verify_stop(svc); /* its end wakes parked requests through h */
	httpd_stop(h);
	siem_stop(siem); /* gives up its lease: another server takes the stream over at once */
	api_free(api);
	service_free(svc);
	return r;
}

int
main(int argc, char **argv)
{
	struct config c;
	struct ed25519_key *tkey = NULL, *akey = NULL;
	struct store *st = NULL;
	char *cert = NULL, *key = NULL;
	sigset_t set;
	int lockfd, r;

	if (config_from_args(argc, argv, &c) != 0)
		return 2;
	log_set_level(c.log_level);
	c.public_url_set = c.public_url[0] != '\0';
	if (!c.public_url_set)
		snprintf(c.public_url, sizeof(c.public_url),
			 strchr(c.host, ':') ? "https://[%s]:%u" : "https://%s:%u", c.host, c.port);
	if (c.check_only) {
		printf("configuration ok: listen %s:%u, data %s, store %s\n", c.host, c.port,
		       c.data, c.database[0] != '\0' ? "postgresql" : "sqlite");
		return 0;
	}
	/* Signals are taken synchronously by the main thread; every other thread blocks them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	umask(077);

	if (httpd_bind(c.host, (uint16_t)c.port, &c.listen_fd, &c.bound_port) != 0)
		return 1;
	if (ensure_dir(c.data) != 0) {
		close(c.listen_fd);
		return 1;
	}
	lockfd = lock_data_dir(c.data);
	if (lockfd < 0) {
		close(c.listen_fd);
		return 1;
	}
	r = open_store(&c, &st);
	if (r == 0)
		r = ensure_key(&c, "ticket.key", "ticket-signing", &tkey);
	/* A key of its own, never in the database: whoever can edit the database cannot sign. */
	if (r == 0)
		r = ensure_key(&c, "audit.key", "audit checkpoint", &akey);
	if (r == 0)
		r = pin_keys(&c, st, tkey, akey);
	if (r == 0)
		r = ensure_tls(&c, &cert, &key);
	if (r == 0)
		r = serve(&c, st, tkey, akey, cert, key);
	if (key != NULL)
		secure_zero(key, strlen(key));
	free(cert);
	free(key);
	ed25519_key_free(tkey);
	ed25519_key_free(akey);
	if (st != NULL)
		st->ops->close(st);
	if (c.listen_fd >= 0)
		close(c.listen_fd);
	close(lockfd);
	return r == 0 ? 0 : 1;
}
