/*
 * State directory, identity, device key, nonce floor and run-time facts. Every record is a
 * kvfile (checksummed, 0600, atomic); the device key is PKCS#8 PEM written by crypto/.
 */
#include "keystore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "hvsig.h"
#include "kvfile.h"
#include "log.h"

#define IDENTITY_MAGIC "cleave-agent identity 1"
#define STATE_MAGIC    "cleave-agent state 1"
#define NONCE_MAGIC    "cleave-agent nonce 1"
/* The nonce floor moves this far ahead of the last nonce (100 s of clock) at each write. */
#define NONCE_STEP 100000000ull

int
agent_dir_open(struct agent_dir *d, const char *path, int create)
{
	struct stat st;

	d->lock_fd = -1;
	if (str_copy(d->path, sizeof(d->path), path) != 0)
		return -ENAMETOOLONG;
	if (create && mkdir(path, 0700) != 0 && errno != EEXIST) {
		log_errno(errno, "cannot create the state directory %s", path);
		return -errno;
	}
	if (lstat(path, &st) != 0) {
		int r = -errno;

		if (r != -ENOENT)
			log_errno(-r, "cannot open the state directory %s", path);
		return r;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		log_err("the state directory %s must be a directory owned by uid %u with mode "
			"0700 (it has %04o)",
			path, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int
agent_dir_file(const struct agent_dir *d, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", d->path, name);

	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

int
agent_dir_lock(struct agent_dir *d)
{
	char p[PATH_MAX];
	int fd, r = agent_dir_file(d, "lock", p, sizeof(p));

	if (r != 0)
		return r;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		log_errno(-r, "cannot open %s", p);
		return r;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return r;
	}
	d->lock_fd = fd;
	return 0;
}

void
agent_dir_close(struct agent_dir *d)
{
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
}

int
identity_exists(const struct agent_dir *d)
{
	char p[PATH_MAX];

	return agent_dir_file(d, "identity", p, sizeof(p)) == 0 && access(p, F_OK) == 0;
}

int
identity_ca_file(const struct agent_dir *d, char *out, size_t cap)
{
	return agent_dir_file(d, "ca.pem", out, cap);
}

/* The optional hv_spki: a P-256 SPKI whose SHA-256 is hv_key. 0 (absent: length 0) or -1. */
static int
identity_spki(const struct kv *kv, struct identity *id)
{
	const char *v = kv_get(kv, "hv_spki");
	uint8_t key[32];
	long n;

	id->hv_spki_len = 0;
	if (v == NULL)
		return 0;
	n = b64_decode(id->hv_spki, sizeof(id->hv_spki), v, strlen(v));
	if (n <= 0 || hvsig_key_id(id->hv_spki, (size_t)n, key) != 0 ||
	    memcmp(key, id->hv_key, 32) != 0)
		return -1;
	id->hv_spki_len = (size_t)n;
	return 0;
}

static int
identity_parse(const char *path, const struct kv *kv, struct identity *id)
{
	uint64_t pinned = 0, has_ca = 0;
	const char *pin = kv_get(kv, "pin_sha256"), *portal = kv_get(kv, "portal_url");

	memset(id, 0, sizeof(*id));
	if (kv_get_str(kv, "server", id->server, sizeof(id->server)) != 0 ||
	    kv_get_str(kv, "device_id", id->device_id, sizeof(id->device_id)) != 0 ||
	    kv_get_str(kv, "owner", id->owner, sizeof(id->owner)) != 0 ||
	    kv_get_b64(kv, "server_key", id->server_key, sizeof(id->server_key)) != 0 ||
	    kv_get_b64(kv, "hv_key", id->hv_key, sizeof(id->hv_key)) != 0 ||
	    kv_get_str(kv, "hv_socket", id->hv_socket, sizeof(id->hv_socket)) != 0 ||
	    kv_get_i64(kv, "enrolled_at", &id->enrolled_at) != 0 ||
	    kv_get_u64(kv, "pinned", &pinned) != 0 || kv_get_u64(kv, "ca", &has_ca) != 0 ||
	    pinned > 1 || has_ca > 1 || id->device_id[0] == '\0' || identity_spki(kv, id) != 0 ||
	    (pin != NULL && str_copy(id->pin, sizeof(id->pin), pin) != 0) ||
	    (portal != NULL && str_copy(id->portal_url, sizeof(id->portal_url), portal) != 0)) {
		log_err("%s is missing a field or has a malformed one; refusing it", path);
		return -EBADMSG;
	}
	id->pinned = (int)pinned;
	id->has_ca = (int)has_ca;
	return 0;
}

int
identity_load(const struct agent_dir *d, struct identity *id, struct ed25519_key **key)
{
	char p[PATH_MAX];
	struct kv kv;
	int r = agent_dir_file(d, "identity", p, sizeof(p));

	if (r == 0)
		r = kv_load(p, IDENTITY_MAGIC, &kv);
	if (r != 0)
		return r;
	r = identity_parse(p, &kv, id);
	kv_free(&kv);
	if (r != 0 || key == NULL)
		return r;
	r = agent_dir_file(d, "device.key", p, sizeof(p));
	if (r == 0)
		r = kv_check_private(p);
	if (r == 0)
		r = ed25519_key_load(p, key);
	if (r == -ENOENT)
		log_err("%s is missing: the device key is gone, so this enrollment cannot be used",
			p);
	else if (r != 0 && r != -EPERM)
		log_err("%s is not a usable Ed25519 key (%s)", p, strerror(-r));
	return r == -ENOENT ? -EBADMSG : r;
}

int
identity_save(const struct agent_dir *d, const struct identity *id, const struct ed25519_key *key)
{
	struct kv_writer w;
	char p[PATH_MAX];
	int r;

	if (key != NULL) {
		r = agent_dir_file(d, "device.key", p, sizeof(p));
		if (r == 0)
			r = ed25519_key_save(key, p);
		if (r != 0)
			return r;
	}
	kvw_init(&w, IDENTITY_MAGIC);
	kvw_str(&w, "server", id->server);
	kvw_str(&w, "device_id", id->device_id);
	kvw_str(&w, "owner", id->owner);
	kvw_b64(&w, "server_key", id->server_key, sizeof(id->server_key));
	kvw_b64(&w, "hv_key", id->hv_key, sizeof(id->hv_key));
	if (id->hv_spki_len != 0)
		kvw_b64(&w, "hv_spki", id->hv_spki, id->hv_spki_len);
	kvw_u64(&w, "ca", (uint64_t)id->has_ca);
	if (id->pin[0])
		kvw_str(&w, "pin_sha256", id->pin);
	kvw_str(&w, "hv_socket", id->hv_socket);
	kvw_i64(&w, "enrolled_at", id->enrolled_at);
	kvw_u64(&w, "pinned", (uint64_t)id->pinned);
	if (id->portal_url[0])
		kvw_str(&w, "portal_url", id->portal_url);
	r = agent_dir_file(d, "identity", p, sizeof(p));
	return r == 0 ? kvw_commit(&w, p) : r;
}

/* Removes DIR/name (a file, or a directory of plain files). Missing is fine. */
static int
purge_one(const struct agent_dir *d, const char *name)
{
	char p[PATH_MAX], q[PATH_MAX + 256];
	struct dirent *e;
	DIR *dir;
	int r = agent_dir_file(d, name, p, sizeof(p));

	if (r != 0)
		return r;
	if (unlink(p) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		goto fail;
	dir = opendir(p);
	if (dir == NULL)
		goto fail;
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(q, sizeof(q), "%s/%s", p, e->d_name);
		if (unlink(q) != 0 && errno != ENOENT) {
			closedir(dir);
			goto fail;
		}
	}
	closedir(dir);
	if (rmdir(p) == 0)
		return 0;
fail:
	r = -errno;
	log_errno(-r, "cannot remove %s", p);
	return r;
}

int
agent_dir_clear(struct agent_dir *d)
{
	/* The identity goes first: a crash part way leaves "not enrolled", never half of one. */
	static const char *const names[] = {"identity", "device.key", "ca.pem",
					    "nonce",    "state",      "journal"};
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int e = purge_one(d, names[i]);

		if (r == 0)
			r = e;
	}
	return r;
}

int
agent_dir_purge(struct agent_dir *d)
{
	int r = agent_dir_clear(d);

	if (r == 0) {
		purge_one(d, "lock");
		agent_dir_close(d);
		/* Leave a directory that holds anything else (not ours) alone. */
		if (rmdir(d->path) != 0 && errno != ENOTEMPTY && errno != EEXIST)
			log_errno(errno, "cannot remove %s", d->path);
	}
	return r;
}

static int
nonce_save(struct nonce_gen *g, uint64_t ceiling)
{
	struct kv_writer w;

	kvw_init(&w, NONCE_MAGIC);
	kvw_u64(&w, "floor", ceiling);
	return kvw_commit(&w, g->path);
}

int
nonce_open(struct nonce_gen *g, const struct agent_dir *d)
{
	struct kv kv;
	int r = agent_dir_file(d, "nonce", g->path, sizeof(g->path));

	g->last = 0;
	g->ceiling = 0;
	if (r == 0)
		r = kv_load(g->path, NONCE_MAGIC, &kv);
	if (r == -ENOENT)
		return 0;
	if (r != 0)
		return r;
	r = kv_get_u64(&kv, "floor", &g->ceiling);
	kv_free(&kv);
	if (r != 0) {
		log_err("%s has no valid floor; refusing it", g->path);
		return -EBADMSG;
	}
	/* Everything below the saved floor may have been used by an earlier run. */
	g->last = g->ceiling > 0 ? g->ceiling - 1 : 0;
	return 0;
}

int
nonce_next(struct nonce_gen *g, uint64_t now_us, uint64_t *out)
{
	uint64_t n = MAX(g->last + 1, now_us);

	/* The server keeps nonces as signed 64-bit numbers. */
	if (n >= (uint64_t)INT64_MAX - NONCE_STEP)
		return -EOVERFLOW;
	if (n >= g->ceiling) {
		int r = nonce_save(g, n + NONCE_STEP);

		if (r != 0)
			return r;
		g->ceiling = n + NONCE_STEP;
	}
	g->last = n;
	*out = n;
	return 0;
}

int
agent_state_load(const struct agent_dir *d, struct agent_state *s)
{
	char p[PATH_MAX];
	struct kv kv;
	int r = agent_dir_file(d, "state", p, sizeof(p));

	memset(s, 0, sizeof(*s));
	s->policy_version = -1;
	if (r == 0)
		r = kv_load(p, STATE_MAGIC, &kv);
	if (r == -ENOENT)
		return 0;
	if (r != 0)
		return r;
	if (kv_get_i64(&kv, "policy_version", &s->policy_version) != 0 ||
	    kv_get_i64(&kv, "last_checkin", &s->last_checkin) != 0 ||
	    (kv_get(&kv, "policy_name") &&
	     kv_get_str(&kv, "policy_name", s->policy_name, sizeof(s->policy_name)) != 0) ||
	    (kv_get(&kv, "last_error") &&
	     kv_get_str(&kv, "last_error", s->last_error, sizeof(s->last_error)) != 0)) {
		log_err("%s has a malformed field; refusing it", p);
		r = -EBADMSG;
	}
	kv_free(&kv);
	return r;
}

int
agent_state_save(const struct agent_dir *d, const struct agent_state *s)
{
	struct kv_writer w;
	char p[PATH_MAX];
	int r = agent_dir_file(d, "state", p, sizeof(p));

	if (r != 0)
		return r;
	kvw_init(&w, STATE_MAGIC);
	if (s->policy_name[0])
		kvw_str(&w, "policy_name", s->policy_name);
	kvw_i64(&w, "policy_version", s->policy_version);
	kvw_i64(&w, "last_checkin", s->last_checkin);
	if (s->last_error[0])
		kvw_str(&w, "last_error", s->last_error);
	return kvw_commit(&w, p);
}
