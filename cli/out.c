/*
 * Output for people: aligned tables with wide cells cut, records as "key: value" lines. Every
 * value from the server goes through put_safe, so an owner or reason holding escape sequences
 * prints as text and cannot move the cursor or retitle the terminal. --json output is the
 * server's body untouched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define CELL_MAX   512
#define RECORD_MAX 120 /* a record's value is cut here; --json has it whole */
#define ROWS_MAX   10000

void
put_safe(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	for (; *p; p++) {
		/* C0 controls, DEL, and the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F). */
		if (*p == '\n')
			fputs("\\n", f); /* a PEM's lines, in one record line */
		else if (*p < 0x20 || *p == 0x7f)
			fputc('?', f);
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			fputc('?', f), p++;
		else
			fputc(*p, f);
	}
}

/* Display width: code points (every cell Cleave prints is text of one column a character). */
static size_t
width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Cuts s to at most max columns, the last one "…". */
static void
cut(char *s, size_t cap, int max)
{
	size_t cols = 0, i = 0;

	if (max <= 1 || width(s) <= (size_t)max)
		return;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		if (cols == (size_t)max - 1)
			break;
		cols++;
	}
	if (i + 4 <= cap)
		memcpy(s + i, "\xe2\x80\xa6", 4);
}

static const json_t *
at_path(const json_t *obj, const char *path)
{
	char part[64];

	while (obj != NULL && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		obj = json_object_get(obj, part);
		path += n + (path[n] == '.');
	}
	return obj;
}

static void
scalar_text(const json_t *v, char *out, size_t cap)
{
	char *dump;

	if (v == NULL || json_is_null(v))
		snprintf(out, cap, "-");
	else if (json_is_string(v))
		snprintf(out, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, cap, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, cap, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
	else if ((dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		snprintf(out, cap, "%s", dump);
		free(dump);
	} else
		snprintf(out, cap, "?");
}

void
cell_text(const json_t *obj, const char *path, char *out, size_t cap)
{
	const json_t *v = at_path(obj, path);
	size_t i, n = 0;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		scalar_text(v, out, cap);
		return;
	}
	out[0] = '\0';
	json_array_foreach(v, i, e)
	{
		char one[CELL_MAX];

		scalar_text(e, one, sizeof(one));
		n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? "," : "", one);
		if (n >= cap)
			break;
	}
}

void
print_table(const json_t *items, const struct col *cols, size_t ncols)
{
	size_t rows = MIN(json_array_size(items), (size_t)ROWS_MAX), w[16] = {0};
	char cell[CELL_MAX];

	ncols = MIN(ncols, ARRAY_SIZE(w));
	for (size_t k = 0; k < ncols; k++)
		w[k] = width(cols[k].title);
	for (size_t i = 0; i < rows; i++)
		for (size_t k = 0; k < ncols; k++) {
			cell_text(json_array_get(items, i), cols[k].path, cell, sizeof(cell));
			cut(cell, sizeof(cell), cols[k].max);
			w[k] = MAX(w[k], width(cell));
		}
	for (size_t k = 0; k < ncols; k++)
		printf("%s%-*s", k ? "  " : "", k + 1 < ncols ? (int)w[k] : 0, cols[k].title);
	putchar('\n');
	for (size_t i = 0; i < rows; i++) {
		for (size_t k = 0; k < ncols; k++) {
			cell_text(json_array_get(items, i), cols[k].path, cell, sizeof(cell));
			cut(cell, sizeof(cell), cols[k].max);
			printf("%s", k ? "  " : "");
			put_safe(stdout, cell);
			for (size_t pad = width(cell); k + 1 < ncols && pad < w[k]; pad++)
				putchar(' ');
		}
		putchar('\n');
	}
}

void
print_row(const json_t *obj, const struct col *cols, size_t ncols)
{
	char cell[CELL_MAX];

	for (size_t k = 0; k < ncols; k++) {
		cell_text(obj, cols[k].path, cell, sizeof(cell));
		cut(cell, sizeof(cell), cols[k].max);
		printf("%s", k ? "  " : "");
		put_safe(stdout, cell);
		for (size_t pad = width(cell); k + 1 < ncols && pad < (size_t)cols[k].max; pad++)
			putchar(' ');
	}
	putchar('\n');
}

static void
record_walk(const json_t *v, const char *prefix, int depth)
{
	char key[256], cell[CELL_MAX];
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_object(v) && depth < 6) {
		json_object_foreach((json_t *)v, k, m)
		{
			snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k);
			record_walk(m, key, depth + 1);
		}
		return;
	}
	if (json_is_array(v) && json_array_size(v) > 0 && json_is_object(json_array_get(v, 0)) &&
	    depth < 6) {
		json_array_foreach(v, i, m)
		{
			snprintf(key, sizeof(key), "%s[%zu]", prefix, i);
			record_walk(m, key, depth + 1);
		}
		return;
	}
	cell_text(v, "", cell, sizeof(cell));
	cut(cell, sizeof(cell), RECORD_MAX);
	put_safe(stdout, prefix);
	fputs(": ", stdout);
	put_safe(stdout, cell);
	putchar('\n');
}

void
print_record(const json_t *obj)
{
	record_walk(obj, "", 0);
}

void
print_raw(const struct reply *r)
{
	if (r->body == NULL)
		return;
	fwrite(r->body, 1, r->len, stdout);
	if (r->len == 0 || r->body[r->len - 1] != '\n')
		putchar('\n');
}

int
print_list(struct ctx *c, const char *path, const struct col *cols, size_t ncols)
{
	return print_list_by(c, path, cols, ncols, "next_cursor", "cursor");
}

int
print_list_by(struct ctx *c, const char *path, const struct col *cols, size_t ncols,
	      const char *member, const char *option)
{
	struct reply r;
	json_t *j;
	const char *next;
	int rc = api_json(c, "GET", path, NULL, NULL, &j, &r);

	if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		print_table(json_object_get(j, "items"), cols, ncols);
		if ((next = json_string_value(json_object_get(j, member))) != NULL) {
			fprintf(stderr, "more: --%s ", option);
			put_safe(stderr, next);
			fputc('\n', stderr);
		}
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
print_get(struct ctx *c, const char *path)
{
	return print_call(c, "GET", path, NULL);
}

int
print_call(struct ctx *c, const char *method, const char *path, const char *body)
{
	struct reply r;
	json_t *j;
	int rc = api_json(c, method, path, body, NULL, &j, &r);

	if (rc == EX_OK && c->json)
		print_raw(&r);
	else if (rc == EX_OK)
		print_record(j);
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
read_secret(const char *prompt, char *out, size_t cap)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char *got;

	if (tty) {
		fputs(prompt, stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	got = fgets(out, (int)cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (got == NULL)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

/* A request whose answer is a record (or nothing): --json prints it, else done says what. */
int
act(struct ctx *c, const char *method, const char *path, const char *body, const char *const *hdrs,
    const char *done)
{
	struct reply r;
	int rc = api(c, method, path, body, hdrs, &r);

	if (rc == EX_OK && c->json && r.len > 0)
		print_raw(&r);
	else if (rc == EX_OK && !c->json) {
		put_safe(stdout, done);
		putchar('\n');
	}
	reply_free(&r);
	return rc;
}

int
get_id(struct ctx *c, const char *what, const char *tail)
{
	char path[2048];

	if (id_path(path, sizeof(path), what, c->a.pos[0], tail) != EX_OK)
		return EX_USAGE;
	return print_get(c, path);
}

int
act_id(struct ctx *c, const char *method, const char *what, const char *tail, const char *done)
{
	char path[2048], msg[512];

	if (id_path(path, sizeof(path), what, c->a.pos[0], tail) != EX_OK)
		return EX_USAGE;
	snprintf(msg, sizeof(msg), "%s %s", done, c->a.pos[0]);
	return act(c, method, path, strcmp(method, "POST") == 0 ? "{}" : NULL, NULL, msg);
}

int
list_paged(struct ctx *c, const char *base, const struct col *cols, size_t ncols)
{
	char path[2048];

	str_copy(path, sizeof(path), base);
	if (paging_query(c, path, sizeof(path)) != EX_OK)
		return EX_USAGE;
	return print_list(c, path, cols, ncols);
}
