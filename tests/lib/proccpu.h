/*
 * CPU time of processes from /proc, for benchmarks that report work per CPU-second rather than
 * per wall-clock second (the machine is shared: wall time moves with others' load, a process's
 * own CPU time much less).
 */
#ifndef CLEAVE_PROCCPU_H
#define CLEAVE_PROCCPU_H

#include <sys/types.h>

/* Reads a small file (under /proc) whole into buf, NUL-terminated; its length or -1. */
ssize_t proc_read(const char *path, char *buf, size_t cap);

/*
 * utime + stime of pid in seconds (with reaped: plus its reaped children's, cutime + cstime),
 * or -1; *ppid gets its parent when not NULL.
 */
double proc_cpu_full(pid_t pid, int reaped, pid_t *ppid);

/* utime + stime of pid in seconds, or -1. */
double proc_cpu_s(pid_t pid);

/*
 * PostgreSQL's CPU: the postmaster with the backends it reaped, plus its live children (the
 * backends serving the servers, the checkpointer, the WAL writer...). -1 when it is gone.
 */
double pg_cpu_s(pid_t postmaster);

#endif
