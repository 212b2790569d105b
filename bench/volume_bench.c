/*
 * Benchmark of the corporate volume (hypercall-bridge/hv/volume.c): encrypted sector
 * throughput, and the wipe critical path (intent recorded -> keys destroyed -> verified) for a
 * small and a large volume beside the time a plain overwrite of the small one takes. Prints
 * one table; bench/run.sh compares the throughput with `openssl speed` from the same run.
 * Volume files are sparse, so a 16 GiB volume costs no disk until written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "volume.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * MB/s (10^6) of writing then reading total_mib through the volume, 1 MiB per call. buf comes
 * from malloc as any caller's might (glibc puts a 1 MiB block 16 bytes past a page boundary);
 * the volume must not need it aligned. The volume file is removed afterwards.
 */
static int
throughput(const char *dir, unsigned total_mib, double *wr, double *rd)
{
	struct volume *v;
	uint8_t *buf = malloc(VOLUME_MAX_IO_SECTORS * 4096);
	char path[512];
	double t0;
	int r;

	if (buf == NULL)
		return -ENOMEM;
	memset(buf, 0x5a, VOLUME_MAX_IO_SECTORS * 4096);
	r = volume_create(dir, "tput", total_mib, &v);
	if (r != 0) {
		free(buf);
		return r;
	}
	/* Pass 0 allocates the sparse file; the best of the later passes is what crypto allows. */
	*wr = *rd = 0;
	for (int pass = 0; pass < 4 && r == 0; pass++) {
		double w, rr;

		t0 = now();
		for (unsigned i = 0; i < total_mib && r == 0; i++)
			r = volume_write(v, (uint64_t)i * VOLUME_MAX_IO_SECTORS,
					 VOLUME_MAX_IO_SECTORS, buf);
		w = total_mib * 1048576.0 / 1e6 / (now() - t0);
		t0 = now();
		for (unsigned i = 0; i < total_mib && r == 0; i++)
			r = volume_read(v, (uint64_t)i * VOLUME_MAX_IO_SECTORS,
					VOLUME_MAX_IO_SECTORS, buf);
		rr = total_mib * 1048576.0 / 1e6 / (now() - t0);
		if (pass > 0) {
			*wr = MAX(*wr, w);
			*rd = MAX(*rd, rr);
		}
	}
	volume_close(v);
	snprintf(path, sizeof(path), "%s/tput", dir);
	unlink(path);
	free(buf);
	return r;
}

/* Wipe critical path of a fresh volume of mib MiB: begin + destroy + verify, in ms. */
static int
wipe_once(const char *dir, uint64_t mib, int i, double *ms)
{
	uint8_t hash[32];
	char name[32];
	struct volume *v;
	uint32_t passed = 0;
	double t0;
	int r;

	snprintf(name, sizeof(name), "w%llu-%d", (unsigned long long)mib, i);
	memset(hash, i + 1, sizeof(hash));
	r = volume_create(dir, name, mib, &v);
	if (r != 0)
		return r;
	t0 = now();
	r = volume_wipe_begin(v, hash);
	if (r == 0)
		r = volume_wipe_destroy(v);
	if (r == 0)
		r = volume_wipe_verify(v, &passed);
	*ms = (now() - t0) * 1000;
	volume_close(v);
	if (r == 0 && passed != VOLUME_CHECKS_ALL)
		r = -EIO;
	snprintf(name, sizeof(name), "%s/w%llu-%d", dir, (unsigned long long)mib, i);
	unlink(name);
	return r;
}

/* Seconds to overwrite mib MiB of a file with zeros and fsync it (what a non-crypto wipe costs). */
static double
overwrite(const char *dir, unsigned mib)
{
	char path[512];
	char *buf = calloc(1, 1 << 20);
	int fd;
	double t0, t;

	snprintf(path, sizeof(path), "%s/overwrite", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || buf == NULL)
		return -1;
	/* first fill (allocation), as the volume would have been written, then time a rewrite */
	for (unsigned i = 0; i < mib; i++)
		(void)!write(fd, buf, 1 << 20);
	fsync(fd);
	lseek(fd, 0, SEEK_SET);
	t0 = now();
	for (unsigned i = 0; i < mib; i++)
		(void)!write(fd, buf, 1 << 20);
	fsync(fd);
	t = now() - t0;
	close(fd);
	unlink(path);
	free(buf);
	return t;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	const uint64_t sizes[2] = {1024, 16384};
	enum { N = 21 };
	double wr = 0, rd = 0, ms[N];
	int r = throughput(dir, 256, &wr, &rd);

	if (r != 0) {
		fprintf(stderr, "volume_bench: throughput run failed (%d)\n", r);
		return 1;
	}
	printf("encrypted volume, 256 MiB in 1 MiB calls, best warm pass: write %.0f MB/s, read "
	       "%.0f MB/s\n",
	       wr, rd);
	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < N; i++) {
			r = wipe_once(dir, sizes[s], i, &ms[i]);
			if (r != 0) {
				fprintf(stderr, "volume_bench: wipe failed (%d)\n", r);
				return 1;
			}
		}
		qsort(ms, N, sizeof(ms[0]), cmp_double);
		printf("wipe critical path, %5llu MiB volume, n=%d: p50 %.2f ms, p99 (max) %.2f "
		       "ms\n",
		       (unsigned long long)sizes[s], N, ms[N / 2], ms[N - 1]);
	}
	printf("plain overwrite of 1024 MiB with zeros + fsync: %.0f ms\n",
	       overwrite(dir, 1024) * 1000);
	return 0;
}
