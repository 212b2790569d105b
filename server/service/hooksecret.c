/*
 * Webhook signing secrets at rest (issue 11 §3, issue 10 §2: keys never sit in the database
 * in the clear). The server must read a secret back to sign with it, so it is sealed, not
 * hashed: AES-256-GCM (crypto/seal.h) under a key derived from the deployment's audit
 * checkpoint key, a file every server of a deployment holds (keys_dir) and the database never
 * sees. The subscription id is the associated data, so a sealed secret copied to another row
 * does not open. A server with other keys cannot open them: its deliveries fail, logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "seal.h"
#include "service_priv.h"

#define HOOK_KEY_INFO "cleave webhook secrets v1"
#define RESEAL_MAX    1000 /* subscriptions read at start (far above the deployment's cap) */

int
svc_hook_seal(struct service *s, struct webhook *w, const char *plain)
{
	if (!s->hook_key_set)
		return -ENOKEY;
	return seal_text(s->hook_key, w->id, plain, w->secret, sizeof(w->secret));
}

int
svc_hook_open(struct service *s, const struct webhook *w, char *out, size_t cap)
{
	if (strncmp(w->secret, "whsec_", 6) == 0) /* a row from before sealing */
		return str_copy(out, cap, w->secret) == 0 ? 0 : -EINVAL;
	if (!s->hook_key_set)
		return -ENOKEY;
	return seal_open(s->hook_key, w->id, w->secret, out, cap);
}

int
svc_hook_seal_clear(struct service *s, struct webhook *w, int *done)
{
	char plain[sizeof(w->secret)];
	int r;

	*done = 0;
	if (strncmp(w->secret, "whsec_", 6) != 0)
		return 0;
	str_copy(plain, sizeof(plain), w->secret);
	r = svc_hook_seal(s, w, plain);
	secure_zero(plain, sizeof(plain));
	*done = r == 0;
	return r;
}

/* Seals subscription id's secret if it is still in the clear; *done 1 when it was. */
static int
reseal_once(struct service *s, const char *id, int *done)
{
	struct store *st = s->st;
	struct webhook w;
	int r = st->ops->tx_begin(st);

	*done = 0;
	if (r == 0)
		r = st->ops->webhook_get(st, id, 1, &w);
	if (r == 0)
		r = svc_hook_seal_clear(s, &w, done);
	if (r == 0 && *done)
		r = st->ops->webhook_save(st, &w);
	if (r == 0)
		r = st->ops->tx_commit(st);
	if (r != 0)
		st->ops->tx_rollback(st);
	secure_zero(&w, sizeof(w));
	return r == -ENOENT ? 0 : r; /* deleted meanwhile: nothing to seal */
}

/* Seals every secret still in the clear (written before sealing); logs how many. */
static int
reseal_all(struct service *s)
{
	struct webhook *all = calloc(RESEAL_MAX, sizeof(*all));
	size_t n = 0, sealed = 0;
	int r = all ? s->st->ops->webhook_list(s->st, all, RESEAL_MAX, &n) : -ENOMEM;

	for (size_t i = 0; r == 0 && i < n; i++) {
		int done = 0;

		if (seal_is_sealed(all[i].secret))
			continue;
		SVC_TX_RETRY(s, r, reseal_once(s, all[i].id, &done));
		sealed += (size_t)done;
	}
	if (all != NULL)
		secure_zero(all, RESEAL_MAX * sizeof(*all));
	free(all);
	if (r != 0)
		log_errno(-r, "cannot seal the webhook secrets kept in the clear");
	else if (sealed > 0)
		log_info("sealed %zu webhook secret(s) kept in the clear by an older version",
			 sealed);
	return r;
}

int
service_set_webhook_key(struct service *s, const struct ed25519_key *key)
{
	int r = ed25519_key_derive(key, HOOK_KEY_INFO, s->hook_key, sizeof(s->hook_key));

	if (r != 0) {
		log_errno(-r, "cannot derive the key that seals webhook secrets");
		return r;
	}
	s->hook_key_set = 1;
	return reseal_all(s);
}
