/*
 * A minimal 16550 UART on COM1 for the guest console: THR/RBR, LSR (transmitter always empty,
 * data ready when input is queued) and plain storage for the other registers. An optional
 * interrupt line (serial_set_irq) for a guest that enables IER (a Linux guest's 8250 driver):
 * IIR reports received data and an empty transmitter as a 16550 does. No FIFO control, no
 * modem lines. Output goes to a callback; input comes from a bounded byte
 * queue that the host side feeds from any thread.
 */
#ifndef CLEAVE_SERIAL_16550_H
#define CLEAVE_SERIAL_16550_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_pio.h"

#define SERIAL_NPORTS  8
#define SERIAL_REG_LSR 5    /* line status: bit 0 is "input ready" */
#define SERIAL_INQ_CAP 4096 /* bytes of console input the guest has not read yet */

/* Called on the vCPU thread with bytes the guest wrote; buf is borrowed for the call only. */
typedef void (*serial_out_fn)(void *ctx, const uint8_t *buf, size_t len);

/* Drives the UART's interrupt line to level (0 or 1); called from any thread, under s->lock. */
typedef void (*serial_irq_fn)(void *ctx, int level);

struct serial_16550 {
	serial_out_fn out; /* NULL: output is discarded */
	void *out_ctx;
	uint8_t regs[SERIAL_NPORTS]; /* IER, LCR, MCR, SCR and the divisor latch */
	uint8_t dll, dlm;
	serial_irq_fn irq; /* NULL: no interrupt line (the freestanding guests poll) */
	void *irq_ctx;
	int thre_pending; /* the transmitter-empty interrupt is due (IER.THRI set, not yet read) */
	int irq_level;    /* the line's last level */
	pthread_mutex_t lock; /* guards the input queue and the line */
	uint8_t inq[SERIAL_INQ_CAP];
	size_t head, len;
};

/* Sets up s (caller storage); out and out_ctx are borrowed and must outlive s. Returns 0 or -errno. */
int serial_init(struct serial_16550 *s, serial_out_fn out, void *out_ctx);
/* Gives s an interrupt line (fn and ctx borrowed); before the guest runs. */
void serial_set_irq(struct serial_16550 *s, serial_irq_fn fn, void *ctx);
/* Releases s's lock and drops queued input. */
void serial_fini(struct serial_16550 *s);
/* Queues up to len bytes of buf (borrowed) as console input; returns how many fit. */
size_t serial_feed(struct serial_16550 *s, const uint8_t *buf, size_t len);
/* 1 when the guest has unread input. */
int serial_has_input(struct serial_16550 *s);
/* The bus handler (struct bus_dev.io) for s's ports; ctx is the struct serial_16550. */
int serial_io(void *ctx, struct bus_io *io);

#endif
