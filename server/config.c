/*
 * cleave-server's settings (config.h): the help text, the config file and the command line.
 * Every setting goes through set_option, from the file or from its flag, so both are checked
 * alike; flags win over the file.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "config.h"
#include "http/httpd.h"
#include "tpm_verify.h"
#include "util.h"

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
		"                     OpenID provider (README \"Single sign-on\"),\n"
		"                     tpm_ca_file (PEM: the TPM manufacturers' root and\n"
		"                     issuing CAs that endorsement certificates must chain\n"
		"                     to, and their CRLs), require_hardware_identity (1: enroll "
		"only devices\n"
		"                     whose hypervisor key is endorsed by such a TPM; needs\n"
		"                     tpm_ca_file)\n"
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
	else if (strcmp(key, "tpm_ca_file") == 0)
		r = val[0] != '\0' ? str_copy(c->tpm_ca_file, sizeof(c->tpm_ca_file), val) : -1;
	else if (strcmp(key, "require_hardware_identity") == 0)
		r = parse_uint(val, 0, 1, &c->require_hw_identity);
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

/*
 * Requiring a hardware identity without manufacturer CAs would refuse every device; a CA file
 * without a root, or with a CRL that none of its CAs may have signed, would too. All are
 * configuration errors, found at start (the same loader the enrollment uses).
 */
static int
tpm_settings_check(const struct config *c)
{
	struct tpm_ca *ca;
	char why[PATH_MAX + 256];

	if (c->require_hw_identity && c->tpm_ca_file[0] == '\0') {
		fprintf(stderr,
			"cleave-server: require_hardware_identity = 1 needs tpm_ca_file (the "
			"TPM manufacturers' CA certificates)\n");
		return -1;
	}
	if (c->tpm_ca_file[0] == '\0')
		return 0;
	if ((ca = tpm_ca_load(c->tpm_ca_file, why, sizeof(why))) == NULL) {
		fprintf(stderr, "cleave-server: tpm_ca_file: %s\n", why);
		return -1;
	}
	tpm_ca_free(ca);
	return 0;
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
		eq = trim(eq + 1);
		if (set_option(c, trim(l), eq, where) != 0) {
			bad = 1;
			/* "key = value  # why": a comment after the value is part of the value */
			if (strstr(eq, " #") != NULL || strstr(eq, "\t#") != NULL)
				fprintf(stderr,
					"cleave-server: %s: a comment takes a line of its own; "
					"the value read here is \"%s\"\n",
					where, eq);
		}
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
	if (tpm_settings_check(c) != 0)
		return -1;
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

int
config_from_args(int argc, char **argv, struct config *c)
{
	*c = (struct config){
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
	siem_config_init(&c->siem);
	if (connlimit_parse_trusted("127.0.0.0/8 ::1", &c->admit, NULL, 0) != 0)
		return -1;
	return parse_args(argc, argv, c);
}
