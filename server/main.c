/*
 * cleave-server: wiring only. Reads the command line and config file, prepares the data
 * directory on first start (database, TLS certificate, ticket-signing key, audit checkpoint
 * key, first admin token),
 * starts the HTTPS daemon, runs the once-a-second service tick, and stops cleanly on SIGTERM or
 * SIGINT. What requests mean lives in api/ and service/.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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
#include "crypto.h"
#include "crypto/tls_cert.h"
#include "http/httpd.h"
#include "fileio.h"
#include "log.h"
#include "service/service.h"
#include "siem/siem.h"
#include "store/store.h"
#include "util.h"

#define CLEAVE_VERSION "0.1.0"

struct config {
	const char *data;
	char host[64];
	unsigned port;
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	char public_url[256];
	unsigned threads;
	unsigned max_connections;
	unsigned pool_kib;
	unsigned max_wait_s;
	unsigned command_ttl_h;
	unsigned lease_s;
	unsigned refusal_limit;
	unsigned bulk_batch;
	unsigned webhook_workers, webhook_timeout_s, webhook_allow_http, webhook_time_divisor;
	char webhook_ca[PATH_MAX];
	unsigned session_idle_s, session_max_s; /* console sessions; 0: the service's defaults */
	unsigned require_totp;
	unsigned two_person, approval_bulk_size, approval_expiry_s; /* the two-person rule */
	unsigned ckpt_entries;
	unsigned ckpt_s;
	char ckpt_file[PATH_MAX]; /* "" : DATA/audit-checkpoints.log */
	char web_root[PATH_MAX];  /* "" : web/ of the source tree the binary was built in */
	char database[1024];      /* "" : SQLite in DIR; else a postgresql:// URL */
	char keys_dir[PATH_MAX];  /* "" : DIR/keys; else the deployment's shared copy */
	int accept_new_keys;      /* record this server's keys as the deployment's */
	unsigned handshake_s;
	char tls_priorities[1024];
	struct cl_policy admit;   /* per_address, reserve, trusted networks */
	struct cl_policy proxies; /* whose X-Forwarded-For names the client (none by default) */
	struct siem_config siem;  /* the audit stream to a SIEM (siem_* settings; off by default) */
	struct api_oidc_config oidc; /* single sign-on (api/oidc.h); off without oidc_issuer */
	enum log_level log_level;
	int check_only;
	int public_url_set;
	int listen_fd; /* bound before the data directory is touched; -1 once handed on */
	uint16_t bound_port;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: cleave-server --data DIR [--listen HOST:PORT] [--tls-cert FILE --tls-key "
		"FILE]\n"
		"                     [--config FILE] [--check-config] [--log-level LEVEL]\n"
		"                     [--tls-priorities STRING] [--web-root DIR]\n"
		"                     [--database postgresql://USER@HOST/DB]\n"
		"\n"
		"Cleave MDM server: HTTPS REST API for admins (/api/v1) and devices (/device/v1).\n"
		"\n"
		"  --data DIR         state directory; created on first start with the database,\n"
		"                     a self-signed TLS certificate (DIR/tls/cert.pem), the "
		"ticket-\n"
		"                     signing key (DIR/keys/ticket.key) and a first admin API "
		"token\n"
		"                     (DIR/admin-token, mode 0600)\n"
		"  --listen HOST:PORT numeric address to listen on (default 127.0.0.1:8443; port "
		"0\n"
		"                     picks a free one; the URL is written to DIR/server.url)\n"
		"  --tls-cert FILE    PEM certificate to serve instead of the generated one\n"
		"  --tls-key FILE     its PEM private key\n"
		"  --config FILE      key = value settings: listen, tls_cert, tls_key, "
		"public_url,\n"
		"                     threads, max_connections, connection_memory_kib (per-\n"
		"                     connection memory, default 4: request headers up to ~3 KB;\n"
		"                     raise it for larger headers), max_wait,\n"
		"                     command_ttl_hours, lease_seconds (a device's lease past\n"
		"                     each contact, default 900), refusal_limit (refused\n"
		"                     unauthenticated requests per address and minute before\n"
		"                     429, default 600), bulk_batch (devices per batch of a\n"
		"                     bulk command by filter, default 500; a batch also ends\n"
		"                     after 20 ms), session_idle_seconds (default 1800)\n"
		"                     and session_max_seconds (default 43200): console\n"
		"                     sessions end unused this long or this long after sign-in,\n"
		"                     require_totp (1: console sign-in needs a TOTP code),\n"
		"                     two_person_rule (1: wipe, retire and a bulk of more\n"
		"                     than approval_bulk_size devices, default 50, wait for a\n"
		"                     second admin's approval), approval_expiry_seconds\n"
		"                     (how long a request waits, default 86400),\n"
		"                     webhook_workers (concurrent deliveries, default 4),\n"
		"                     webhook_timeout_seconds (default 10), webhook_allow_http\n"
		"                     (1: http:// receivers on any host), webhook_ca_file,\n"
		"                     webhook_test_time_divisor (tests only: backoff runs\n"
		"                     faster),\n"
		"                     audit_checkpoint_entries\n"
		"                     (default 100) and audit_checkpoint_seconds (default 300):\n"
		"                     sign the audit log's head when it moved this far or this\n"
		"                     long ago, audit_checkpoint_file (default\n"
		"                     DIR/audit-checkpoints.log), log_level, tls_priorities,\n"
		"                     tls_handshake_timeout (seconds from connect to the first\n"
		"                     request line, default 10), max_connections_per_address\n"
		"                     (default 1000; IPv6 counts per /64; 0: no cap),\n"
		"                     reserved_connections (kept for trusted addresses,\n"
		"                     default 64), trusted_addresses (addresses and CIDR\n"
		"                     networks free of the per-address cap and allowed into\n"
		"                     the reserve, e.g. a load balancer; default\n"
		"                     127.0.0.0/8 ::1; none for nothing) (flags win),\n"
		"                     trusted_proxies (load balancers whose last\n"
		"                     X-Forwarded-For entry names the client; default none),\n"
		"                     oidc_issuer, oidc_client_id, oidc_client_secret_file,\n"
		"                     oidc_ca_file, oidc_redirect_uri, oidc_scopes,\n"
		"                     oidc_role_claim, oidc_role_map, oidc_email_domain,\n"
		"                     oidc_provider_name: console single sign-on with an\n"
		"                     OpenID provider (README \"Single sign-on\")\n"
		"  --check-config     validate the settings and exit (0 when valid)\n"
		"  --log-level LEVEL  debug, info, warn or error (default info)\n"
		"  --tls-priorities STRING\n"
		"                     GnuTLS priority string (default: Mozilla's intermediate\n"
		"                     profile: TLS 1.2 and 1.3, AEAD ciphers, ECDHE)\n"
		"  --web-root DIR     the web console's files, served at / and /static/\n"
		"                     (setting web_root; default: web/ beside the build folder\n"
		"                     of this binary, i.e. BIN/../../web; none: / answers 404)\n"
		"  --database URL     keep the store in PostgreSQL (a libpq URL, "
		"postgresql://...;\n"
		"                     setting database) instead of SQLite in DIR/cleave.db;\n"
		"                     several servers may share one database. DIR still holds\n"
		"                     the keys, the TLS certificate and the admin token\n"
		"  --keys DIR         the signing keys (ticket.key, audit.key; setting keys_dir;\n"
		"                     default DIR/keys): the same copy on every server of a\n"
		"                     deployment, mode 0700. A server whose keys are not the\n"
		"                     ones the database recorded refuses to start\n"
		"  --accept-new-keys  record this server's keys as the deployment's instead\n"
		"  --list-routes      print the route table as JSON lines and exit (for the\n"
		"                     OpenAPI contract test)\n"
		"  --siem TARGET      stream the audit log to a SIEM (setting siem_target):\n"
		"                     tls://HOST:PORT (RFC 5425 syslog; with --siem-ca),\n"
		"                     tcp://HOST:PORT (loopback only unless\n"
		"                     siem_allow_plain_tcp = 1) or file:/PATH; siem_format\n"
		"                     rfc5424 (default) or json; the other siem_* settings are\n"
		"                     in server/README.md\n"
		"  --siem-ca FILE     the collector's CA certificate, PEM (setting siem_ca)\n"
		"  --version          print the version\n");
}

static int
parse_listen(struct config *c, const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	unsigned long port;
	size_t hl;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - v);
	if (hl > 1 && v[0] == '[' && v[hl - 1] == ']') {
		v++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(c->host))
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port > 65535)
		return -1;
	memcpy(c->host, v, hl);
	c->host[hl] = '\0';
	c->port = (unsigned)port;
	return 0;
}

static int
parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long x = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || x < lo || x > hi)
		return -1;
	*out = (unsigned)x;
	return 0;
}

/* GnuTLS must accept the string now: a typo must stop the server, not weaken it. */
static int
set_priorities(struct config *c, const char *val, const char *where)
{
	char bad[128];

	if (httpd_tls_priorities_check(val, bad, sizeof(bad)) != 0) {
		fprintf(stderr,
			"cleave-server: %s: GnuTLS rejects the TLS priority string at '%s'\n",
			where, bad);
		return -EINVAL;
	}
	return str_copy(c->tls_priorities, sizeof(c->tls_priorities), val);
}

static int
set_trusted(struct cl_policy *pol, const char *val, const char *where)
{
	char bad[64] = "";
	int r = connlimit_parse_trusted(val, pol, bad, sizeof(bad));

	if (r == -E2BIG)
		fprintf(stderr, "cleave-server: %s: more than %d trusted addresses\n", where,
			CL_TRUSTED_MAX);
	else if (r != 0)
		fprintf(stderr, "cleave-server: %s: '%s' is not an address or CIDR network\n",
			where, bad);
	return r;
}

/* A database setting names PostgreSQL by URL; anything else would be a typo or SQLite path. */
static int
database_url_ok(const char *v)
{
	return strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0;
}

/* Applies one setting; returns -1 with a message on stderr when it is wrong. */
static int
set_option(struct config *c, const char *key, const char *val, const char *where)
{
	int r = 0;

	if (strcmp(key, "listen") == 0)
		r = parse_listen(c, val);
	else if (strcmp(key, "tls_cert") == 0)
		r = str_copy(c->tls_cert, sizeof(c->tls_cert), val);
	else if (strcmp(key, "tls_key") == 0)
		r = str_copy(c->tls_key, sizeof(c->tls_key), val);
	else if (strcmp(key, "public_url") == 0)
		r = strncmp(val, "https://", 8) == 0
			    ? str_copy(c->public_url, sizeof(c->public_url), val)
			    : -1;
	else if (strcmp(key, "threads") == 0)
		r = parse_uint(val, 1, 64, &c->threads);
	else if (strcmp(key, "max_connections") == 0)
		r = parse_uint(val, 16, 1000000, &c->max_connections);
	else if (strcmp(key, "connection_memory_kib") == 0)
		r = parse_uint(val, 4, 256, &c->pool_kib);
	else if (strcmp(key, "max_wait") == 0)
		r = parse_uint(val, 1, 55, &c->max_wait_s);
	else if (strcmp(key, "lease_seconds") == 0)
		r = parse_uint(val, 5, 86400, &c->lease_s);
	else if (strcmp(key, "refusal_limit") == 0)
		r = parse_uint(val, 1, 1000000, &c->refusal_limit);
	else if (strcmp(key, "bulk_batch") == 0)
		r = parse_uint(val, 1, 500, &c->bulk_batch);
	else if (strcmp(key, "webhook_workers") == 0)
		r = parse_uint(val, 1, 16, &c->webhook_workers);
	else if (strcmp(key, "webhook_timeout_seconds") == 0)
		r = parse_uint(val, 1, 60, &c->webhook_timeout_s);
	else if (strcmp(key, "webhook_allow_http") == 0)
		r = parse_uint(val, 0, 1, &c->webhook_allow_http);
	else if (strcmp(key, "webhook_test_time_divisor") == 0)
		r = parse_uint(val, 1, 100000, &c->webhook_time_divisor);
	else if (strcmp(key, "webhook_ca_file") == 0)
		r = str_copy(c->webhook_ca, sizeof(c->webhook_ca), val);
	else if (strcmp(key, "session_idle_seconds") == 0)
		r = parse_uint(val, 60, 86400, &c->session_idle_s);
	else if (strcmp(key, "session_max_seconds") == 0)
		r = parse_uint(val, 300, 30 * 86400, &c->session_max_s);
	else if (strcmp(key, "require_totp") == 0)
		r = parse_uint(val, 0, 1, &c->require_totp);
	else if (strcmp(key, "two_person_rule") == 0)
		r = parse_uint(val, 0, 1, &c->two_person);
	else if (strcmp(key, "approval_bulk_size") == 0)
		r = parse_uint(val, 1, 500, &c->approval_bulk_size);
	else if (strcmp(key, "approval_expiry_seconds") == 0)
		r = parse_uint(val, 1, 30 * 86400, &c->approval_expiry_s);
	else if (strcmp(key, "command_ttl_hours") == 0)
		r = parse_uint(val, 1, 24 * 366, &c->command_ttl_h);
	else if (strcmp(key, "audit_checkpoint_entries") == 0)
		r = parse_uint(val, 1, 1000000, &c->ckpt_entries);
	else if (strcmp(key, "audit_checkpoint_seconds") == 0)
		r = parse_uint(val, 1, 86400, &c->ckpt_s);
	else if (strcmp(key, "audit_checkpoint_file") == 0)
		r = val[0] != '\0' ? str_copy(c->ckpt_file, sizeof(c->ckpt_file), val) : -1;
	else if (strcmp(key, "database") == 0)
		r = database_url_ok(val) ? str_copy(c->database, sizeof(c->database), val) : -1;
	else if (strcmp(key, "keys_dir") == 0)
		r = str_copy(c->keys_dir, sizeof(c->keys_dir), val);
	else if (strcmp(key, "web_root") == 0)
		r = val[0] != '\0' ? str_copy(c->web_root, sizeof(c->web_root), val) : -1;
	else if (strcmp(key, "log_level") == 0)
		r = log_level_parse(val, &c->log_level);
	else if (strcmp(key, "tls_priorities") == 0)
		r = set_priorities(c, val, where);
	else if (strcmp(key, "tls_handshake_timeout") == 0)
		r = parse_uint(val, 1, 120, &c->handshake_s);
	else if (strcmp(key, "max_connections_per_address") == 0)
		r = parse_uint(val, 0, 1000000, &c->admit.per_address);
	else if (strcmp(key, "reserved_connections") == 0)
		r = parse_uint(val, 0, 100000, &c->admit.reserve);
	else if (strcmp(key, "trusted_addresses") == 0)
		r = set_trusted(&c->admit, val, where);
	else if (strcmp(key, "trusted_proxies") == 0)
		r = set_trusted(&c->proxies, val, where);
	else if (strncmp(key, "oidc_", 5) == 0)
		r = api_oidc_setting(&c->oidc, key, val) == 0 ? 0 : -EINVAL; /* it said why */
	else if ((r = siem_set_option(&c->siem, key, val, where)) != 1)
		return r != 0 ? -1 : 0; /* siem_set_option said why */
	else {
		fprintf(stderr, "cleave-server: %s: unknown setting '%s'\n", where, key);
		return -1;
	}
	if (r == -1) /* the helpers that return -errno said why themselves */
		fprintf(stderr, "cleave-server: %s: invalid value for %s: '%s'\n", where, key, val);
	return r != 0 ? -1 : 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int
load_config_file(struct config *c, const char *path)
{
	char line[1024], where[PATH_MAX + 32];
	FILE *f = fopen(path, "r");
	int lineno = 0, bad = 0;

	if (f == NULL) {
		fprintf(stderr, "cleave-server: cannot read config %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL && lineno < 10000) {
		char *l = trim(line), *eq;

		lineno++;
		if (*l == '\0' || *l == '#')
			continue;
		eq = strchr(l, '=');
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (eq == NULL) {
			fprintf(stderr, "cleave-server: %s: expected key = value\n", where);
			bad = 1;
			continue;
		}
		*eq = '\0';
		if (set_option(c, trim(l), trim(eq + 1), where) != 0)
			bad = 1;
	}
	fclose(f);
	return bad ? -1 : 0;
}

/* The options that take a value; anything else but the flags is unknown, value or not. */
static int
valued_option(const char *a)
{
	static const char *const names[] = {"--data",           "--config",   "--listen",
					    "--tls-cert",       "--tls-key",  "--log-level",
					    "--tls-priorities", "--web-root", "--database",
					    "--keys",           "--siem",     "--siem-ca"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(a, names[i]) == 0)
			return 1;
	return 0;
}

/*
 * The console a build serves by default: web/ of the source tree, two levels above the binary
 * (BUILD/bin/cleave-server). Left empty when that cannot be found; the server then runs
 * without its console.
 */
static void
default_web_root(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	out[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	for (int up = 0; up < 3; up++) {
		slash = strrchr(exe, '/');
		if (slash == NULL)
			return;
		*slash = '\0';
	}
	if ((size_t)snprintf(out, cap, "%s/web", exe) >= cap)
		out[0] = '\0';
}

/*
 * Prints the route table as JSON lines ({"method", "path", "query": [...], "admin"}), "{}"
 * segments as "{id}": the OpenAPI contract test compares it with schema/openapi.json.
 */
static int
list_routes(void)
{
	for (size_t i = 0; i < api_route_count(); i++) {
		struct api_route_info r;
		json_t *q = json_array();
		json_t *o;
		char path[256];
		size_t k = 0;

		api_route_info(i, &r);
		for (const char *p = r.pattern; *p != '\0' && k + 5 < sizeof(path); p++) {
			if (p[0] == '{' && p[1] == '}') {
				memcpy(path + k, "{id}", 4);
				k += 4;
				p++;
			} else {
				path[k++] = *p;
			}
		}
		path[k] = '\0';
		for (const char *p = r.query; *p != '\0';) {
			size_t w = strcspn(p, " ");

			json_array_append_new(q, json_stringn(p, w));
			p += w;
			p += strspn(p, " ");
		}
		o = json_pack("{s:s, s:s, s:o, s:b}", "method", r.method, "path", path, "query", q,
			      "admin", r.admin);
		if (o == NULL || json_dumpf(o, stdout, JSON_COMPACT) != 0 || putchar('\n') == EOF)
			return 1;
		json_decref(o);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
parse_args(int argc, char **argv, struct config *c)
{
	const char *config = NULL, *priorities = NULL, *database = NULL, *keys = NULL;
	const char *siem = NULL, *siem_ca = NULL;
	struct config cli;
	int listen_set = 0, cert_set = 0, key_set = 0, level_set = 0;

	memset(&cli, 0, sizeof(cli));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--list-routes") == 0) {
			exit(list_routes());
		} else if (strcmp(a, "--version") == 0) {
			printf("cleave-server %s\n", CLEAVE_VERSION);
			exit(0);
		} else if (strcmp(a, "--check-config") == 0 || strcmp(a, "-n") == 0) {
			c->check_only = 1;
			takes = 0;
		} else if (strcmp(a, "--accept-new-keys") == 0) {
			c->accept_new_keys = 1;
			takes = 0;
		} else if (!valued_option(a)) {
			fprintf(stderr, "cleave-server: unknown option '%s' (see --help)\n", a);
			return -1;
		} else if (v == NULL) {
			fprintf(stderr, "cleave-server: %s needs a value (see --help)\n", a);
			return -1;
		} else if (strcmp(a, "--data") == 0) {
			c->data = v;
		} else if (strcmp(a, "--config") == 0) {
			config = v;
		} else if (strcmp(a, "--listen") == 0) {
			if (parse_listen(&cli, v) != 0) {
				fprintf(stderr,
					"cleave-server: --listen wants HOST:PORT, got '%s'\n", v);
				return -1;
			}
			listen_set = 1;
		} else if (strcmp(a, "--tls-cert") == 0) {
			str_copy(cli.tls_cert, sizeof(cli.tls_cert), v);
			cert_set = 1;
		} else if (strcmp(a, "--tls-key") == 0) {
			str_copy(cli.tls_key, sizeof(cli.tls_key), v);
			key_set = 1;
		} else if (strcmp(a, "--tls-priorities") == 0) {
			priorities = v;
		} else if (strcmp(a, "--web-root") == 0) {
			str_copy(cli.web_root, sizeof(cli.web_root), v);
		} else if (strcmp(a, "--database") == 0) {
			database = v;
		} else if (strcmp(a, "--keys") == 0) {
			keys = v;
		} else if (strcmp(a, "--siem") == 0) {
			siem = v;
		} else if (strcmp(a, "--siem-ca") == 0) {
			siem_ca = v;
		} else if (strcmp(a, "--log-level") == 0) {
			if (log_level_parse(v, &cli.log_level) != 0) {
				fprintf(stderr, "cleave-server: unknown log level '%s'\n", v);
				return -1;
			}
			level_set = 1;
		} else {
			fprintf(stderr, "cleave-server: unknown option '%s' (see --help)\n", a);
			return -1;
		}
		i += takes;
	}
	if (config != NULL && load_config_file(c, config) != 0)
		return -1;
	if (cli.web_root[0] != '\0')
		memcpy(c->web_root, cli.web_root, sizeof(c->web_root));
	if (c->web_root[0] == '\0')
		default_web_root(c->web_root, sizeof(c->web_root));
	if (listen_set) {
		memcpy(c->host, cli.host, sizeof(c->host));
		c->port = cli.port;
	}
	if (cert_set)
		memcpy(c->tls_cert, cli.tls_cert, sizeof(c->tls_cert));
	if (key_set)
		memcpy(c->tls_key, cli.tls_key, sizeof(c->tls_key));
	if (level_set)
		c->log_level = cli.log_level;
	if (priorities != NULL && set_option(c, "tls_priorities", priorities, "--tls-priorities"))
		return -1;
	if (database != NULL && set_option(c, "database", database, "--database"))
		return -1;
	if (keys != NULL && set_option(c, "keys_dir", keys, "--keys"))
		return -1;
	if ((siem != NULL && set_option(c, "siem_target", siem, "--siem")) ||
	    (siem_ca != NULL && set_option(c, "siem_ca", siem_ca, "--siem-ca")) ||
	    siem_config_check(&c->siem) != 0)
		return -1;
	if (c->max_connections != 0 && c->admit.reserve >= c->max_connections) {
		fprintf(stderr,
			"cleave-server: reserved_connections (%u) must be below "
			"max_connections (%u)\n",
			c->admit.reserve, c->max_connections);
		return -1;
	}
	if (c->data == NULL) {
		fprintf(stderr, "cleave-server: --data DIR is required (see --help)\n");
		return -1;
	}
	if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0')) {
		fprintf(stderr, "cleave-server: --tls-cert and --tls-key go together\n");
		return -1;
	}
	return 0;
}

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
	struct config c = {
		.host = "127.0.0.1",
		.port = 8443,
		.threads = 2,
		.max_connections = 0, /* as many as the open-file limit allows */
		.pool_kib = 4,
		.max_wait_s = 55,
		.command_ttl_h = 24 * 7,
		.lease_s = 900,
		.refusal_limit = 600,
		.bulk_batch = 500,
		.ckpt_entries = 100,
		.ckpt_s = 300,
		.handshake_s = 10,
		.tls_priorities = HTTPD_TLS_PRIORITIES,
		.admit = {.per_address = 1000, .reserve = 64},
		.log_level = LOG_LVL_INFO,
		.listen_fd = -1,
	};
	struct ed25519_key *tkey = NULL, *akey = NULL;
	struct store *st = NULL;
	char *cert = NULL, *key = NULL;
	sigset_t set;
	int lockfd, r;

	siem_config_init(&c.siem);
	if (connlimit_parse_trusted("127.0.0.0/8 ::1", &c.admit, NULL, 0) != 0 ||
	    parse_args(argc, argv, &c) != 0)
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
