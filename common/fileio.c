/*
 * Atomic small-file writes and bounded reads. The temp name carries the pid and a process-wide
 * counter, and O_EXCL refuses anything already there, so concurrent writers never share a temp
 * file. This file does not lock: two writers of the same path end with one complete version.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsyncs the directory that holds path so that a rename into it is durable. */
static int
fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, r = 0;

	if (slash == NULL) {
		str_copy(dir, sizeof(dir), ".");
	} else if (slash == path) {
		str_copy(dir, sizeof(dir), "/");
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int
file_write_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
	static atomic_uint seq;
	char tmp[PATH_MAX];
	int fd, r;

	r = snprintf(tmp, sizeof(tmp), "%s.tmp-%ld-%u", path, (long)getpid(),
		     atomic_fetch_add(&seq, 1));
	if (r < 0 || (size_t)r >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		log_errno(r, "cannot create %s", tmp);
		return r;
	}
	/* The umask may have removed bits from mode; a key must end up exactly as asked. */
	r = fchmod(fd, mode) < 0 ? -errno : 0;
	if (r == 0)
		r = write_all(fd, data, n);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		log_errno(r, "cannot write %s", path);
		unlink(tmp);
		return r;
	}
	r = fsync_parent(path);
	if (r < 0)
		log_errno(r, "cannot sync the directory of %s", path);
	return r;
}

char *
file_read_all(const char *path, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		fclose(f);
		errno = ENOMEM;
		return NULL;
	}
	n = fread(buf, 1, cap, f);
	if (n == cap && fgetc(f) != EOF) {
		fclose(f);
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}
