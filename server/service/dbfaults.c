/*
 * What the service does when the database fails it: runs a transaction that was given up to a
 * concurrent one again (svc_tx_again, used through SVC_TX_RETRY by every service call that
 * writes), and says whether the database answers (service_store_ok, for /healthz).
 */
#include "service_priv.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "crypto.h"
#include "log.h"

int
svc_tx_again(struct service *s, int r, int attempt)
{
	uint8_t rnd;
	struct timespec ts = {0, 0};

	if (r != -EDEADLK || attempt >= SVC_TX_ATTEMPTS)
		return 0;
	/*
	 * Jittered, growing pause: two servers that crossed should not cross again in step.
	 * attempt 1 waits 1-4 ms, attempt 4 up to 16 ms; all four pauses stay under 40 ms.
	 */
	if (crypto_random(&rnd, 1) != 0)
		rnd = (uint8_t)attempt;
	ts.tv_nsec = (long)attempt * (1 + rnd % 4) * 1000000L;
	nanosleep(&ts, NULL);
	atomic_fetch_add(&s->tx_retries, 1);
	log_info("service: a transaction was rolled back by a deadlock or serialization failure; "
		 "running it again (attempt %d of %d)",
		 attempt + 1, SVC_TX_ATTEMPTS);
	return 1;
}

/* How long service_store_ok's answer is kept. */
#define HEALTH_CACHE_MS 1000

int
service_store_ok(struct service *s)
{
	struct timespec ts;
	int64_t now, at;

	if (s->st->ops->ping == NULL)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0 */
	at = atomic_load(&s->health_at);
	/* One caller refreshes a stale answer; the others meanwhile get the one before it. */
	if ((at == 0 || now - at >= HEALTH_CACHE_MS) &&
	    atomic_compare_exchange_strong(&s->health_at, &at, now)) {
		int ok = s->st->ops->ping(s->st) == 0;

		if (ok != atomic_exchange(&s->health_ok, ok))
			log_info("service: /healthz: the database %s",
				 ok ? "answers again" : "does not answer");
		return ok;
	}
	return atomic_load(&s->health_ok);
}
