/*
 * The README's "Using the API with curl" block must run as pasted. This test takes the block
 * out of README.md as it is, points its first line (the exports) at a server started on a
 * random port and at its own directories, runs it with bash (-e, pipefail) and checks what it
 * printed: the simulated device compliant, and the wipe going queued, delivered, acknowledged,
 * completed with a verified receipt, then the audit chain valid. And every relative link in the
 * project's Markdown documents (README.md, docs/, the folder READMEs) names a file that exists,
 * and no file entry ("- `name`: ...") is there twice (what merging two versions of a line
 * leaves).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fileio.h"
#include "testlib.h"
#include "util.h"

#define BLOCK_MAX (64 * 1024)

/* Appends src to dst (cap bytes) with every "build/bin/" replaced by bin and a slash. */
static int
append_with_bin(char *dst, size_t cap, const char *src, size_t n, const char *bin)
{
	size_t k = strlen(dst);

	for (size_t i = 0; i < n;) {
		const char *add = src + i;
		size_t len = 1;

		if (n - i >= 10 && strncmp(src + i, "build/bin/", 10) == 0) {
			add = bin;
			len = strlen(bin);
			i += 9; /* the slash is copied as the next character */
		}
		if (k + len >= cap)
			return -1;
		memcpy(dst + k, add, len);
		k += len;
		i++;
		if (add == bin)
			dst[k++] = '/';
	}
	dst[k] = '\0';
	return 0;
}

/*
 * The README's walkthrough block, its first line (which must export CLEAVE) replaced by
 * first, into out. 0 or -1 (with a message).
 */
static int
walkthrough(const char *readme, const char *first, const char *bin, char *out, size_t cap)
{
	const char *sec = strstr(readme, "\n## Using the API with curl\n");
	const char *b = sec ? strstr(sec, "\n```sh\n") : NULL, *end, *line2;

	if (b == NULL || (end = strstr(b + 7, "\n```\n")) == NULL) {
		printf("    README.md has no ```sh block under \"Using the API with curl\"\n");
		return -1;
	}
	b += 7;
	if (strncmp(b, "export CLEAVE=", 14) != 0 || (line2 = strchr(b, '\n')) == NULL) {
		printf("    the walkthrough does not start with export CLEAVE=…\n");
		return -1;
	}
	snprintf(out, cap, "%s", first);
	return append_with_bin(out, cap, line2, (size_t)(end - line2) + 1, bin);
}

/* Finds each of want[] in text, in order; the first missing one, or NULL. */
static const char *
in_order(const char *text, const char *const *want)
{
	const char *at = text;

	for (; *want != NULL; want++) {
		const char *p = strstr(at, *want);

		if (p == NULL)
			return *want;
		at = p + strlen(*want);
	}
	return NULL;
}

static void
test_readme_walkthrough(void)
{
	static const char *const want[] = {
		"enrolled as dev_",
		"corporate half:  active",
		"applied policy:  standard v1",
		"\"compliance\": {\n    \"compliant\": true,\n    \"reasons\": []",
		"{\"status\":\"queued\",\"verified\":false}",
		"wipe (phone lost)",
		"{\"status\":\"delivered\",\"verified\":false}",
		"{\"status\":\"acknowledged\",\"verified\":false}",
		"{\"status\":\"completed\",\"verified\":true}",
		"\"reported\":\"wiped\"},\"compliance\":{\"compliant\":false,\"reasons\":[\"the "
		"corporate half was wiped\"]",
		"{\"action\":\"command.result\"",
		"{\"ok\":true",
		NULL,
	};
	const char *bin = getenv("CLEAVE_BIN");
	char readme[PATH_MAX], first[PATH_MAX * 3], script[PATH_MAX + 32], log[PATH_MAX + 32];
	char cmd[PATH_MAX * 3], *text, *block, *out = NULL;
	const char *missing;
	struct srv s;
	int rc;

	bin = bin && *bin ? bin : "build/bin";
	snprintf(readme, sizeof(readme), "%s/../../README.md", bin);
	text = file_read_all(readme, 1 << 20, NULL);
	CHECK(text != NULL, "cannot read %s", readme);
	CHECK(srv_init(&s, "readme") == 0 && srv_start(&s, NULL) == 0, "server did not start");
	snprintf(first, sizeof(first), "export CLEAVE=%s DATA=%s PHONE=%s/../phone\n", s.url, s.dir,
		 s.dir);
	block = calloc(1, BLOCK_MAX);
	rc = block ? walkthrough(text, first, bin, block, BLOCK_MAX) : -1;
	free(text);
	snprintf(script, sizeof(script), "%s/../walkthrough.sh", s.dir);
	snprintf(log, sizeof(log), "%s/../walkthrough.out", s.dir);
	if (rc == 0)
		rc = file_write_atomic(script, block, strlen(block), 0644);
	free(block);
	CHECK(rc == 0, "cannot extract the walkthrough into %s", script);
	snprintf(cmd, sizeof(cmd), "timeout 120 bash -e -o pipefail '%s' >'%s' 2>&1", script, log);
	rc = system(cmd);
	out = file_read_all(log, 1 << 20, NULL);
	if (rc != 0 || out == NULL || (missing = in_order(out, want)) != NULL) {
		printf("    walkthrough (%s) exited %d and printed:\n%s\n", script,
		       WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out ? out : "");
		free(out);
		CHECK(0, "the README walkthrough did not run as documented");
	}
	free(out);
	srv_cleanup(&s);
}

/* Broken relative links ("](path)" or "](path#anchor)") in the Markdown file at md; -1 unread. */
static int
broken_links(const char *md)
{
	char *text = file_read_all(md, 1 << 20, NULL), dir[PATH_MAX], target[PATH_MAX * 2];
	const char *slash = strrchr(md, '/');
	int bad = 0;

	if (text == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - md) : 1, slash ? md : ".");
	for (const char *p = strstr(text, "]("); p != NULL; p = strstr(p + 2, "](")) {
		size_t n = strcspn(p + 2, ")# \n");
		struct stat st;

		/* anchors within the page, and absolute URLs (scheme:...), are not files */
		if (n == 0 || memchr(p + 2, ':', n) != NULL)
			continue;
		snprintf(target, sizeof(target), "%s/%.*s", dir, (int)n, p + 2);
		if (stat(target, &st) != 0) {
			printf("    %s links to %.*s, which does not exist\n", md, (int)n, p + 2);
			bad++;
		}
	}
	free(text);
	return bad;
}

/*
 * Entries ("- `name`: ...") of the Markdown file at md that begin like an earlier one (their
 * first 60 bytes): the trace of a merge that kept both sides' version of a line.
 */
static int
duplicate_entries(const char *md)
{
	enum { KEY = 60, MAX_ENTRIES = 1000 };
	char *text = file_read_all(md, 1 << 20, NULL);
	const char *seen[MAX_ENTRIES];
	int n = 0, dups = 0;

	if (text == NULL)
		return 0;
	for (const char *l = text; l != NULL && *l != '\0' && n < MAX_ENTRIES;) {
		const char *nl = strchr(l, '\n');

		if (strncmp(l, "- `", 3) == 0 && (nl == NULL || nl - l >= KEY)) {
			for (int i = 0; i < n; i++)
				if (strncmp(seen[i], l, KEY) == 0) {
					printf("    %s lists twice: %.*s...\n", md, KEY, l);
					dups++;
					break;
				}
			seen[n++] = l;
		}
		l = nl != NULL ? nl + 1 : NULL;
	}
	free(text);
	return dups;
}

static void
test_readme_links(void)
{
	const char *bin = getenv("CLEAVE_BIN");
	char up[PATH_MAX + 8], root[PATH_MAX], cmd[PATH_MAX + 200], md[PATH_MAX * 2];
	int files = 0, bad = 0, dups = 0;
	FILE *f;

	bin = bin && *bin ? bin : "build/bin";
	snprintf(up, sizeof(up), "%s/../..", bin);
	CHECK(realpath(up, root) != NULL, "cannot resolve %s", up);
	/* the source tree's documents: not build output, node_modules or git's own files */
	snprintf(cmd, sizeof(cmd),
		 "find '%s' -name '*.md' -not -path '%s/build*' -not -path '*/node_modules/*' "
		 "-not -path '*/.git/*' 2>/dev/null",
		 root, root);
	f = popen(cmd, "r");
	CHECK(f != NULL, "cannot list the Markdown files");
	for (int i = 0; i < 500 && fgets(md, sizeof(md), f) != NULL; i++) {
		int r;

		md[strcspn(md, "\n")] = '\0';
		r = broken_links(md);
		files += r >= 0;
		bad += r > 0 ? r : 0;
		dups += duplicate_entries(md);
	}
	pclose(f);
	CHECK(files >= 10, "found only %d Markdown files next to %s", files, bin);
	CHECK(bad == 0, "%d broken link(s) in the project's documents", bad);
	CHECK(dups == 0, "%d entr%s listed twice in the project's documents", dups,
	      dups == 1 ? "y" : "ies");
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"readme_walkthrough", test_readme_walkthrough},
		{"readme_links", test_readme_links},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
