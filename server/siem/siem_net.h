/*
 * The sender's side of one connection to the collector (siem_net.c): TCP, TLS over it, or an
 * appended file. Private to server/siem/.
 */
#ifndef CLEAVE_SIEM_NET_H
#define CLEAVE_SIEM_NET_H

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>

#include "siem.h"

struct siem_conn {
	pthread_mutex_t lock; /* guards fd against siem_conn_abort from another thread */
	int fd;               /* -1: closed */
	gnutls_session_t tls; /* NULL unless SIEM_TLS */
	gnutls_certificate_credentials_t cred;
	enum siem_transport transport;
};

void siem_conn_init(struct siem_conn *c);
/* Connects (or opens the file). 0, or -errno with the reason in err. */
int siem_conn_open(struct siem_conn *c, const struct siem_config *cfg, char *err, size_t cap);
/* Sends all len bytes; 0, or -errno (the connection is then of no more use). */
int siem_conn_send(struct siem_conn *c, const char *buf, size_t len);
/*
 * Waits (bounded by timeout_ms) until the peer's TCP has acknowledged every byte sent, then
 * hold_ms more during which the connection must not be reset or closed: only then is what
 * was sent counted as arrived. A file: fdatasync. 0; 1 when it arrived and then the peer
 * closed the connection in order (the caller reconnects); -ETIMEDOUT, or -ECONNRESET.
 */
int siem_conn_settle(struct siem_conn *c, unsigned hold_ms, unsigned timeout_ms, atomic_int *stop);
void siem_conn_close(struct siem_conn *c);
/* From another thread: makes a blocked send or settle return at once. */
void siem_conn_abort(struct siem_conn *c);

#endif
