/*
 * Unit tests for the arm64 Linux guest's device tree (hypercall-bridge/hv/arch/arm64/dtb.c and
 * its FDT writer fdt.c, built for this host): the blob's header and blocks are consistent, and
 * a small walker finds what the kernel needs: /chosen (command line, initramfs), memory, the
 * PSCI method, the GICv3, the 16550 with reg-shift 2 and its interrupt, the virtio disk only
 * when there is one; a blob that does not fit, or nodes left open, is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hypercall-bridge/hv/arch/arm64/dtb.h"
#include "hypercall-bridge/hv/arch/arm64/fdt.h"

static uint8_t blob[8192];

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The value of property name in the node at path ("/a/b"), its length in *len; NULL if none. */
static const uint8_t *
prop(const char *path, const char *name, uint32_t *len)
{
	const uint8_t *st = blob + be32(blob + 8);
	const char *strs = (const char *)blob + be32(blob + 12);
	char cur[256] = "";
	size_t p = 0;

	/* Bounded by the struct block's size. */
	while (p < be32(blob + 36)) {
		uint32_t tok = be32(st + p);

		p += 4;
		if (tok == 1) { /* BEGIN_NODE */
			const char *n = (const char *)st + p;

			if (cur[0] != '\0' || n[0] != '\0')
				snprintf(cur + strlen(cur), sizeof(cur) - strlen(cur), "/%s", n);
			p += (strlen(n) + 4) & ~(size_t)3;
		} else if (tok == 2) { /* END_NODE */
			char *slash = strrchr(cur, '/');

			if (slash != NULL)
				*slash = '\0';
		} else if (tok == 3) { /* PROP */
			uint32_t l = be32(st + p), off = be32(st + p + 4);

			if (strcmp(cur[0] ? cur : "/", path) == 0 &&
			    strcmp(strs + off, name) == 0) {
				*len = l;
				return st + p + 8;
			}
			p += 8 + ((l + 3) & ~(uint32_t)3);
		} else {
			break; /* END */
		}
	}
	return NULL;
}

static long
make(int disk)
{
	struct arm64_dtb d = {.ram_size = 160u << 20,
			      .has_disk = disk,
			      .cmdline = "console=ttyS0 earlycon",
			      .initrd = 0x49db1000,
			      .initrd_len = 322913};

	memset(blob, 0xee, sizeof(blob));
	return arm64_dtb_write(blob, sizeof(blob), &d);
}

static void
test_fdt_header(void **state)
{
	long n = make(1);

	(void)state;
	assert_true(n > 64);
	assert_int_equal(be32(blob), 0xd00dfeed);
	assert_int_equal(be32(blob + 4), n);                     /* totalsize */
	assert_int_equal(be32(blob + 8), 56);                    /* struct after header + rsvmap */
	assert_int_equal(be32(blob + 16), 40);                   /* reservation map */
	assert_int_equal(be32(blob + 20), 17);                   /* version */
	assert_int_equal(be32(blob + 12), 56 + be32(blob + 36)); /* strings after struct */
	assert_int_equal(be32(blob + 12) + be32(blob + 32), n);
	assert_int_equal(be32(blob + 56 + be32(blob + 36) - 4), 9); /* FDT_END */
	for (int i = 40; i < 56; i++)
		assert_int_equal(blob[i], 0); /* the empty reservation map */
}

static void
test_fdt_contents(void **state)
{
	uint32_t len = 0;
	const uint8_t *v;

	(void)state;
	assert_true(make(1) > 0);
	v = prop("/chosen", "bootargs", &len);
	assert_non_null(v);
	assert_string_equal((const char *)v, "console=ttyS0 earlycon");
	v = prop("/chosen", "linux,initrd-end", &len);
	assert_int_equal(len, 8);
	assert_int_equal(be32(v + 4), 0x49db1000 + 322913);
	v = prop("/memory@40000000", "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(be32(v + 4), 0x40000000);
	assert_int_equal(be32(v + 12), 160u << 20);
	assert_string_equal((const char *)prop("/psci", "method", &len), "hvc");
	assert_string_equal((const char *)prop("/cpus/cpu@0", "enable-method", &len), "psci");
	assert_string_equal((const char *)prop("/intc@8000000", "compatible", &len), "arm,gic-v3");
	assert_non_null(prop("/intc@8000000", "interrupt-controller", &len));
	assert_int_equal(len, 0);
	assert_string_equal((const char *)prop("/uart@9000000", "compatible", &len), "ns16550a");
	assert_int_equal(be32(prop("/uart@9000000", "reg-shift", &len)), 2);
	v = prop("/uart@9000000", "interrupts", &len);
	assert_int_equal(len, 12);
	assert_int_equal(be32(v + 4), 1); /* SPI 1 */
	assert_int_equal(be32(prop("/", "interrupt-parent", &len)),
			 be32(prop("/intc@8000000", "phandle", &len)));
	assert_string_equal((const char *)prop("/virtio_mmio@a000000", "compatible", &len),
			    "virtio,mmio");
	assert_true(make(0) > 0);
	assert_null(prop("/virtio_mmio@a000000", "compatible", &len));
	assert_non_null(prop("/uart@9000000", "compatible", &len));
}

static void
test_fdt_refusals(void **state)
{
	struct arm64_dtb d = {.ram_size = 64u << 20, .cmdline = ""};
	struct fdt f;

	(void)state;
	assert_int_equal(arm64_dtb_write(blob, 256, &d), -ENOSPC);
	fdt_begin(&f, blob, sizeof(blob));
	fdt_node(&f, "");
	fdt_node(&f, "open");
	fdt_end_node(&f);
	assert_int_equal(fdt_finish(&f), -EINVAL); /* the root never closed */
	fdt_begin(&f, blob, sizeof(blob));
	fdt_node(&f, "");
	for (int i = 0; i < 80; i++) { /* more distinct names than the strings block holds */
		char name[16];

		snprintf(name, sizeof(name), "property-%d", i);
		fdt_prop_u32(&f, name, (uint32_t)i);
	}
	fdt_end_node(&f);
	assert_int_equal(fdt_finish(&f), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fdt_header),
		cmocka_unit_test(test_fdt_contents),
		cmocka_unit_test(test_fdt_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
