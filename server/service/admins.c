/*
 * Admin accounts of the web console and their sessions (issue 9). Passwords are hashed with
 * Argon2id (libsodium crypto_pwhash_str) and never kept; session ids exist only in the
 * browser's cookie and as their SHA-256 in the store. A session maps to the same struct
 * principal as an API token, so the role matrix in service.c decides for both.
 */
#include "service_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "b64.h"
#include "fileio.h"
#include "log.h"
#include "totp.h"

#define LOGIN_FAILED "email or password is wrong"
/* Seconds a session's last use may lag before the store is told (saves a write per request). */
#define TOUCH_EVERY_S 60

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];

/* A hash of a random password, verified for unknown emails so they cost the same time. */
static void
dummy_make(void)
{
	uint8_t pw[16];

	if (sodium_init() < 0 || crypto_random(pw, sizeof(pw)) != 0)
		return;
	if (crypto_pwhash_str(dummy_hash, (const char *)pw, sizeof(pw),
			      crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		dummy_hash[0] = '\0';
}

static int64_t
idle_s(const struct service *s)
{
	return s->cfg.session_idle_s > 0 ? s->cfg.session_idle_s : 1800;
}

int64_t
svc_session_max_s(const struct service *s)
{
	return s->cfg.session_max_s > 0 ? s->cfg.session_max_s : 43200;
}

static int
email_ok(const char *e)
{
	const char *at = strchr(e, '@');
	size_t n = strlen(e);

	if (at == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
	    n >= STORE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)e[i] <= ' ' || e[i] == 0x7f)
			return 0;
	return 1;
}

/* Runs one write and its audit entry in a transaction; 0 or a store error. */
static int
write_audited_once(struct service *s, int (*op)(struct service *s, const void *arg),
		   const void *arg, const char *actor, const char *action, const char *target,
		   const char *detail)
{
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return r;
	r = op(s, arg);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), actor, action, target, "ok", detail);
	if (r == 0)
		return s->st->ops->tx_commit(s->st);
	s->st->ops->tx_rollback(s->st);
	return r;
}

static int
write_audited(struct service *s, int (*op)(struct service *s, const void *arg), const void *arg,
	      const char *actor, const char *action, const char *target, const char *detail)
{
	int r;

	SVC_TX_RETRY(s, r, write_audited_once(s, op, arg, actor, action, target, detail));
	return r;
}

static int
op_admin_insert(struct service *s, const void *arg)
{
	return s->st->ops->admin_insert(s->st, arg);
}

/*
 * The first admin, made with the setup code: only while there is none. The count and the
 * insert are one transaction, and the count keeps other writers of admins out until it ends,
 * so two servers whose setup codes are used at once make one admin (-EALREADY for the other).
 */
static int
op_first_admin_insert(struct service *s, const void *arg)
{
	int64_t n = 0;
	int r = s->st->ops->admin_count(s->st, &n);

	if (r != 0)
		return r;
	return n > 0 ? -EALREADY : s->st->ops->admin_insert(s->st, arg);
}

static int admin_create(struct service *s, const struct principal *p, const char *email,
			const char *display_name, enum role role, const char *password, int first,
			struct admin_account *out, struct svc_error *err);

int
svc_admin_create(struct service *s, const struct principal *p, const char *email,
		 const char *display_name, enum role role, const char *password,
		 struct admin_account *out, struct svc_error *err)
{
	return admin_create(s, p, email, display_name, role, password, 0, out, err);
}

/* first: only when no admin exists yet (the setup code's), else SVC_CONFLICT and -EALREADY. */
static int
admin_create(struct service *s, const struct principal *p, const char *email,
	     const char *display_name, enum role role, const char *password, int first,
	     struct admin_account *out, struct svc_error *err)
{
	struct admin_account a;
	char detail[STORE_NAME_MAX + 32];
	size_t pl = strlen(password);
	int r = svc_authorize(s, p, PERM_TOKENS_WRITE, err);

	if (r != 0)
		return r;
	if (!email_ok(email))
		return svc_fail(err, SVC_INVALID, "email must look like name@domain");
	if (display_name[0] == '\0')
		return svc_fail(err, SVC_INVALID, "display_name must not be empty");
	if (role == ROLE_NONE)
		return svc_fail(err, SVC_INVALID, "role must be admin, helpdesk or auditor");
	if (pl < SVC_PASSWORD_MIN || pl > SVC_PASSWORD_MAX)
		return svc_fail(err, SVC_INVALID, "password must be %d to %d characters long",
				SVC_PASSWORD_MIN, SVC_PASSWORD_MAX);
	memset(&a, 0, sizeof(a));
	if (sodium_init() < 0 || svc_new_id(a.id, "adm_") != 0)
		return svc_fail(err, SVC_INTERNAL, "random source failed");
	if (crypto_pwhash_str(a.pwhash, password, pl, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return svc_fail(err, SVC_UNAVAILABLE, "out of memory hashing the password");
	str_copy(a.email, sizeof(a.email), email);
	str_copy(a.display_name, sizeof(a.display_name), display_name);
	str_copy(a.role, sizeof(a.role), role_name(role));
	str_copy(a.created_by, sizeof(a.created_by), p->id);
	a.created_ms = service_now_ms(s);
	a.created_at = a.created_ms / 1000;
	snprintf(detail, sizeof(detail), "email=%s role=%s", a.email, a.role);
	r = write_audited(s, first ? op_first_admin_insert : op_admin_insert, &a, p->id,
			  "admin.create", a.id, detail);
	if (r == -EEXIST)
		return svc_fail(err, SVC_CONFLICT, "an admin with this email exists");
	if (r == -EALREADY) { /* still -EALREADY: svc_setup voids its code */
		svc_fail(err, SVC_CONFLICT, "an admin account exists already");
		return -EALREADY;
	}
	if (r != 0)
		return svc_store_fail(err, r, "admin");
	*out = a;
	return 0;
}

int
svc_admin_list(struct service *s, const struct principal *p, struct admin_account *out, size_t max,
	       size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_TOKENS_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->admin_list(s->st, out, max, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "admin");
}

static int
op_admin_disable(struct service *s, const void *arg)
{
	int r = s->st->ops->admin_disable(s->st, arg, svc_now_s(s));

	return r == 0 ? s->st->ops->session_delete_admin(s->st, arg) : r;
}

int
svc_admin_disable(struct service *s, const struct principal *p, const char *id,
		  struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_TOKENS_WRITE, err);

	if (r != 0)
		return r;
	r = write_audited(s, op_admin_disable, id, p->id, "admin.disable", id, "");
	return r == 0 ? 0 : svc_store_fail(err, r, "admin");
}

/* Looks the account up and verifies the password; 1 when both hold, 0 when not, or < 0. */
static int
check_password(struct service *s, const char *email, const char *password, struct admin_account *a)
{
	size_t pl = strlen(password);
	int r = s->st->ops->admin_by_email(s->st, email, a);

	if (r != 0 && r != -ENOENT)
		return r;
	/* An account made by single sign-on has no password: it fails like an unknown one. */
	if (r == -ENOENT || pl > SVC_PASSWORD_MAX || a->pwhash[0] == '\0') {
		/* The same Argon2id work as for a real account, so timing tells nothing. */
		volatile int sink;

		pthread_once(&dummy_once, dummy_make);
		sink = crypto_pwhash_str_verify(dummy_hash, password, pl);
		(void)sink;
		return 0;
	}
	if (crypto_pwhash_str_verify(a->pwhash, password, pl) != 0)
		return 0;
	return a->disabled_at == 0;
}

/*
 * The second factor of an account whose password was right: 1 when it holds. *step gets the
 * matched code's step (0 without TOTP); a step at or before the last one used is refused, so
 * a code seen over a shoulder does not work twice.
 */
static int
check_totp(struct service *s, const struct admin_account *a, const char *totp, int64_t *step)
{
	*step = 0;
	if (!a->has_totp)
		return !s->cfg.require_totp;
	return totp_match(a->totp_secret, sizeof(a->totp_secret), svc_now_s(s), totp, TOTP_DIGITS,
			  step) &&
	       *step > a->totp_last_step;
}

/* The session, and the TOTP step it used (so the code cannot be used again), in one go. */
struct login_write {
	const struct admin_session *ss;
	int64_t step;
};

static int
op_login(struct service *s, const void *arg)
{
	const struct login_write *w = arg;
	int r = 0;

	if (w->step > 0)
		r = s->st->ops->admin_totp_used(s->st, w->ss->admin_id, w->step);
	return r == 0 ? s->st->ops->session_insert(s->st, w->ss) : r;
}

/*
 * Per-account throttle: after THROTTLE_AFTER failures in a row, the account's next sign-in
 * waits 1, 2, 4 … 64 minutes after the last failure. While it waits, every attempt fails
 * with the usual answer and uncounted, after the same Argon2id work, so a guesser learns
 * neither the password nor that the account exists; the owner's good password waits too.
 */
#define THROTTLE_AFTER 5

static int
account_throttled(const struct service *s, const struct admin_account *a)
{
	int64_t over = a->failed_logins - THROTTLE_AFTER;

	if (over < 0)
		return 0;
	return svc_now_s(s) - a->last_failed_at < (int64_t)60 << (over < 6 ? over : 6);
}

static void
record_login(struct service *s, const char *id, int ok)
{
	if (s->st->ops->tx_begin(s->st) != 0)
		return;
	if (s->st->ops->admin_login_result(s->st, id, ok, svc_now_s(s)) == 0)
		s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
}

int
svc_login(struct service *s, const char *email, const char *password, const char *totp,
	  const char *client, char **session_id, struct admin_account *out, struct svc_error *err)
{
	struct admin_session ss;
	struct login_write w = {.ss = &ss};
	int64_t step = 0;
	int r, throttled;

	*session_id = NULL;
	r = svc_source_check(s, client, err);
	if (r != 0)
		return r;
	if (sodium_init() < 0)
		return svc_fail(err, SVC_INTERNAL, "libsodium failed to start");
	memset(out, 0, sizeof(*out));
	r = check_password(s, email, password, out);
	if (r < 0)
		return svc_store_fail(err, r, "admin");
	throttled = out->id[0] != '\0' && account_throttled(s, out);
	/* A missing or wrong code gets the same answer: it must not confirm the password. */
	if (r == 0 || throttled || !check_totp(s, out, totp, &step)) {
		if (out->id[0] != '\0' && !throttled)
			record_login(s, out->id, 0);
		svc_refused(s, client, email, "admin.login",
			    throttled ? "account throttled after failed sign-ins" : LOGIN_FAILED);
		return svc_fail(err, SVC_UNAUTHORIZED, LOGIN_FAILED);
	}
	if (out->failed_logins > 0)
		record_login(s, out->id, 1);
	memset(&ss, 0, sizeof(ss));
	r = svc_new_secret("cls_", session_id, ss.hash);
	if (r != 0)
		return svc_fail(err, SVC_INTERNAL, "random source failed");
	str_copy(ss.admin_id, sizeof(ss.admin_id), out->id);
	ss.created_at = ss.last_seen_at = svc_now_s(s);
	ss.second_factor = step > 0; /* a TOTP code matched (check_totp) */
	w.step = step;
	r = write_audited(s, op_login, &w, out->id, "admin.login", out->id, client ? client : "");
	if (r != 0) {
		free(*session_id);
		*session_id = NULL;
		/* -ENOENT: a sign-in racing this one used the same code first. */
		return r == -ENOENT ? svc_fail(err, SVC_UNAUTHORIZED, LOGIN_FAILED)
				    : svc_store_fail(err, r, "session");
	}
	return 0;
}

void
svc_session_csrf(const char *session_id, char out[SVC_CSRF_LEN])
{
	static const char label[] = "cleave console csrf v1";
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)session_id, strlen(session_id));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, sizeof(label) - 1);
	crypto_auth_hmacsha256_final(&st, mac);
	b64url_encode(out, SVC_CSRF_LEN, mac, sizeof(mac));
	secure_zero(&st, sizeof(st));
}

static int
csrf_ok(const char *session_id, const char *csrf)
{
	char want[SVC_CSRF_LEN];
	int ok;

	if (csrf == NULL)
		return 0;
	svc_session_csrf(session_id, want);
	ok = strlen(csrf) == strlen(want) && sodium_memcmp(want, csrf, strlen(want)) == 0;
	secure_zero(want, sizeof(want));
	return ok;
}

/* Ends an expired session; failures only mean it is deleted later by the next attempt. */
static void
session_end(struct service *s, const uint8_t hash[32])
{
	if (s->st->ops->tx_begin(s->st) != 0)
		return;
	if (s->st->ops->session_delete(s->st, hash) == 0)
		s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
}

static void
session_touch(struct service *s, const struct admin_session *ss, int64_t now)
{
	if (now - ss->last_seen_at < TOUCH_EVERY_S || s->st->ops->tx_begin(s->st) != 0)
		return;
	if (s->st->ops->session_touch(s->st, ss->hash, now) == 0)
		s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
}

int
svc_session_auth(struct service *s, const char *session_id, int csrf_required, const char *csrf,
		 struct principal *p, struct svc_error *err)
{
	struct admin_session ss;
	struct admin_account a;
	int64_t now = svc_now_s(s);
	uint8_t h[32];
	int r;

	crypto_sha256(session_id, strlen(session_id), h);
	r = s->st->ops->session_get(s->st, h, &ss);
	if (r == -ENOENT)
		return svc_fail(err, SVC_UNAUTHORIZED, "the session is not valid; sign in again");
	if (r != 0)
		return svc_store_fail(err, r, "session");
	if (now - ss.last_seen_at >= idle_s(s) || now - ss.created_at >= svc_session_max_s(s)) {
		session_end(s, h);
		return svc_fail(err, SVC_UNAUTHORIZED, "the session has expired; sign in again");
	}
	r = s->st->ops->admin_get(s->st, ss.admin_id, &a);
	if (r != 0 && r != -ENOENT)
		return svc_store_fail(err, r, "admin");
	if (r == -ENOENT || a.disabled_at != 0)
		return svc_fail(err, SVC_UNAUTHORIZED, "the account is disabled");
	if (csrf_required && !csrf_ok(session_id, csrf))
		return svc_fail(err, SVC_FORBIDDEN,
				"a console request that changes something needs the session's "
				"X-CSRF-Token header");
	session_touch(s, &ss, now);
	p->role = role_parse(a.role);
	str_copy(p->id, sizeof(p->id), a.id);
	str_copy(p->name, sizeof(p->name), a.email);
	p->second_factor = ss.second_factor;
	return 0;
}

static int
op_session_delete(struct service *s, const void *arg)
{
	int r = s->st->ops->session_delete(s->st, arg);

	return r == -ENOENT ? 0 : r;
}

int
svc_logout(struct service *s, const char *session_id, struct svc_error *err)
{
	struct admin_session ss;
	uint8_t h[32];
	int r;

	crypto_sha256(session_id, strlen(session_id), h);
	r = s->st->ops->session_get(s->st, h, &ss);
	if (r == -ENOENT)
		return 0;
	if (r == 0)
		r = write_audited(s, op_session_delete, h, ss.admin_id, "admin.logout", ss.admin_id,
				  "");
	return r == 0 ? 0 : svc_store_fail(err, r, "session");
}

static int
op_session_delete_admin(struct service *s, const void *arg)
{
	return s->st->ops->session_delete_admin(s->st, arg);
}

int
svc_logout_all(struct service *s, const struct principal *p, struct svc_error *err)
{
	int r = write_audited(s, op_session_delete_admin, p->id, p->id, "admin.logout_all", p->id,
			      "every console session ended");

	return r == 0 ? 0 : svc_store_fail(err, r, "session");
}

/* ---- second factor ---- */

/* RFC 4648 base32 without padding, as otpauth:// URIs carry keys; dst needs 8 per 5 + 1. */
static void
base32(char *dst, const uint8_t *src, size_t n)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | src[i];
		bits += 8;
		while (bits >= 5) {
			*dst++ = abc[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		*dst++ = abc[(acc << (5 - bits)) & 31];
	*dst = '\0';
}

/* Percent-encodes the label part of the URI (an email) into dst of cap bytes. */
static void
uri_escape(char *dst, size_t cap, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 4 < cap; src++) {
		unsigned char ch = (unsigned char)*src;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("@._-", ch) != NULL)
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, cap - o, "%%%02X", ch);
	}
	dst[o] = '\0';
}

struct totp_set {
	const char *id;
	const uint8_t *key;
};

static int
op_set_totp(struct service *s, const void *arg)
{
	const struct totp_set *t = arg;

	return s->st->ops->admin_set_totp(s->st, t->id, t->key);
}

int
svc_admin_totp_enroll(struct service *s, const struct principal *p, const char *id, char **uri,
		      struct svc_error *err)
{
	struct admin_account a;
	uint8_t key[20];
	char b32[40], label[3 * STORE_NAME_MAX];
	struct totp_set t = {.id = id, .key = key};
	size_t cap;
	int r = strcmp(p->id, id) == 0 ? 0 : svc_authorize(s, p, PERM_TOKENS_WRITE, err);

	*uri = NULL;
	if (r != 0)
		return r;
	r = s->st->ops->admin_get(s->st, id, &a);
	if (r != 0)
		return svc_store_fail(err, r, "admin");
	if (crypto_random(key, sizeof(key)) != 0)
		return svc_fail(err, SVC_INTERNAL, "random source failed");
	r = write_audited(s, op_set_totp, &t, p->id, "admin.totp_enroll", id, "");
	if (r != 0) {
		secure_zero(key, sizeof(key));
		return svc_store_fail(err, r, "admin");
	}
	base32(b32, key, sizeof(key));
	secure_zero(key, sizeof(key));
	uri_escape(label, sizeof(label), a.email);
	cap = strlen(label) + strlen(b32) + 128;
	*uri = malloc(cap);
	if (*uri != NULL)
		snprintf(*uri, cap,
			 "otpauth://totp/Cleave:%s?secret=%s&issuer=Cleave&algorithm=SHA1&digits=%d"
			 "&period=%d",
			 label, b32, TOTP_DIGITS, TOTP_STEP_S);
	secure_zero(b32, sizeof(b32));
	return *uri != NULL ? 0 : svc_fail(err, SVC_UNAVAILABLE, "out of memory");
}

/* ---- first-start setup ---- */

int
service_arm_setup(struct service *s, const char *path, const char *base_url, int *armed)
{
	char *code = NULL, *text;
	size_t cap;
	int64_t n = 0;
	int r = s->st->ops->admin_count(s->st, &n);

	*armed = 0;
	if (r != 0 || n > 0) {
		if (r == 0 && unlink(path) == 0)
			log_info("removed %s: an admin account exists", path);
		return r;
	}
	free(s->setup_path);
	s->setup_path = strdup(path);
	if (s->setup_path == NULL || svc_new_secret("clv_su_", &code, s->setup_hash) != 0) {
		free(code);
		return -ENOMEM;
	}
	cap = 2 * strlen(code) + strlen(base_url) + 16;
	text = malloc(cap);
	if (text == NULL) {
		free(code);
		return -ENOMEM;
	}
	snprintf(text, cap, "%s\n%s/setup#%s\n", code, base_url, code);
	r = file_write_atomic(path, text, strlen(text), 0600);
	secure_zero(text, cap);
	secure_zero(code, strlen(code));
	free(text);
	free(code);
	if (r != 0) {
		log_errno(r, "cannot write %s", path);
		return r;
	}
	atomic_store(&s->setup_armed, 1);
	*armed = 1;
	log_info("no admin account yet: the one-time setup code and link are in %s", path);
	return 0;
}

int
svc_setup(struct service *s, const char *code, const char *email, const char *display_name,
	  const char *password, const char *client, struct admin_account *out,
	  struct svc_error *err)
{
	struct principal p = {.role = ROLE_ADMIN, .id = "setup", .name = "first-start setup"};
	uint8_t h[32];
	int64_t n = 0;
	int r;

	r = svc_source_check(s, client, err);
	if (r != 0)
		return r;
	crypto_sha256(code, strlen(code), h);
	/* The exchange makes the code single-use even for two requests racing with it. */
	if (!atomic_load(&s->setup_armed) || sodium_memcmp(h, s->setup_hash, sizeof(h)) != 0 ||
	    !atomic_exchange(&s->setup_armed, 0)) {
		svc_refused(s, client, NULL, "admin.setup", "wrong or used setup code");
		return svc_fail(err, SVC_UNAUTHORIZED,
				"the setup code is not valid, or it was used already");
	}
	r = s->st->ops->admin_count(s->st, &n);
	if (r != 0 || n > 0) {
		/* An admin was made with a token meanwhile: the code is void, not re-armed. */
		if (r == 0 && s->setup_path != NULL)
			unlink(s->setup_path);
		return r ? svc_store_fail(err, r, "admin")
			 : svc_fail(err, SVC_CONFLICT, "an admin account exists already");
	}
	r = admin_create(s, &p, email, display_name, ROLE_ADMIN, password, 1, out, err);
	if (r == -EALREADY) {
		/* Another server's setup code made the first admin meanwhile: this one is void. */
		if (s->setup_path != NULL)
			unlink(s->setup_path);
		return r;
	}
	if (r != 0) {
		/* A rejected password does not use the code up. */
		atomic_store(&s->setup_armed, 1);
		return r;
	}
	if (s->setup_path != NULL && unlink(s->setup_path) != 0)
		log_warn("cannot remove %s: %s", s->setup_path, strerror(errno));
	return 0;
}
