/*
 * Logging backend: formats into a bounded stack buffer and writes it with a single write(2), so
 * lines from different threads never interleave. It does not rotate or buffer; stderr is the
 * sink and the supervisor (systemd, make run) decides where it goes.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_LVL_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_set_level(enum log_level lvl)
{
	min_level = lvl;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void
log_write(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000L,
		     level_names[lvl]);
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n = MIN(n + (size_t)r, sizeof(line) - 1);
	if (errnum != 0 && n < sizeof(line) - 1) {
		char eb[128];
		const char *es = strerror_r(errnum, eb, sizeof(eb));

		r = snprintf(line + n, sizeof(line) - n, ": %s", es);
		if (r > 0)
			n = MIN(n + (size_t)r, sizeof(line) - 1);
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl < min_level)
		return;
	va_start(ap, fmt);
	log_write(lvl, 0, fmt, ap);
	va_end(ap);
}

void
log_errno(int errnum, const char *fmt, ...)
{
	va_list ap;

	if (LOG_LVL_WARN < min_level)
		return;
	va_start(ap, fmt);
	log_write(LOG_LVL_WARN, errnum < 0 ? -errnum : errnum, fmt, ap);
	va_end(ap);
}
