/*
 * Small compiler helpers and secret hygiene shared by every Cleave binary.
 * libc only; nothing here allocates or logs.
 */
#ifndef CLEAVE_UTIL_H
#define CLEAVE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define __must_check   __attribute__((warn_unused_result))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __unused       __attribute__((unused))
#define MIN(a, b)      ((a) < (b) ? (a) : (b))
#define MAX(a, b)      ((a) > (b) ? (a) : (b))

/* Wipes a secret so that the compiler cannot elide the stores. NULL is ignored. */
static inline void
secure_zero(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

/* Constant-time comparison of two equal-length byte strings: 0 when equal. */
static inline int
ct_memcmp(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d;
}

/* Copies at most cap-1 bytes of src into dst and terminates it; returns -1 when src was cut. */
static inline int
str_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (cap == 0)
		return -1;
	if (n >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

#endif
