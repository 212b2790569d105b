/*
 * The COM1 16550 (see serial_16550.h). Register offsets follow the datasheet: 0 THR/RBR (DLL
 * with LCR.DLAB), 1 IER (DLM), 2 IIR/FCR, 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR. Guest writes to
 * THR are passed through byte by byte; the guest is a debug console, not a data path.
 */
#include <errno.h>
#include <string.h>

#include "cleave_abi.h"
#include "serial_16550.h"

#define REG_DATA 0
#define REG_IER  1
#define REG_IIR  2
#define REG_LCR  3
#define REG_LSR  5
#define REG_MSR  6
#define LCR_DLAB 0x80
#define IER_RDI  0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI  0x04
#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

int
serial_init(struct serial_16550 *s, serial_out_fn out, void *out_ctx)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->out = out;
	s->out_ctx = out_ctx;
	rc = pthread_mutex_init(&s->lock, NULL);
	return rc == 0 ? 0 : -rc;
}

void
serial_set_irq(struct serial_16550 *s, serial_irq_fn fn, void *ctx)
{
	s->irq = fn;
	s->irq_ctx = ctx;
}

/* The interrupt the IIR reports, highest priority first. Called with s->lock held. */
static uint8_t
serial_iir_locked(const struct serial_16550 *s)
{
	if ((s->regs[REG_IER] & IER_RDI) && s->len > 0)
		return IIR_RDI;
	if ((s->regs[REG_IER] & IER_THRI) && s->thre_pending)
		return IIR_THRI;
	return IIR_NONE;
}

/* Brings the interrupt line to what IIR reports, when there is a line. */
static void
serial_update_irq(struct serial_16550 *s)
{
	int level;

	if (s->irq == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	level = serial_iir_locked(s) != IIR_NONE;
	if (level != s->irq_level) {
		s->irq_level = level;
		s->irq(s->irq_ctx, level);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Reading IIR acknowledges the transmitter-empty interrupt it reports (a 16550's rule). */
static uint8_t
serial_iir_read(struct serial_16550 *s)
{
	uint8_t iir;

	pthread_mutex_lock(&s->lock);
	iir = serial_iir_locked(s);
	if (iir == IIR_THRI)
		s->thre_pending = 0;
	pthread_mutex_unlock(&s->lock);
	return iir;
}

void
serial_fini(struct serial_16550 *s)
{
	pthread_mutex_destroy(&s->lock);
	explicit_bzero(s->inq, sizeof(s->inq));
	s->len = 0;
}

size_t
serial_feed(struct serial_16550 *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->len < SERIAL_INQ_CAP) {
		s->inq[(s->head + s->len) % SERIAL_INQ_CAP] = buf[n++];
		s->len++;
	}
	pthread_mutex_unlock(&s->lock);
	serial_update_irq(s);
	return n;
}

int
serial_has_input(struct serial_16550 *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = s->len > 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static uint8_t
serial_pop(struct serial_16550 *s)
{
	uint8_t c = 0;

	pthread_mutex_lock(&s->lock);
	if (s->len > 0) {
		c = s->inq[s->head];
		s->head = (s->head + 1) % SERIAL_INQ_CAP;
		s->len--;
	}
	pthread_mutex_unlock(&s->lock);
	return c;
}

static uint32_t
serial_read(struct serial_16550 *s, unsigned reg)
{
	int dlab = (s->regs[REG_LCR] & LCR_DLAB) != 0;

	switch (reg) {
	case REG_DATA:
		return dlab ? s->dll : serial_pop(s);
	case REG_IER:
		return dlab ? s->dlm : s->regs[REG_IER];
	case REG_IIR:
		return serial_iir_read(s);
	case REG_LSR:
		return LSR_THRE | LSR_TEMT | (serial_has_input(s) ? LSR_DR : 0);
	case REG_MSR:
		return 0xb0; /* DCD, DSR, CTS: a terminal is attached */
	default:
		return s->regs[reg];
	}
}

/* The transmitter-empty interrupt is due; under the lock the feeding thread reads it with. */
static void
set_thre(struct serial_16550 *s)
{
	pthread_mutex_lock(&s->lock);
	s->thre_pending = 1;
	pthread_mutex_unlock(&s->lock);
}

static void
serial_write(struct serial_16550 *s, unsigned reg, uint8_t v)
{
	int dlab = (s->regs[REG_LCR] & LCR_DLAB) != 0;

	if (reg == REG_DATA && dlab)
		s->dll = v;
	else if (reg == REG_IER && dlab)
		s->dlm = v;
	else if (reg == REG_DATA) {
		if (s->out != NULL)
			s->out(s->out_ctx, &v, 1);
		set_thre(s); /* sent at once: the holding register is empty again */
	} else if (reg == REG_IER) {
		/* Enabling THRI with the transmitter empty raises it at once, as on a 16550. */
		if ((v & IER_THRI) && !(s->regs[REG_IER] & IER_THRI))
			set_thre(s);
		pthread_mutex_lock(&s->lock);
		s->regs[reg] = v;
		pthread_mutex_unlock(&s->lock);
	} else if (reg != REG_IIR && reg != REG_LSR && reg != REG_MSR)
		s->regs[reg] = v;
}

int
serial_io(void *ctx, struct bus_io *io)
{
	struct serial_16550 *s = ctx;
	unsigned reg = (unsigned)(io->port - CLV_SERIAL_PORT) % SERIAL_NPORTS;

	/* Wider accesses than a byte touch one register: the UART has byte registers only. */
	if (io->is_write)
		serial_write(s, reg, (uint8_t)io->value);
	else
		io->value = serial_read(s, reg);
	serial_update_irq(s);
	return 0;
}
