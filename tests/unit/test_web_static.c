/*
 * The console's static file rules (server/http/static.c) on a web root made in a temporary
 * directory: every way out of the root ("..", its percent-encoded form, empty segments, hidden
 * names, symlinks to a file or a folder outside) is a 404, as are folders, unknown types and
 * oversized files; ETag revalidation gives 304; gzip is chosen exactly when Accept-Encoding
 * allows it, and the gzip body inflates back to the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "http/static.h"

struct fixture {
	char dir[PATH_MAX];  /* holds root/ and the outside files */
	char root[PATH_MAX]; /* the web root */
	char big[4096];      /* the content of static/app.js */
	struct web_static *ws;
};

static const char *
at(const char *dir, const char *name)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void
put(const char *dir, const char *name, const char *text)
{
	FILE *f = fopen(at(dir, name), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("CLEAVE_TEST_OUT");
	char outside[PATH_MAX];
	int fd;

	assert_non_null(fx);
	if (base != NULL)
		mkdir(base, 0755);
	snprintf(fx->dir, sizeof(fx->dir), "%s/web_static.XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->root, sizeof(fx->root), "%s/root", fx->dir);
	assert_int_equal(mkdir(fx->root, 0755), 0);
	assert_int_equal(mkdir(at(fx->root, "static"), 0755), 0);
	assert_int_equal(mkdir(at(fx->root, "static/dir.js"), 0755), 0);
	put(fx->dir, "secret.js", "outside the root");
	assert_int_equal(mkdir(at(fx->dir, "outdir"), 0755), 0);
	put(fx->dir, "outdir/x.js", "outside the root too");
	put(fx->root, "index.html", "<!doctype html><title>x</title>");
	put(fx->root, "static/.hidden.js", "hidden");
	put(fx->root, "static/app.exe", "unknown type");
	for (size_t i = 0; i + 1 < sizeof(fx->big); i++)
		fx->big[i] = (char)('a' + i % 7);
	put(fx->root, "static/app.js", fx->big);
	put(fx->root, "static/logo.png", "\x89PNG");
	snprintf(outside, sizeof(outside), "%s/secret.js", fx->dir);
	assert_int_equal(symlink(outside, at(fx->root, "static/link.js")), 0);
	assert_int_equal(symlink("../../outdir", at(fx->root, "static/linkdir")), 0);
	fd = open(at(fx->root, "static/huge.js"), O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)WEB_FILE_MAX + 1), 0);
	close(fd);
	assert_int_equal(web_static_open(fx->root, &fx->ws), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[PATH_MAX + 16];

	web_static_free(fx->ws);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fx->dir);
	free(fx);
	return 0;
}

static int
status_of(struct fixture *fx, const char *path)
{
	struct web_reply w;

	assert_int_equal(web_static_answer(fx->ws, path, NULL, NULL, &w), 0);
	free(w.body);
	return w.status;
}

static void
test_static_routes(void **state)
{
	(void)state;
	assert_true(web_static_route("GET", "/"));
	assert_true(web_static_route("HEAD", "/static/app.js"));
	assert_false(web_static_route("POST", "/"));
	assert_false(web_static_route("GET", "/api/v1/devices"));
	assert_false(web_static_route("GET", "/staticx"));
	assert_true(web_static_route("GET", "/setup"));
	assert_true(web_static_route("HEAD", "/setup"));
	assert_false(web_static_route("POST", "/setup"));
	assert_false(web_static_route("GET", "/setup/"));
	assert_false(web_static_route("GET", "/setupx"));
}

static void
test_static_serves_files(void **state)
{
	struct fixture *fx = *state;
	struct web_reply w;

	assert_int_equal(web_static_answer(fx->ws, "/", NULL, NULL, &w), 0);
	assert_int_equal(w.status, 200);
	assert_string_equal(w.content_type, "text/html; charset=utf-8");
	assert_int_equal(w.len, strlen("<!doctype html><title>x</title>"));
	assert_memory_equal(w.body, "<!doctype html>", 15);
	assert_true(w.etag[0] == '"');
	free(w.body);
	/* The first-start link PUBLIC_URL/setup#CODE opens the same shell. */
	assert_int_equal(web_static_answer(fx->ws, "/setup", NULL, NULL, &w), 0);
	assert_int_equal(w.status, 200);
	assert_string_equal(w.content_type, "text/html; charset=utf-8");
	assert_memory_equal(w.body, "<!doctype html>", 15);
	free(w.body);
	assert_int_equal(status_of(fx, "/setup.html"), 404);
	assert_int_equal(status_of(fx, "/static/setup"), 404);
	assert_int_equal(web_static_answer(fx->ws, "/static/app.js", NULL, NULL, &w), 0);
	assert_int_equal(w.status, 200);
	assert_string_equal(w.content_type, "text/javascript; charset=utf-8");
	assert_int_equal(w.gzip, 0);
	assert_int_equal(w.vary, 1);
	free(w.body);
	assert_int_equal(web_static_answer(fx->ws, "/static/logo.png", "gzip", NULL, &w), 0);
	assert_int_equal(w.status, 200);
	assert_string_equal(w.content_type, "image/png");
	assert_int_equal(w.gzip, 0); /* already compressed formats are sent as they are */
	free(w.body);
}

static void
test_static_never_leaves_root(void **state)
{
	struct fixture *fx = *state;
	static const char *const bad[] = {
		"/static/../secret.js",
		"/static/%2e%2e/secret.js",
		"/static/%2E%2E/secret.js",
		"/static/..%2fsecret.js",
		"/static//etc/passwd",
		"/static/./app.js",
		"/static/.hidden.js",
		"/static/link.js",
		"/static/linkdir/x.js",
		"/static/dir.js",
		"/static/app.exe",
		"/static/huge.js",
		"/static/",
		"/static/nope.js",
		"/static/app.js/",
		"/static/app.js%00.png",
		"/static/../../secret.js",
		"/static/a\\..\\secret.js",
		"/static/app.js?x",
		"/index.html/../x.js",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (status_of(fx, bad[i]) != 404)
			fail_msg("%s was not refused", bad[i]);
	}
}

static void
test_static_etag_revalidation(void **state)
{
	struct fixture *fx = *state;
	struct web_reply w, w2;
	char weak[80];

	assert_int_equal(web_static_answer(fx->ws, "/static/app.js", NULL, NULL, &w), 0);
	assert_int_equal(web_static_answer(fx->ws, "/static/app.js", NULL, w.etag, &w2), 0);
	assert_int_equal(w2.status, 304);
	assert_null(w2.body);
	snprintf(weak, sizeof(weak), "\"other\", W/%s", w.etag);
	assert_int_equal(web_static_answer(fx->ws, "/static/app.js", NULL, weak, &w2), 0);
	assert_int_equal(w2.status, 304);
	assert_int_equal(web_static_answer(fx->ws, "/static/app.js", NULL, "\"stale\"", &w2), 0);
	assert_int_equal(w2.status, 200);
	free(w2.body);
	/* The gzip variant has a tag of its own: an identity tag does not revalidate it. */
	assert_int_equal(web_static_answer(fx->ws, "/static/app.js", "gzip", w.etag, &w2), 0);
	assert_int_equal(w2.status, 200);
	assert_string_not_equal(w2.etag, w.etag);
	free(w2.body);
	free(w.body);
}

static void
check_gzip(struct fixture *fx, const char *ae, int want)
{
	struct web_reply w;

	assert_int_equal(web_static_answer(fx->ws, "/static/app.js", ae, NULL, &w), 0);
	assert_int_equal(w.status, 200);
	if (w.gzip != want)
		fail_msg("Accept-Encoding '%s': gzip %d, want %d", ae ? ae : "(none)", w.gzip,
			 want);
	if (want) {
		char out[sizeof(fx->big)];
		z_stream z = {0};

		assert_true(w.len < strlen(fx->big));
		assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
		z.next_in = (unsigned char *)w.body;
		z.avail_in = (uInt)w.len;
		z.next_out = (unsigned char *)out;
		z.avail_out = sizeof(out);
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		assert_int_equal(z.total_out, strlen(fx->big));
		assert_memory_equal(out, fx->big, z.total_out);
		inflateEnd(&z);
	} else {
		assert_int_equal(w.len, strlen(fx->big));
	}
	free(w.body);
}

static void
test_static_gzip_when_allowed(void **state)
{
	struct fixture *fx = *state;

	check_gzip(fx, "gzip", 1);
	check_gzip(fx, "deflate, gzip;q=0.5, br", 1);
	check_gzip(fx, "GZIP", 1);
	check_gzip(fx, NULL, 0);
	check_gzip(fx, "", 0);
	check_gzip(fx, "br, deflate", 0);
	check_gzip(fx, "gzip;q=0", 0);
	check_gzip(fx, "gzip; q=0.000, br", 0);
	check_gzip(fx, "x-gzip", 0);
}

static void
test_static_without_root(void **state)
{
	struct web_static *ws;
	struct web_reply w;

	(void)state;
	assert_int_equal(web_static_open("/nonexistent/cleave-web", &ws), 0);
	assert_int_equal(web_static_answer(ws, "/", "gzip", NULL, &w), 0);
	assert_int_equal(w.status, 404);
	assert_non_null(strstr(w.body, "not installed"));
	free(w.body);
	web_static_free(ws);
	web_static_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_routes),
		cmocka_unit_test_setup_teardown(test_static_serves_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_static_never_leaves_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_static_etag_revalidation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_static_gzip_when_allowed, setup, teardown),
		cmocka_unit_test(test_static_without_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
