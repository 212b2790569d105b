/*
 * One counter for every durable file operation of cleave-hv, the crash points it drives for
 * tests (CLEAVE_HV_FAULT=durable:N or a point's name), and the atomic small-file replace used
 * for the trust state and the root key files. See durable.h.
 */
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static atomic_ulong steps;

/* The N of CLEAVE_HV_FAULT=<prefix>N, 0 when unset or not of that form. */
static unsigned long
fault_at(const char *prefix)
{
	const char *f = getenv("CLEAVE_HV_FAULT");
	size_t len = strlen(prefix);
	char *end;
	unsigned long n;

	if (f == NULL || strncmp(f, prefix, len) != 0)
		return 0;
	n = strtoul(f + len, &end, 10);
	return *end == '\0' ? n : 0;
}

int
durable_step(const char *what)
{
	unsigned long n = atomic_fetch_add(&steps, 1) + 1;

	if (n == fault_at("durable:")) {
		log_warn("cleave-hv: CLEAVE_HV_FAULT=durable:%lu: killing ourselves before %s", n,
			 what);
		raise(SIGKILL);
	}
	if (n == fault_at("durable-fail:")) {
		log_warn("cleave-hv: CLEAVE_HV_FAULT=durable-fail:%lu: failing %s", n, what);
		return -EIO;
	}
	return 0;
}

void
durable_point(const char *name)
{
	const char *f = getenv("CLEAVE_HV_FAULT");

	if (f != NULL && strcmp(f, name) == 0) {
		log_warn("cleave-hv: CLEAVE_HV_FAULT=%s: killing ourselves here", name);
		raise(SIGKILL);
	}
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
durable_replace(int dirfd, const char *name, const void *data, size_t len)
{
	char tmp[256];
	int fd, n = snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int err = 0;

	if (n < 0 || (size_t)n >= sizeof(tmp) || strchr(name, '/') != NULL)
		return -EINVAL;
	if ((err = durable_step(tmp)) != 0)
		goto fail;
	if (unlinkat(dirfd, tmp, 0) != 0 && errno != ENOENT) {
		err = -errno;
		goto fail;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	/* The umask may have removed bits; a key file must end up exactly 0600. */
	if (fchmod(fd, 0600) != 0 || (err = write_all(fd, data, len)) != 0 || fsync(fd) != 0)
		err = err != 0 ? err : -errno;
	if (close(fd) != 0 && err == 0)
		err = -errno;
	if (err != 0 || (err = durable_step(name)) != 0)
		goto fail;
	if (renameat(dirfd, tmp, dirfd, name) != 0) {
		err = -errno;
		goto fail;
	}
	if ((err = durable_step("directory sync")) != 0 || fsync(dirfd) != 0) {
		err = err != 0 ? err : -errno;
		log_errno(-err, "cleave-hv: cannot sync the directory after writing %s", name);
		return err;
	}
	return 0;
fail:
	log_errno(-err, "cleave-hv: cannot write %s", name);
	unlinkat(dirfd, tmp, 0);
	return err;
}
