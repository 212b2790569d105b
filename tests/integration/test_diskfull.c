/*
 * The data directory's disk fills up under a running cleave-server: writes must answer 503
 * problem+json saying the disk is full, everything answered 201/202 before must still be there,
 * /healthz and reads keep working, the audit chain stays valid, and once space is freed the same
 * writes work again without a restart. The data directory is a small tmpfs mounted for the
 * test (root only; otherwise the suite says "skipped" and exits 77).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

#define MAX_OPS 4000 /* bounds the filling loop: far more than a 4 MiB tmpfs takes */

/* Runs argv (a mount or umount) and returns its exit status, or -1. Output is discarded. */
static int
run(const char *const *argv)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
mount_tmpfs(const char *dir, const char *size)
{
	char opt[64];
	const char *argv[] = {"mount", "-t", "tmpfs", "-o", opt, "tmpfs", dir, NULL};

	snprintf(opt, sizeof(opt), "size=%s,mode=0700", size);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -1;
	return run(argv) == 0 ? 0 : -1;
}

static void
umount_dir(const char *dir)
{
	const char *argv[] = {"umount", dir, NULL};
	const char *lazy[] = {"umount", "-l", dir, NULL};

	if (run(argv) != 0 && run(lazy) != 0)
		printf("    cannot unmount %s\n", dir);
}

/* Writes zeros to path until the file system is full (bounded by 1 GiB); bytes written. */
static long
fill(const char *path)
{
	static const char zero[65536];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long total = 0;

	if (fd < 0)
		return -1;
	for (int i = 0; i < 16384; i++) {
		ssize_t w = write(fd, zero, sizeof(zero));

		if (w <= 0)
			break;
		total += w;
	}
	/* The last partial blocks: what the 64 KiB writes left over. */
	for (int i = 0; i < 65536 && write(fd, zero, 512) == 512; i++)
		total += 512;
	close(fd);
	return total;
}

/* One admin write that needs space: an enrollment token. Returns the HTTP status or -1. */
static long
new_etoken(struct client *admin, int i, char *id, size_t cap, struct resp *r)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"owner\":\"filler-%05d-%0200d@example.com\",\"uses\":%d}",
		 i, i, 1 + i % 90);
	if (client_req(admin, "POST", "/api/v1/enrollment-tokens", body, NULL, r) != 0)
		return -1;
	if (id != NULL && (r->status != 201 || resp_str(r, "id", id, cap) != 0))
		id[0] = '\0';
	return r->status;
}

struct full_env {
	struct srv s;
	struct client *admin, *devc;
	struct device_sim dev;
	char filler[PATH_MAX + 16];
	char (*ids)[40]; /* every enrollment token answered 201 */
	size_t n;
	char (*cmds)[40]; /* every command answered 202 */
	size_t ncmd;
};

/* The other kind of write: a lock command with a long reason, answered 202. */
static long
new_command(struct client *admin, const char *device, int i, char *id, size_t cap, struct resp *r)
{
	char path[128], body[600];

	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", device);
	snprintf(body, sizeof(body), "{\"type\":\"lock\",\"reason\":\"filler %05d %0400d\"}", i, i);
	if (client_req(admin, "POST", path, body, NULL, r) != 0)
		return -1;
	if (id != NULL && (r->status != 202 || resp_str(r, "id", id, cap) != 0))
		id[0] = '\0';
	return r->status;
}

/* How many of the commands ids[0..n) the server still answers (GET 200, same id). */
static size_t
count_commands(struct client *admin, char (*ids)[40], size_t n)
{
	size_t found = 0;

	for (size_t i = 0; i < n; i++) {
		char path[128];
		struct resp r;

		snprintf(path, sizeof(path), "/api/v1/commands/%s", ids[i]);
		if (client_req(admin, "GET", path, NULL, NULL, &r) == 0 && r.status == 200 &&
		    r.body != NULL && strstr(r.body, ids[i]) != NULL)
			found++;
		resp_free(&r);
	}
	return found;
}

/* A device check-in (wait 0); its HTTP status or -1. */
static long
checkin(struct full_env *e)
{
	struct resp r;
	long st;

	if (dev_req(&e->dev, e->devc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) != 0)
		return -1;
	st = r.status;
	if (st != 200 && st != 204)
		printf("    check-in: HTTP %ld %.300s\n", st, r.body ? r.body : "");
	resp_free(&r);
	return st;
}

/* Counts how many of ids[0..n) the enrollment-token list holds (every page, bounded). */
static size_t
count_listed(struct client *admin, char (*ids)[40], size_t n)
{
	char path[256], cursor[128] = "";
	unsigned char *seen = calloc(n ? n : 1, 1);
	size_t found = 0;

	for (int page = 0; page < 200 && seen != NULL; page++) {
		struct resp r;
		json_t *j, *it;
		size_t k;

		snprintf(path, sizeof(path), "/api/v1/enrollment-tokens?limit=200%s%s",
			 cursor[0] ? "&cursor=" : "", cursor);
		if (client_req(admin, "GET", path, NULL, NULL, &r) != 0 || r.status != 200) {
			resp_free(&r);
			break;
		}
		j = resp_json(&r);
		json_array_foreach(json_object_get(j, "items"), k, it)
		{
			const char *id = json_string_value(json_object_get(it, "id"));

			for (size_t i = 0; id != NULL && i < n; i++)
				if (!seen[i] && strcmp(ids[i], id) == 0) {
					seen[i] = 1;
					found++;
				}
		}
		it = json_object_get(j, "next_cursor");
		str_copy(cursor, sizeof(cursor), json_is_string(it) ? json_string_value(it) : "");
		json_decref(j);
		resp_free(&r);
		if (cursor[0] == '\0')
			break;
	}
	free(seen);
	return found;
}

static int
audit_ok(struct client *admin)
{
	struct resp r;
	json_t *j;
	int ok;

	if (client_req(admin, "GET", "/api/v1/audit/verify", NULL, NULL, &r) != 0)
		return 0;
	j = resp_json(&r);
	ok = r.status == 200 && json_is_true(json_object_get(j, "ok"));
	json_decref(j);
	if (!ok)
		printf("    audit verify: HTTP %ld %.300s\n", r.status, r.body ? r.body : "");
	resp_free(&r);
	return ok;
}

/* One write of either kind (i even: an enrollment token, odd: a command); its status. */
static long
write_one(struct full_env *e, int i, int keep)
{
	struct resp r;
	long st;

	if (i % 2 == 0) {
		st = new_etoken(e->admin, i, e->ids[e->n], sizeof(e->ids[0]), &r);
		e->n += keep && st == 201;
	} else {
		st = new_command(e->admin, e->dev.id, i, e->cmds[e->ncmd], sizeof(e->cmds[0]), &r);
		e->ncmd += keep && st == 202;
	}
	if (st != 201 && st != 202 && st != 503)
		printf("    write %d: HTTP %ld %.300s\n", i, st, r.body ? r.body : "");
	if (st == 503 && (r.body == NULL || strstr(r.body, "disk is full") == NULL ||
			  strstr(r.body, "urn:cleave:problem:") == NULL))
		st = -503; /* a 503 that does not say why */
	resp_free(&r);
	return st;
}

/* Everything answered 201/202 so far is there, and the audit chain verifies. */
static int
nothing_lost(struct full_env *e, const char *when)
{
	size_t tokens = count_listed(e->admin, e->ids, e->n);
	size_t cmds = count_commands(e->admin, e->cmds, e->ncmd);

	if (tokens == e->n && cmds == e->ncmd && audit_ok(e->admin))
		return 1;
	printf("    %s: %zu of %zu tokens, %zu of %zu commands\n", when, tokens, e->n, cmds,
	       e->ncmd);
	return 0;
}

/* Fills the disk, then writes until the server answers 503; checks the answer. */
static void
fill_until_refused(struct full_env *e)
{
	long full = fill(e->filler), st = 201;
	int i, refused = 0;

	/* Near full: leave room for some writes, so the disk runs out in the middle of them. */
	CHECK(full > 512 * 1024, "cannot write the filler file (%ld bytes)", full);
	CHECK(truncate(e->filler, full - 256 * 1024) == 0, "cannot shorten the filler");
	/*
	 * Until one write of each kind in a row is refused: the smaller kind may still fit in what
	 * the larger one left when it was refused first.
	 */
	for (i = 0; i < MAX_OPS && refused < 2 && (st == 201 || st == 202 || st == 503); i++) {
		st = write_one(e, i, 1);
		refused = st == 503 ? refused + 1 : 0;
	}
	CHECK(st == 503,
	      "after %d writes on a full disk: HTTP %ld, want 503 saying the disk is full", i, st);
	printf("    %zu tokens (201) and %zu commands (202) before the disk was full\n", e->n,
	       e->ncmd);
}

static void
while_full(struct full_env *e)
{
	struct resp r;
	long st;

	/* Still full: the next writes of both kinds fail the same clear way. */
	for (int i = 0; i < 6; i++)
		CHECK(write_one(e, MAX_OPS + i, 0) == 503, "write %d on a full disk", i);
	/* A device's check-in needs to write (delivered marks): 503 or served, never 500. */
	st = checkin(e);
	CHECK(st == 200 || st == 204 || st == 503, "check-in on a full disk: HTTP %ld", st);
	printf("    a check-in on the full disk: HTTP %ld\n", st);
	CHECK(client_req(e->admin, "GET", "/healthz", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(nothing_lost(e, "while full"), "an answered 201/202 is missing, or the audit broke");
}

static void
after_space_returns(struct full_env *e)
{
	CHECK(unlink(e->filler) == 0, "cannot remove the filler");
	/* The same kinds of write work again, on the same process, and the device checks in. */
	for (int i = 0; i < 20; i++)
		CHECK(write_one(e, 2 * MAX_OPS + i, 1) == (i % 2 ? 202 : 201),
		      "write %d after space returned", i);
	CHECK(checkin(e) == 200, "check-in after space returned");
	CHECK(nothing_lost(e, "after"), "an answered 201/202 is missing, or the audit broke");
	CHECK(srv_stop(&e->s, SIGTERM) == 0, "server did not stop cleanly");
	CHECK(srv_start(&e->s, NULL) == 0, "server does not start again");
	client_free(e->admin); /* a new port */
	e->admin = client_new(&e->s, e->s.admin);
	CHECK(e->admin != NULL, "client");
	CHECK(nothing_lost(e, "after restart"), "an answered 201/202 is lost on restart");
}

static void
full_case(struct full_env *e)
{
	char tok[128];
	struct resp r;

	CHECK(srv_start(&e->s, NULL) == 0, "server did not start on the tmpfs");
	e->admin = client_new(&e->s, e->s.admin);
	e->devc = client_new(&e->s, NULL);
	CHECK(e->admin != NULL && e->devc != NULL && dev_init(&e->dev) == 0, "client");
	CHECK(admin_etoken(e->admin, "dana@example.com", 1, tok, sizeof(tok)) == 0, "etoken");
	CHECK(dev_enroll(&e->dev, e->devc, tok, &r) == 0 && r.status == 201, "enroll: %ld",
	      r.status);
	resp_free(&r);
	/* A few writes with room to spare. */
	for (int i = 0; i < 10; i++)
		CHECK(write_one(e, i, 1) == (i % 2 ? 202 : 201), "write %d with space", i);
	fill_until_refused(e);
	if (t_failed_now)
		return;
	while_full(e);
	if (t_failed_now)
		return;
	after_space_returns(e);
}

static void
test_disk_full(void)
{
	struct full_env e;

	memset(&e, 0, sizeof(e));
	e.ids = calloc(MAX_OPS + 64, sizeof(*e.ids));
	e.cmds = calloc(MAX_OPS + 64, sizeof(*e.cmds));
	if (e.ids == NULL || e.cmds == NULL) {
		free(e.ids);
		free(e.cmds);
		CHECK(0, "no memory");
	}
	if (srv_init(&e.s, "diskfull") != 0 || mount_tmpfs(e.s.dir, "4m") != 0) {
		free(e.ids);
		free(e.cmds);
		CHECK(0, "cannot mount a tmpfs on %s", e.s.dir);
	}
	snprintf(e.filler, sizeof(e.filler), "%s/filler", e.s.dir);
	full_case(&e);
	/* Always: stop the server, unmount, clean up, whatever the case found. */
	client_free(e.admin);
	client_free(e.devc);
	dev_fini(&e.dev);
	if (e.s.pid > 0)
		srv_stop(&e.s, SIGKILL);
	umount_dir(e.s.dir);
	free(e.ids);
	free(e.cmds);
	srv_cleanup(&e.s);
}

/* The test needs root and tmpfs; anything else is a skip, said once. */
static int
can_mount(void)
{
	char dir[PATH_MAX];
	const char *base = getenv("CLEAVE_TEST_OUT");
	int ok;

	if (geteuid() != 0) {
		printf("skipped: mounting a small tmpfs needs root\n");
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/diskfull-probe-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		printf("skipped: cannot make %s: %s\n", dir, strerror(errno));
		return 0;
	}
	ok = mount_tmpfs(dir, "64k") == 0;
	if (ok)
		umount_dir(dir);
	else
		printf("skipped: mount -t tmpfs failed on %s\n", dir);
	rmdir(dir);
	return ok;
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"disk_full", test_disk_full},
	};

	if (!can_mount())
		return 77;
	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}
