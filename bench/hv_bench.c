/*
 * Benchmark of cleave-hv's host side: the bridge call round trip (STATUS, the cheapest call,
 * over the SEQPACKET socket) measured from a client process. Usage: hv_bench SOCKET [N].
 * bench/run.sh starts cleave-hv, runs this, and reads cleave-hv's memory from /proc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bridge_client.h"
#include "cleave_abi.h"
#include "util.h"

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	int n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5000;
	struct bridge_client c;
	uint8_t out[64];
	double *t;
	size_t len;

	if (argc < 2 || n < 10 || n > 1000000) {
		fprintf(stderr, "usage: hv_bench SOCKET [N]\n");
		return 2;
	}
	t = calloc((size_t)n, sizeof(*t));
	if (t == NULL || bridge_connect(&c, argv[1], 5000) != 0) {
		fprintf(stderr, "hv_bench: cannot connect to %s\n", argv[1]);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		if (bridge_call(&c, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &len) != CLV_OK) {
			fprintf(stderr, "hv_bench: call %d failed\n", i);
			return 1;
		}
		t[i] = now_us() - t0;
	}
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("bridge STATUS round trip, n=%d: p50 %.1f us, p99 %.1f us\n", n, t[n / 2],
	       t[n * 99 / 100]);
	bridge_close(&c);
	free(t);
	return 0;
}
