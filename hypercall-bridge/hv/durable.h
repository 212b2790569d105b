/*
 * The durable file operations of cleave-hv's state, and the crash points between them. Every
 * write, rename, unlink or sync that changes what a restart would find calls durable_step right
 * after it, so one counter sees them all; crash tests stop cleave-hv after any one of them.
 * It does not decide what is written or in which order: trust.c, keys.c and volume*.c do.
 */
#ifndef CLEAVE_DURABLE_H
#define CLEAVE_DURABLE_H

#include <stddef.h>

/*
 * Counts one durable operation just completed (what: a short label for the log). With
 * CLEAVE_HV_FAULT=durable:N in the environment, the Nth such operation since the process
 * started is followed by SIGKILL, as a crash or power cut would stop it (the kernel keeps what
 * was written; the process does nothing more).
 */
void durable_step(const char *what);

/* With CLEAVE_HV_FAULT=name (a named crash point), kills the process here with SIGKILL. */
void durable_point(const char *name);

/*
 * Replaces the file name (no '/', borrowed) in the directory dirfd (borrowed) with len bytes of
 * data (borrowed), mode 0600, atomically: "<name>.tmp" written and fsynced, renamed over name,
 * then the directory fsynced. A leftover temp file of an earlier crash is replaced. Each of the
 * three steps is a durable_step. Returns 0 or -errno (logged here).
 */
int durable_replace(int dirfd, const char *name, const void *data, size_t len);

#endif
