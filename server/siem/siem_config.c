/*
 * The siem_* settings of cleave-server's config file (and its --siem flags). A collector is
 * named by one URL-like target: tls://HOST:PORT (RFC 5425; the collector's CA in siem_ca),
 * tcp://HOST:PORT (plain, only to the loopback unless siem_allow_plain_tcp = 1, since audit
 * entries name people and devices), or file:/PATH (appended; a local agent ships it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "siem.h"
#include "util.h"

void
siem_config_init(struct siem_config *c)
{
	memset(c, 0, sizeof(*c));
	c->transport = SIEM_OFF;
	c->format = SIEM_RFC5424;
	str_copy(c->sd_id, sizeof(c->sd_id), SIEM_SD_ID_DEFAULT);
	str_copy(c->stream, sizeof(c->stream), "siem");
	c->batch = 100;
	c->hold_ms = 200;
	c->lease_s = 15;
	c->max_backoff = 60;
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

/* HOST:PORT or [V6]:PORT after the scheme. */
static int
parse_hostport(struct siem_config *c, const char *v)
{
	const char *colon = strrchr(v, ':');
	size_t hl;

	if (colon == NULL || parse_uint(colon + 1, 1, 65535, &c->port) != 0)
		return -1;
	hl = (size_t)(colon - v);
	if (hl > 2 && v[0] == '[' && v[hl - 1] == ']') {
		v++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(c->host) || memchr(v, '/', hl) != NULL)
		return -1;
	memcpy(c->host, v, hl);
	c->host[hl] = '\0';
	return 0;
}

static int
parse_target(struct siem_config *c, const char *v)
{
	if (strcmp(v, "none") == 0 || v[0] == '\0') {
		c->transport = SIEM_OFF;
		return 0;
	}
	if (strncmp(v, "tls://", 6) == 0) {
		c->transport = SIEM_TLS;
		return parse_hostport(c, v + 6);
	}
	if (strncmp(v, "tcp://", 6) == 0) {
		c->transport = SIEM_TCP;
		return parse_hostport(c, v + 6);
	}
	if (strncmp(v, "file:", 5) == 0 && v[5] == '/') {
		c->transport = SIEM_FILE;
		return str_copy(c->path, sizeof(c->path), v + 5);
	}
	return -1;
}

/* RFC 5424 SD-NAME "@" digits: printable ASCII without '=', ' ', ']' or '"', at most 32. */
static int
sd_id_ok(const char *v)
{
	const char *at = strchr(v, '@');
	size_t n = strlen(v);

	if (at == NULL || at == v || at[1] == '\0' || n > 32)
		return 0;
	for (const char *p = v; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || *p == '=' || *p == ']' || *p == '"')
			return 0;
	for (const char *p = at + 1; *p != '\0'; p++)
		if ((*p < '0' || *p > '9') && *p != '.')
			return 0;
	return 1;
}

/* RFC 5424 HOSTNAME: 1 to 255 printable ASCII characters, no space. */
static int
printable(const char *v)
{
	if (v[0] == '\0' || strlen(v) > 255)
		return 0;
	for (; *v != '\0'; v++)
		if (*v <= ' ' || *v > '~')
			return 0;
	return 1;
}

static int
set_path(char *dst, size_t cap, const char *v)
{
	return v[0] != '\0' ? str_copy(dst, cap, v) : -1;
}

int
siem_set_option(struct siem_config *c, const char *key, const char *val, const char *where)
{
	int r;

	if (strcmp(key, "siem_target") == 0)
		r = parse_target(c, val) != 0 ? -1 : str_copy(c->target, sizeof(c->target), val);
	else if (strcmp(key, "siem_format") == 0)
		r = strcmp(val, "rfc5424") == 0 ? (c->format = SIEM_RFC5424, 0)
		    : strcmp(val, "json") == 0  ? (c->format = SIEM_JSON, 0)
						: -1;
	else if (strcmp(key, "siem_ca") == 0)
		r = set_path(c->ca_file, sizeof(c->ca_file), val);
	else if (strcmp(key, "siem_server_name") == 0)
		r = printable(val) ? str_copy(c->server_name, sizeof(c->server_name), val) : -1;
	else if (strcmp(key, "siem_client_cert") == 0)
		r = set_path(c->client_cert, sizeof(c->client_cert), val);
	else if (strcmp(key, "siem_client_key") == 0)
		r = set_path(c->client_key, sizeof(c->client_key), val);
	else if (strcmp(key, "siem_allow_plain_tcp") == 0)
		r = parse_uint(val, 0, 1, &c->allow_plain);
	else if (strcmp(key, "siem_sd_id") == 0)
		r = sd_id_ok(val) ? str_copy(c->sd_id, sizeof(c->sd_id), val) : -1;
	else if (strcmp(key, "siem_hostname") == 0)
		r = printable(val) ? str_copy(c->hostname, sizeof(c->hostname), val) : -1;
	else if (strcmp(key, "siem_stream") == 0)
		r = printable(val) ? str_copy(c->stream, sizeof(c->stream), val) : -1;
	else if (strcmp(key, "siem_batch") == 0)
		r = parse_uint(val, 1, 500, &c->batch);
	else if (strcmp(key, "siem_hold_ms") == 0)
		r = parse_uint(val, 0, 10000, &c->hold_ms);
	else if (strcmp(key, "siem_lease_seconds") == 0)
		r = parse_uint(val, 2, 3600, &c->lease_s);
	else if (strcmp(key, "siem_max_backoff_seconds") == 0)
		r = parse_uint(val, 1, 3600, &c->max_backoff);
	else
		return 1;
	if (r != 0)
		fprintf(stderr, "cleave-server: %s: invalid value for %s: '%s'\n", where, key, val);
	return r != 0 ? -1 : 0;
}

static int
loopback(const char *host)
{
	struct in_addr a4;

	if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* A file the TLS setup will read: a typo stops the server now, not the stream later. */
static int
readable(const char *key, const char *path)
{
	if (path[0] == '\0' || access(path, R_OK) == 0)
		return 0;
	fprintf(stderr, "cleave-server: %s: cannot read %s: %s\n", key, path, strerror(errno));
	return -1;
}

int
siem_config_check(const struct siem_config *c)
{
	if (c->transport == SIEM_TLS && c->ca_file[0] == '\0') {
		fprintf(stderr, "cleave-server: siem_target tls:// needs siem_ca (the collector's "
				"CA certificate, PEM)\n");
		return -1;
	}
	if (c->transport == SIEM_TCP && !c->allow_plain && !loopback(c->host)) {
		fprintf(stderr,
			"cleave-server: siem_target tcp://%s sends the audit log unencrypted: use "
			"tls://, or set siem_allow_plain_tcp = 1\n",
			c->host);
		return -1;
	}
	if ((c->client_cert[0] != '\0') != (c->client_key[0] != '\0')) {
		fprintf(stderr,
			"cleave-server: siem_client_cert and siem_client_key go together\n");
		return -1;
	}
	if (c->transport == SIEM_TLS && (readable("siem_ca", c->ca_file) != 0 ||
					 readable("siem_client_cert", c->client_cert) != 0 ||
					 readable("siem_client_key", c->client_key) != 0))
		return -1;
	return 0;
}
