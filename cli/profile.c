/*
 * Profiles: $XDG_CONFIG_HOME/cleave/NAME.profile (default ~/.config/cleave; directory 0700,
 * files 0600), "key = value" lines: server, ca_file, pin, token_file. The token itself is
 * never in the profile nor on the command line: it is in a file (NAME.token, written by
 * login, or a file of the caller's) or the CLEAVE_TOKEN environment variable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

int
profile_dir(char *out, size_t cap)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int w;

	if (x != NULL && x[0] == '/')
		w = snprintf(out, cap, "%s/cleave", x);
	else if (home != NULL && home[0] == '/')
		w = snprintf(out, cap, "%s/.config/cleave", home);
	else
		return fail(-1, "neither XDG_CONFIG_HOME nor HOME is set to an absolute path");
	return w > 0 && (size_t)w < cap ? 0 : fail(-1, "the configuration path is too long");
}

static int
name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n < 64 && name[0] != '.' &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
		       n;
}

static int
profile_path(const char *name, const char *ext, char *out, size_t cap)
{
	char dir[PATH_MAX];
	int w;

	if (!name_ok(name))
		return fail(-1, "profile names are 1-63 letters, digits, '.', '_' or '-'");
	if (profile_dir(dir, sizeof(dir)) != 0)
		return -1;
	w = snprintf(out, cap, "%s/%s.%s", dir, name, ext);
	return w > 0 && (size_t)w < cap ? 0 : fail(-1, "the profile path is too long");
}

static void
trim(char *s)
{
	size_t n = strlen(s);
	char *p = s + strspn(s, " \t");

	while (n > 0 &&
	       (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	memmove(s, p, strlen(p) + 1);
}

int
profile_load(const char *name, struct profile *p)
{
	char path[PATH_MAX], line[PATH_MAX + 64];
	FILE *f;
	int n = 0;

	memset(p, 0, sizeof(*p));
	if (profile_path(name, "profile", path, sizeof(path)) != 0)
		return -1;
	if ((f = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 1 : fail(-1, "cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL && n++ < 100) {
		char *eq = strchr(line, '=');

		if (line[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		trim(line);
		trim(eq + 1);
		if (strcmp(line, "server") == 0)
			str_copy(p->server, sizeof(p->server), eq + 1);
		else if (strcmp(line, "ca_file") == 0)
			str_copy(p->ca_file, sizeof(p->ca_file), eq + 1);
		else if (strcmp(line, "pin") == 0)
			str_copy(p->pin, sizeof(p->pin), eq + 1);
		else if (strcmp(line, "token_file") == 0)
			str_copy(p->token_file, sizeof(p->token_file), eq + 1);
	}
	fclose(f);
	return 0;
}

int
token_read_file(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	struct stat st;

	if (f == NULL)
		return fail(-1, "cannot read the token file %s: %s", path, strerror(errno));
	/* As ssh does for keys: a secret others can read is worth a word, not a refusal. */
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
		fprintf(stderr,
			"cleavectl: warning: %s can be read by other users (chmod 600 it)\n", path);
	if (fgets(out, (int)cap, f) == NULL)
		out[0] = '\0';
	fclose(f);
	trim(out);
	if (out[0] == '\0')
		return fail(-1, "the token file %s is empty", path);
	return 0;
}

/* Writes text to path with mode 0600 through a temporary file; 0 or -1 (message printed). */
static int
write_private(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	size_t n = strlen(text);
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fail(-1, "cannot write %s: %s", tmp, strerror(errno));
	ok = fchmod(fd, 0600) == 0 && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
	if (close(fd) != 0 || !ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return fail(-1, "cannot write %s: %s", path, strerror(errno));
	}
	return 0;
}

/* Makes the profile directory (and ~/.config) if needed; it is always left 0700. */
static int
make_dir(void)
{
	char dir[PATH_MAX];
	char *slash;

	if (profile_dir(dir, sizeof(dir)) != 0)
		return -1;
	slash = strrchr(dir, '/');
	*slash = '\0';
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return fail(-1, "cannot create %s: %s", dir, strerror(errno));
	*slash = '/';
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return fail(-1, "cannot create %s: %s", dir, strerror(errno));
	if (chmod(dir, 0700) != 0)
		return fail(-1, "cannot make %s private: %s", dir, strerror(errno));
	return 0;
}

/* Where login's token comes from: --token-file (kept there), CLEAVE_TOKEN, or the terminal. */
static int
login_token(struct ctx *c, char *token, size_t cap, char *file, size_t fcap)
{
	const char *tf = opt(c, "token-file"), *env = getenv("CLEAVE_TOKEN");

	file[0] = '\0';
	if (tf != NULL) {
		if (realpath(tf, file) == NULL || strlen(file) >= fcap)
			return fail(-1, "cannot read the token file %s: %s", tf, strerror(errno));
		return token_read_file(file, token, cap);
	}
	if (env != NULL && *env != '\0')
		return str_copy(token, cap, env) == 0 ? 0 : fail(-1, "CLEAVE_TOKEN is too long");
	if (read_secret("API token: ", token, cap) != 0 || token[0] == '\0')
		return fail(-1, "no token was given");
	return 0;
}

static int
login_save(struct ctx *c, struct profile *p, const char *token)
{
	char path[PATH_MAX], text[4 * PATH_MAX];

	if (make_dir() != 0)
		return EX_USAGE;
	if (p->token_file[0] == '\0') {
		if (profile_path(c->profile, "token", p->token_file, sizeof(p->token_file)) != 0)
			return EX_USAGE;
		snprintf(text, sizeof(text), "%s\n", token);
		if (write_private(p->token_file, text) != 0)
			return EX_USAGE;
		secure_zero(text, sizeof(text));
	}
	snprintf(text, sizeof(text),
		 "# cleavectl profile (cleavectl login); the token is in token_file\n"
		 "server = %s\nca_file = %s\npin = %s\ntoken_file = %s\n",
		 p->server, p->ca_file, p->pin, p->token_file);
	if (profile_path(c->profile, "profile", path, sizeof(path)) != 0 ||
	    write_private(path, text) != 0)
		return EX_USAGE;
	return EX_OK;
}

int
cmd_login(struct ctx *c)
{
	struct profile p = {0};
	struct reply r;
	char token[512], err[1024];
	const char *server = opt(c, "server"), *ca = opt(c, "ca"), *pin = opt(c, "pin");
	json_t *j;
	int rc;

	if (server == NULL)
		return fail(EX_USAGE, "login needs --server URL");
	if (!name_ok(c->profile))
		return fail(EX_USAGE, "profile names are 1-63 letters, digits, '.', '_' or '-'");
	str_copy(p.server, sizeof(p.server), server);
	if (ca != NULL && realpath(ca, p.ca_file) == NULL)
		return fail(EX_USAGE, "cannot read the CA file %s: %s", ca, strerror(errno));
	str_copy(p.pin, sizeof(p.pin), pin ? pin : "");
	if (login_token(c, token, sizeof(token), p.token_file, sizeof(p.token_file)) != 0)
		return EX_AUTH;
	rc = http_probe(p.server, p.ca_file, p.pin, token, &r, err, sizeof(err));
	if (rc != EX_OK) {
		if (err[0] && r.status == 0)
			fail(rc, "%s", err);
		secure_zero(token, sizeof(token));
		reply_free(&r);
		return fail(rc, "login failed; nothing was saved");
	}
	rc = login_save(c, &p, token);
	secure_zero(token, sizeof(token));
	j = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	if (rc == EX_OK && c->json)
		print_raw(&r);
	else if (rc == EX_OK) {
		printf("Logged in to %s as ", p.server);
		put_safe(stdout, json_string_value(json_object_get(j, "role")));
		printf(" (token ");
		put_safe(stdout, json_string_value(json_object_get(j, "token_id")));
		printf("); profile \"%s\" saved\n", c->profile);
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_profiles(struct ctx *c)
{
	char dir[PATH_MAX], name[256];
	struct profile p;
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (profile_dir(dir, sizeof(dir)) != 0)
		return EX_USAGE;
	if ((d = opendir(dir)) == NULL) {
		printf("no profiles in %s: run `cleavectl login`\n", dir);
		return EX_OK;
	}
	while ((e = readdir(d)) != NULL && n < 1000) {
		char *dot;

		if (str_copy(name, sizeof(name), e->d_name) != 0 ||
		    (dot = strstr(name, ".profile")) == NULL || dot[8] != '\0')
			continue;
		*dot = '\0';
		if (!name_ok(name) || profile_load(name, &p) != 0)
			continue;
		printf("%s%-16s %s\n", strcmp(name, c->profile) == 0 ? "* " : "  ", name, p.server);
		n++;
	}
	closedir(d);
	if (n == 0)
		printf("no profiles in %s: run `cleavectl login`\n", dir);
	return EX_OK;
}
