/*
 * Small-file I/O shared by every binary: durable atomic replacement (temp file, fsync, rename,
 * fsync of the directory) and bounded whole-file reads. libc only; errors are logged once here
 * with the path, callers pass the code up.
 */
#ifndef CLEAVE_FILEIO_H
#define CLEAVE_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Replaces path with n bytes of data and exactly mode (whatever the umask), atomically: a new
 * temp file beside it (O_EXCL, so nothing is followed or reused), fsync, rename, fsync of the
 * directory. Returns 0 or -errno; on failure path is unchanged and no temp file remains.
 */
int file_write_atomic(const char *path, const void *data, size_t n, mode_t mode);

/*
 * Reads all of path, up to cap bytes, into a NUL-terminated heap buffer owned by the caller
 * (free()); *len (may be NULL) gets the size. NULL with errno set when missing, unreadable or
 * larger than cap (EFBIG).
 */
char *file_read_all(const char *path, size_t cap, size_t *len);

#endif
