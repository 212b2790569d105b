/*
 * The rsyslog collector of the SIEM stream tests, and the check of what it received (see
 * siemtest.h). rsyslog's own log is rsyslog.log in the collector's directory.
 */
#include "siemtest.h"

#include <glob.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RSYSLOGD "/usr/sbin/rsyslogd"
#define SETPRIV  "/usr/bin/setpriv"
#define MAX_SEQ  400

/* What one message says: its seq and chain hash, and its detail unescaped. */
struct msg {
	int ckpt; /* a checkpoint: seq is the entry it names, hash its head_hash */
	long long seq;
	char hash[65];
	char detail[1024];
};

static int quiet; /* polls say nothing; the last check says why it failed */

const char *
collector_skip_reason(void)
{
	glob_t g;
	int found;

	if (access(RSYSLOGD, X_OK) != 0)
		return "rsyslog is not installed (scripts/deps.sh installs rsyslog, "
		       "rsyslog-gnutls)";
	found = glob("/usr/lib/*/rsyslog/lmnsd_gtls.so", 0, NULL, &g) == 0;
	globfree(&g);
	if (!found)
		return "rsyslog's TLS driver is not installed (rsyslog-gnutls)";
	if (system("command -v openssl >/dev/null") != 0)
		return "openssl is not installed";
	if (geteuid() == 0 && access(SETPRIV, X_OK) != 0)
		return "setpriv (util-linux) is missing: rsyslog would run as root";
	return NULL;
}

/* A CA and the collector's certificate for localhost and 127.0.0.1, signed by it. */
static int
make_certs(const char *dir)
{
	char cmd[PATH_MAX + 1024];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout ca.key -out ca.pem -days 2 -subj '/CN=siem test CA' 2>/dev/null && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem "
		 "-out req.csr -subj /CN=localhost 2>/dev/null && printf "
		 "'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' "
		 ">ext.cnf && openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key "
		 "-CAcreateserial -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
		 "client.key -out client.csr -subj /CN=cleave-server 2>/dev/null && printf "
		 "'extendedKeyUsage=clientAuth\\n' >client.cnf && openssl x509 -req -in "
		 "client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 "
		 "-extfile client.cnf 2>/dev/null",
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
write_conf(struct collector *c, int mutual_tls)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/rsyslog.conf", c->dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
		"global(workDirectory=\"%s/work\"\n"
		"       DefaultNetstreamDriverCAFile=\"%s/ca.pem\"\n"
		"       DefaultNetstreamDriverCertFile=\"%s/cert.pem\"\n"
		"       DefaultNetstreamDriverKeyFile=\"%s/key.pem\")\n"
		"module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\"\n"
		"       StreamDriver.Authmode=\"%s\")\n"
		"template(name=\"raw\" type=\"string\" string=\"%%rawmsg%%\\n\")\n"
		"input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%u\")\n"
		"action(type=\"omfile\" file=\"%s\" template=\"raw\")\n",
		c->dir, c->dir, c->dir, c->dir, mutual_tls ? "x509/certvalid" : "anon", c->port,
		c->out);
	fclose(f);
	snprintf(path, sizeof(path), "%s/work", c->dir);
	return mkdir(path, 0700) == 0 ? 0 : -1;
}

int
collector_init(struct collector *c, int mutual_tls)
{
	char cmd[PATH_MAX + 64];

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/cleave-rsyslog-XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	t_remove_after_case(c->dir);
	snprintf(c->out, sizeof(c->out), "%s/received.log", c->dir);
	c->port = t_free_port();
	if (c->port == 0 || make_certs(c->dir) != 0 || write_conf(c, mutual_tls) != 0)
		return -1;
	if (geteuid() != 0)
		return 0;
	/* rsyslog runs as nobody: its directory, key and files are nobody's. */
	snprintf(cmd, sizeof(cmd), "chown -R nobody:nogroup '%s'", c->dir);
	return system(cmd) == 0 ? 0 : -1;
}

void
collector_settings(const struct collector *c, char *out, size_t cap)
{
	snprintf(out, cap, "siem_target = tls://127.0.0.1:%u\nsiem_ca = %s/ca.pem\n", c->port,
		 c->dir);
}

/* Waits (bounded, 10 s) until something accepts TCP connections on 127.0.0.1:port. */
static int
wait_listening(unsigned port)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%u' 2>/dev/null", port);
	for (int i = 0; i < 200; i++) {
		if (system(cmd) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

int
collector_start(struct collector *c)
{
	char conf[PATH_MAX + 16], log[PATH_MAX + 16], pid[PATH_MAX + 16];

	snprintf(conf, sizeof(conf), "%s/rsyslog.conf", c->dir);
	snprintf(log, sizeof(log), "%s/rsyslog.log", c->dir);
	snprintf(pid, sizeof(pid), "%s/rsyslog.pid", c->dir);
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL)
			_exit(127);
		/* setpriv execs rsyslogd in its place: the pid tracked is rsyslogd's own. */
		if (geteuid() == 0)
			execl(SETPRIV, "setpriv", "--reuid=nobody", "--regid=nogroup",
			      "--clear-groups", "--", RSYSLOGD, "-n", "-f", conf, "-i", pid,
			      (char *)NULL);
		else
			execl(RSYSLOGD, "rsyslogd", "-n", "-f", conf, "-i", pid, (char *)NULL);
		_exit(127);
	}
	t_track_child(c->pid, 1);
	if (wait_listening(c->port) != 0) {
		printf("    rsyslog did not listen: see %s\n", log);
		return -1;
	}
	return 0;
}

void
collector_stop(struct collector *c)
{
	if (c->pid > 0)
		t_stop_child(c->pid, SIGTERM, 10000);
	c->pid = 0;
}

int
collector_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, ch;

	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* The value of name="..." in the structured data of line, unescaped (RFC 5424 §6.3.3). */
static int
sd_param(const char *line, const char *name, char *out, size_t cap)
{
	char key[64];
	const char *p;
	size_t n = 0;

	snprintf(key, sizeof(key), " %s=\"", name);
	p = strstr(line, key);
	if (p == NULL)
		return -1;
	for (p += strlen(key); *p != '\0' && *p != '"' && n + 1 < cap; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == ']'))
			p++;
		out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"' ? 0 : -1;
}

/* Reads every received message into m (up to max); the count, or -1 on a malformed one. */
static int
received(const char *path, struct msg *m, int max)
{
	char line[4096], seq[32];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		/* A signed checkpoint: facility log audit (13), severity info. */
		if (strncmp(line, "<110>1 ", 7) == 0 &&
		    strstr(line, " cleave - checkpoint [cleave@32473 ") != NULL &&
		    sd_param(line, "seq", seq, 32) == 0 &&
		    sd_param(line, "head_hash", m[n].hash, 65) == 0 &&
		    sd_param(line, "record", m[n].detail, sizeof(m[n].detail)) == 0) {
			m[n].ckpt = 1;
			m[n++].seq = atoll(seq);
			continue;
		}
		/* An entry: facility log audit (13), severity notice for "ok", warning otherwise. */
		if (strncmp(line, "<109>1 ", 7) != 0 && strncmp(line, "<108>1 ", 7) != 0) {
			printf("    not an RFC 5424 audit message: %.200s\n", line);
			n = -1;
			break;
		}
		if (strstr(line, " cleave - audit [cleave@32473 ") == NULL ||
		    sd_param(line, "seq", seq, 32) || sd_param(line, "hash", m[n].hash, 65) ||
		    sd_param(line, "detail", m[n].detail, sizeof(m[n].detail))) {
			printf("    a message without our structured data: %.200s\n", line);
			n = -1;
			break;
		}
		m[n].ckpt = 0;
		m[n++].seq = atoll(seq);
	}
	fclose(f);
	return n;
}

long long
collector_last_checkpoint(const struct collector *c)
{
	static struct msg got[MAX_SEQ * 2];
	int n = received(c->out, got, MAX_SEQ * 2);
	long long seq = 0;

	for (int i = 0; i < n; i++)
		if (got[i].ckpt)
			seq = got[i].seq;
	return seq;
}

int
collector_entry_lines(const char *path)
{
	static struct msg got[MAX_SEQ * 2];
	int n = received(path, got, MAX_SEQ * 2), entries = 0;

	for (int i = 0; i < n; i++)
		entries += !got[i].ckpt;
	return n < 0 ? -1 : entries;
}

/* The audit log as GET /api/v1/audit shows it, into m[seq] (seq 1..max-1); the head's seq. */
static long long
api_audit(struct client *admin, struct msg *m, int max)
{
	char path[512], after[256] = "";
	long long head = 0;

	for (int page = 0; page < 20; page++) {
		long status = 0;
		json_t *j, *items, *it;
		size_t i;

		snprintf(path, sizeof(path), "/api/v1/audit?limit=200%s%s",
			 after[0] ? "&cursor=" : "", after);
		j = client_get_json(admin, path, &status);
		items = json_object_get(j, "items");
		json_array_foreach(items, i, it)
		{
			long long seq = json_integer_value(json_object_get(it, "seq"));

			if (seq > 0 && seq < max) {
				m[seq].seq = seq;
				snprintf(m[seq].hash, sizeof(m[seq].hash), "%s",
					 json_string_value(json_object_get(it, "hash")));
				snprintf(m[seq].detail, sizeof(m[seq].detail), "%s",
					 json_string_value(json_object_get(it, "detail")));
			}
			head = seq > head ? seq : head;
		}
		snprintf(after, sizeof(after), "%s",
			 json_is_string(json_object_get(j, "next_cursor"))
				 ? json_string_value(json_object_get(j, "next_cursor"))
				 : "");
		json_decref(j);
		if (status != 200 || after[0] == '\0')
			break;
	}
	return head;
}

/* One check of collector_wait_stream. */
static int
check_stream(const struct collector *c, struct client *admin, int window, int restarts)
{
	static struct msg got[MAX_SEQ * 2], want[MAX_SEQ];
	long long head, cur = 0, top = 0;
	int n, rewinds = 0;

	memset(want, 0, sizeof(want));
	head = api_audit(admin, want, MAX_SEQ);
	n = received(c->out, got, MAX_SEQ * 2);
	if (n < 0 || head <= 0 || head >= MAX_SEQ)
		return -1;
	for (int i = 0; i < n; i++) {
		const struct msg *g = &got[i];

		if (g->ckpt) { /* after the entries it covers, naming the hash the API shows */
			if (g->seq > top || strcmp(g->hash, want[g->seq].hash) != 0) {
				if (!quiet)
					printf("    checkpoint of entry %lld (after %lld) names "
					       "hash "
					       "%s\n",
					       g->seq, top, g->hash);
				return -1;
			}
			continue;
		}
		if (g->seq != cur + 1 &&
		    (g->seq > cur || top - g->seq >= window || ++rewinds > restarts)) {
			if (!quiet)
				printf("    entry %lld came after %lld (a gap, or a repeat beyond "
				       "%d)\n",
				       g->seq, cur, window);
			return -1;
		}
		if (g->seq > head || strcmp(g->hash, want[g->seq].hash) != 0 ||
		    strcmp(g->detail, want[g->seq].detail) != 0) {
			if (!quiet)
				printf("    entry %lld differs from the API's: hash %s detail %s\n",
				       g->seq, g->hash, g->detail);
			return -1;
		}
		cur = g->seq;
		top = cur > top ? cur : top;
	}
	if (top != head || cur != top) {
		if (!quiet)
			printf("    %lld of %lld entries arrived\n", top, head);
		return -1;
	}
	return 0;
}

int
collector_wait_stream(const struct collector *c, struct client *admin, int window, int restarts,
		      int timeout_s)
{
	int r = -1;

	quiet = 1;
	for (int i = 0; i < timeout_s * 5 && r != 0; i++) {
		if (i > 0)
			usleep(200000);
		r = check_stream(c, admin, window, restarts);
	}
	quiet = 0;
	return r == 0 ? 0 : check_stream(c, admin, window, restarts);
}
