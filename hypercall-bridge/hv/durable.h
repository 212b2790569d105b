/*
 * The durable file operations of cleave-hv's state, and the crash and failure points between
 * them. Every write, rename, unlink or sync that changes what a restart would find calls
 * durable_step right before it, so one counter sees them all; tests stop cleave-hv before any
 * one of them, or make any one of them fail. It does not decide what is written or in which
 * order: trust.c, keys.c and volume*.c do.
 */
#ifndef CLEAVE_DURABLE_H
#define CLEAVE_DURABLE_H

#include <stddef.h>

/*
 * Counts one durable operation about to be done (what: a short label for the log); the caller
 * does it only when this returns 0. With CLEAVE_HV_FAULT=durable:N in the environment, the
 * Nth such operation since the process started is not done: the process kills itself with
 * SIGKILL, as a crash or a power cut would stop it (what was done before stays). With
 * CLEAVE_HV_FAULT=durable-fail:N the Nth one returns -EIO instead (once), as a failing disk
 * would. 0 otherwise.
 */
int durable_step(const char *what) __attribute__((warn_unused_result));

/* With CLEAVE_HV_FAULT=name (a named crash point), kills the process here with SIGKILL. */
void durable_point(const char *name);

/*
 * Replaces the file name (no '/', borrowed) in the directory dirfd (borrowed) with len bytes of
 * data (borrowed), mode 0600, atomically: "<name>.tmp" written and fsynced, renamed over name,
 * then the directory fsynced. A leftover temp file of an earlier crash is replaced. Each of the
 * three steps is a durable_step. Returns 0 or -errno (logged here); after a failed directory
 * sync the new content may or may not be what a restart reads.
 */
int durable_replace(int dirfd, const char *name, const void *data, size_t len);

#endif
