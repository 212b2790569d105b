/*
 * Unit tests for connection admission (server/http/connlimit.h) over synthetic socket
 * addresses: the trusted list parser, CIDR matching for IPv4, IPv6 and IPv4-mapped IPv6, the
 * per-address cap (IPv6 counted per /64), the trusted reserve, and that a closed connection
 * gives its slot back. No sockets and no libmicrohttpd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "http/connlimit.h"

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
	}
	return ss;
}

static int
trusted(const struct connlimit *cl, const char *text)
{
	struct sockaddr_storage ss = addr(text);

	return connlimit_trusted(cl, (struct sockaddr *)&ss);
}

static void
test_connlimit_parse_and_match(void **state)
{
	struct cl_policy pol = {0};
	struct connlimit cl;
	char bad[64] = "";

	(void)state;
	assert_int_equal(
		connlimit_parse_trusted("10.1.0.0/16, 192.0.2.7 2001:db8::/32", &pol, bad, 64), 0);
	assert_int_equal(pol.ntrusted, 3);
	connlimit_init(&cl, &pol);
	assert_true(trusted(&cl, "10.1.255.3"));
	assert_false(trusted(&cl, "10.2.0.1"));
	assert_true(trusted(&cl, "192.0.2.7"));
	assert_false(trusted(&cl, "192.0.2.8"));
	assert_true(trusted(&cl, "::ffff:10.1.0.9")); /* a dual-stack socket's IPv4 client */
	assert_true(trusted(&cl, "2001:db8:ffff::1"));
	assert_false(trusted(&cl, "2001:db9::1"));
	connlimit_fini(&cl);

	assert_int_equal(connlimit_parse_trusted("none", &pol, bad, 64), 0);
	assert_int_equal(pol.ntrusted, 0);
	assert_int_equal(connlimit_parse_trusted("10.0.0.0/33", &pol, bad, 64), -EINVAL);
	assert_string_equal(bad, "10.0.0.0/33");
	assert_int_equal(connlimit_parse_trusted("::1, example.com", &pol, bad, 64), -EINVAL);
	assert_string_equal(bad, "example.com");
	assert_int_equal(connlimit_parse_trusted("10.0.0.1/", &pol, bad, 64), -EINVAL);
}

/* Admits like the daemon does: check, then count. Returns the check's answer. */
static int
admit(struct connlimit *cl, const char *text, struct cl_entry **slot)
{
	struct sockaddr_storage ss = addr(text);
	int r = connlimit_check(cl, (struct sockaddr *)&ss);

	if (r == 0)
		assert_int_equal(connlimit_add(cl, (struct sockaddr *)&ss, slot), 0);
	return r;
}

static void
test_connlimit_per_address_cap(void **state)
{
	struct cl_policy pol = {.total = 100, .per_address = 3, .reserve = 10};
	struct cl_entry *s[8];
	struct connlimit cl;

	(void)state;
	connlimit_init(&cl, &pol);
	for (int i = 0; i < 3; i++)
		assert_int_equal(admit(&cl, "198.51.100.1", &s[i]), 0);
	assert_int_equal(admit(&cl, "198.51.100.1", &s[3]), -EMFILE);
	assert_int_equal(admit(&cl, "198.51.100.2", &s[3]), 0);
	/* one /64 is one subscriber */
	for (int i = 4; i < 7; i++)
		assert_int_equal(admit(&cl, i == 5 ? "2001:db8:1:2::ff" : "2001:db8:1:2::1", &s[i]),
				 0);
	assert_int_equal(admit(&cl, "2001:db8:1:2:abcd::1", &s[7]), -EMFILE);
	assert_int_equal(admit(&cl, "2001:db8:1:3::1", &s[7]), 0);
	/* a closed connection frees its slot */
	connlimit_del(&cl, s[0]);
	assert_int_equal(admit(&cl, "198.51.100.1", &s[0]), 0);
	assert_int_equal(cl.active, 8);
	assert_int_equal(cl.refused_address, 2);
	for (int i = 0; i < 8; i++)
		connlimit_del(&cl, s[i]);
	assert_int_equal(cl.active, 0);
	assert_null(cl.tree);
	connlimit_fini(&cl);
}

static void
test_connlimit_reserve_for_trusted(void **state)
{
	struct cl_policy pol = {.total = 10, .per_address = 0, .reserve = 4};
	struct cl_entry *s[12];
	struct connlimit cl;

	(void)state;
	assert_int_equal(connlimit_parse_trusted("127.0.0.0/8", &pol, NULL, 0), 0);
	connlimit_init(&cl, &pol);
	for (int i = 0; i < 6; i++)
		assert_int_equal(admit(&cl, "203.0.113.9", &s[i]), 0);
	assert_int_equal(admit(&cl, "203.0.113.10", &s[6]), -ENOSPC);
	for (int i = 6; i < 10; i++) {
		assert_int_equal(admit(&cl, "127.0.0.1", &s[i]), 0);
		assert_null(s[i]); /* trusted: counted in the total only */
	}
	assert_int_equal(cl.refused_reserve, 1);
	connlimit_del(&cl, s[0]);
	assert_int_equal(admit(&cl, "203.0.113.10", &s[0]), -ENOSPC); /* still in the reserve */
	for (int i = 6; i < 10; i++)
		connlimit_del(&cl, s[i]);
	assert_int_equal(admit(&cl, "203.0.113.10", &s[0]), 0);
	for (int i = 0; i < 6; i++)
		connlimit_del(&cl, s[i]);
	assert_null(cl.tree);
	connlimit_fini(&cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connlimit_parse_and_match),
		cmocka_unit_test(test_connlimit_per_address_cap),
		cmocka_unit_test(test_connlimit_reserve_for_trusted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
