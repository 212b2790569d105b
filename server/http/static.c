/*
 * Static files of the web console. A request path is checked as text first (only letters,
 * digits, '-', '_', '.' and '/', no empty or dot-leading segment, nothing percent-encoded),
 * then walked one segment at a time with openat(O_NOFOLLOW) from a directory descriptor of the
 * web root, so neither "..", an encoded form of it, nor a symlink can leave the root. Only
 * regular files of a known type and at most WEB_FILE_MAX bytes are served. This module does not
 * cache: the files are small and read on each request, so an edit shows on the next reload.
 */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "util.h"

#define WEB_PATH_MAX 256
#define WEB_DEPTH    8

struct web_static {
	int dirfd; /* -1: no web root */
	char root[4096];
};

struct web_type {
	const char *ext, *type;
	int compress;
};

static const struct web_type types[] = {
	{".html", "text/html; charset=utf-8", 1},
	{".css", "text/css; charset=utf-8", 1},
	{".js", "text/javascript; charset=utf-8", 1},
	{".mjs", "text/javascript; charset=utf-8", 1},
	{".json", "application/json", 1},
	{".svg", "image/svg+xml", 1},
	{".png", "image/png", 0},
	{".ico", "image/x-icon", 0},
	{".txt", "text/plain; charset=utf-8", 1},
};

int
web_static_open(const char *root, struct web_static **out)
{
	struct web_static *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return -ENOMEM;
	ws->dirfd = -1;
	if (root != NULL && root[0] != '\0') {
		str_copy(ws->root, sizeof(ws->root), root);
		ws->dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ws->dirfd < 0)
			log_warn("web console: cannot open the web root %s: %s; / answers 404",
				 root, strerror(errno));
		else
			log_info("web console: serving %s", root);
	}
	*out = ws;
	return 0;
}

void
web_static_free(struct web_static *ws)
{
	if (ws == NULL)
		return;
	if (ws->dirfd >= 0)
		close(ws->dirfd);
	free(ws);
}

int
web_static_route(const char *method, const char *path)
{
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return 0;
	return strcmp(path, "/") == 0 || strcmp(path, "/setup") == 0 ||
	       strncmp(path, "/static/", 8) == 0;
}

/* The file's path below the root for a request path, or -ENOENT when it is not servable. */
static int
map_path(const char *path, char *rel, size_t cap)
{
	size_t n = strlen(path);

	/* /setup is the console too: the first-start link PUBLIC_URL/setup#CODE (the code in
	 * the fragment, so it never reaches a log) opens the shell, which shows the setup screen. */
	if (strcmp(path, "/") == 0 || strcmp(path, "/setup") == 0)
		return str_copy(rel, cap, "index.html") == 0 ? 0 : -ENOENT;
	if (n >= WEB_PATH_MAX || n <= 8 || path[n - 1] == '/')
		return -ENOENT;
	for (const char *p = path; *p; p++) {
		int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			 (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
			 *p == '/';

		if (!ok)
			return -ENOENT;
		/* Every segment starts with something other than '.' or '/': no "..", no
		 * hidden files, no empty segment (so no "//etc/passwd" either). */
		if (*p == '/' && (p[1] == '.' || p[1] == '/'))
			return -ENOENT;
	}
	return str_copy(rel, cap, path + 1) == 0 ? 0 : -ENOENT;
}

static const struct web_type *
type_of(const char *rel)
{
	const char *dot = strrchr(rel, '.');

	for (size_t i = 0; dot != NULL && i < ARRAY_SIZE(types); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return &types[i];
	return NULL;
}

/* Opens rel below dirfd segment by segment, never following a symlink. fd or -errno. */
static int
open_beneath(int dirfd, char *rel)
{
	int fd = dirfd, depth = 0;
	char *seg = rel;

	for (;;) {
		char *slash = strchr(seg, '/');
		int next;

		if (slash != NULL)
			*slash = '\0';
		next = openat(fd, seg,
			      O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
				      (slash != NULL ? O_DIRECTORY : 0));
		if (slash != NULL)
			*slash = '/';
		if (fd != dirfd)
			close(fd);
		if (next < 0)
			return -errno;
		if (slash == NULL)
			return next;
		if (++depth >= WEB_DEPTH) {
			close(next);
			return -ENOENT;
		}
		fd = next;
		seg = slash + 1;
	}
}

static int
read_file(int fd, const struct stat *st, char **body, size_t *len)
{
	size_t n = (size_t)st->st_size, got = 0;
	char *b = malloc(n + 1);

	if (b == NULL)
		return -ENOMEM;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shrank meanwhile: serve what is there */
		got += (size_t)r;
	}
	*body = b;
	*len = got;
	return 0;
}

/* True when the client accepts gzip: a "gzip" coding in the list, not with q=0. */
static int
accepts_gzip(const char *ae)
{
	const char *p = ae;

	while (p != NULL && *p) {
		size_t tok;

		p += strspn(p, " \t,");
		tok = strcspn(p, " \t,;");
		if (tok == 4 && strncasecmp(p, "gzip", 4) == 0) {
			const char *q = p + tok;

			q += strspn(q, " \t");
			if (*q != ';')
				return 1;
			q += 1 + strspn(q + 1, " \t");
			return !(strncasecmp(q, "q=0", 3) == 0 &&
				 strspn(q + 3, ".0") == strcspn(q + 3, ", \t"));
		}
		p = strchr(p, ',');
	}
	return 0;
}

/* True when If-None-Match lists etag (weak comparison, RFC 9110 section 13.1.2) or is "*". */
static int
etag_matches(const char *inm, const char *etag)
{
	size_t el = strlen(etag);

	for (const char *p = inm; p != NULL && *p;) {
		size_t n;

		p += strspn(p, " \t,");
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		n = strcspn(p, " \t,");
		if ((n == 1 && *p == '*') || (n == el && strncmp(p, etag, n) == 0))
			return 1;
		p += n;
	}
	return 0;
}

/* Replaces *body with its gzip form; on any zlib failure the body stays as it was. */
static int
gzip_body(char **body, size_t *len)
{
	z_stream z = {0};
	uLong cap = compressBound((uLong)*len) + 32;
	unsigned char *out = malloc(cap);
	int r;

	if (out == NULL)
		return -ENOMEM;
	/* windowBits 15 + 16: a gzip header and trailer around the deflate stream. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return -ENOMEM;
	}
	z.next_in = (unsigned char *)*body;
	z.avail_in = (uInt)*len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	r = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (r != Z_STREAM_END) {
		free(out);
		return -EIO;
	}
	free(*body);
	*body = (char *)out;
	*len = z.total_out;
	return 0;
}

static int
not_found(const struct web_static *ws, struct web_reply *out)
{
	const char *msg = ws->dirfd < 0 ? "The Cleave console is not installed here: cleave-server "
					  "has no web root (see web_root in server/README.md). "
					  "The REST API at /api/v1 works."
					: "There is no such page in the Cleave console.";
	char page[512];
	int n = snprintf(page, sizeof(page),
			 "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			 "<title>Not found</title></head><body><h1>Not found</h1><p>%s</p>"
			 "<p><a href=\"/\">Cleave console</a></p></body></html>\n",
			 msg);

	out->status = 404;
	out->content_type = "text/html; charset=utf-8";
	out->body = strndup(page, (size_t)MAX(n, 0));
	out->len = out->body ? strlen(out->body) : 0;
	return out->body ? 0 : -ENOMEM;
}

int
web_static_answer(const struct web_static *ws, const char *path, const char *accept_encoding,
		  const char *if_none_match, struct web_reply *out)
{
	const struct web_type *t;
	char rel[WEB_PATH_MAX];
	struct stat st;
	int fd, r;

	memset(out, 0, sizeof(*out));
	if (ws->dirfd < 0 || map_path(path, rel, sizeof(rel)) != 0 || (t = type_of(rel)) == NULL)
		return not_found(ws, out);
	fd = open_beneath(ws->dirfd, rel);
	if (fd < 0)
		return not_found(ws, out);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)WEB_FILE_MAX) {
		close(fd);
		return not_found(ws, out);
	}
	out->content_type = t->type;
	out->vary = t->compress;
	out->gzip = t->compress && accepts_gzip(accept_encoding);
	/* Size, modification time and variant: a changed file or encoding is a new tag. */
	snprintf(out->etag, sizeof(out->etag), "\"%llx-%llx%s\"", (unsigned long long)st.st_size,
		 (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
			 (unsigned long long)st.st_mtim.tv_nsec,
		 out->gzip ? "-gz" : "");
	if (if_none_match != NULL && etag_matches(if_none_match, out->etag)) {
		close(fd);
		out->status = 304;
		return 0;
	}
	r = read_file(fd, &st, &out->body, &out->len);
	close(fd);
	if (r != 0)
		return r;
	if (out->gzip && gzip_body(&out->body, &out->len) != 0) {
		out->gzip = 0;
		out->etag[strlen(out->etag) - 4] = '"';
		out->etag[strlen(out->etag) - 3] = '\0';
	}
	out->status = 200;
	return 0;
}
