/*
 * Integration test of incremental audit verification (issue 10 §0): the real cleave-server signs
 * its audit head every 2 entries; once a verification reached the checkpoint of entry 5, that
 * entry is the anchor and GET /api/v1/audit/verify reads only what follows it. Rows are then
 * edited in the live database the way an insider with write access would (and put back), above
 * the anchor, at it and below it, and the test checks what the incremental and the full
 * verification (?full=1) each report: above and at the anchor both catch the edit; below it
 * only the full one does, and from then on the incremental one repeats the full one's finding
 * until a full one finds the chain intact again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

#define ANCHOR 5

/* The private PostgreSQL cluster when test_audit_verify_pg runs these cases; NULL on SQLite. */
static struct pgtest *env_pg;

struct env {
	struct srv s;
	struct client *admin;
};

static int
up(struct env *e)
{
	char conf[PATH_MAX + 16];
	const char *extra[] = {"--config", conf, NULL};
	FILE *f;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, "verify") != 0 || srv_use_pg(&e->s, env_pg) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%.*s/server.conf", (int)strlen(e->s.dir) - 5, e->s.dir);
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fputs("audit_checkpoint_entries = 2\naudit_checkpoint_seconds = 3600\n", f);
	fclose(f);
	if (srv_start(&e->s, extra) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	return e->admin ? 0 : -1;
}

static void
down(struct env *e)
{
	client_free(e->admin);
	srv_cleanup(&e->s);
}

static json_t *
verify(struct env *e, int full)
{
	long st = 0;
	json_t *j = client_get_json(
		e->admin, full ? "/api/v1/audit/verify?full=1" : "/api/v1/audit/verify", &st);

	if (st != 200) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static long long
num(json_t *j, const char *k)
{
	return (long long)json_integer_value(json_object_get(j, k));
}

static long long
ckpt_seq(json_t *j)
{
	return num(json_object_get(j, "last_checkpoint"), "seq");
}

/* Waits (bounded, 10 s) for the checkpoint of entry seq, verifying as the auditor would. */
static int
wait_ckpt(struct env *e, long long seq)
{
	for (int i = 0; i < 100; i++) {
		json_t *j = verify(e, 0);
		long long got = j ? ckpt_seq(j) : 0;

		json_decref(j);
		if (got == seq)
			return 0;
		usleep(100000);
	}
	return -1;
}

/*
 * Appends TAMPER to entry seq's detail in the live database (put back: cuts it off again), in
 * SQL both backends read alike.
 */
#define TAMPER " owner=mallory@example.com"

static int
edit(struct env *e, int seq, int put_back)
{
	char sql[256];

	if (put_back)
		snprintf(sql, sizeof(sql),
			 "UPDATE audit SET detail = substr(detail, 1, length(detail) - %zu) WHERE "
			 "seq = %d",
			 strlen(TAMPER), seq);
	else
		snprintf(sql, sizeof(sql),
			 "UPDATE audit SET detail = detail || '%s' WHERE seq = %d", TAMPER, seq);
	return srv_db_exec(&e->s, sql);
}

/* The report says ok (want_bad 0) or a break at entry want_bad, made in mode. */
static int
reports(json_t *j, long long want_bad, const char *mode)
{
	int ok = json_is_true(json_object_get(j, "ok"));

	if (j == NULL)
		return 0;
	if (strcmp(json_string_value(json_object_get(j, "mode")) ?: "", mode) != 0)
		return 0;
	return want_bad == 0 ? ok : !ok && num(j, "first_bad_seq") == want_bad;
}

/* Entries 1..ANCHOR+1, the checkpoint of ANCHOR the newest; the anchor is ANCHOR. */
static int
fill(struct env *e)
{
	char tok[128];

	if (wait_ckpt(e, 1) != 0)
		return -1;
	for (int seq = 2; seq <= ANCHOR; seq++)
		if (admin_etoken(e->admin, "pat@example.com", 1, tok, sizeof(tok)) != 0 ||
		    (seq % 2 == 1 && wait_ckpt(e, seq) != 0))
			return -1;
	/* One entry above the anchor: too few for a checkpoint of its own. */
	return admin_etoken(e->admin, "pat@example.com", 1, tok, sizeof(tok));
}

static void
test_tamper_above_and_below_anchor(void)
{
	struct env e;
	json_t *j;

	CHECK(up(&e) == 0, "server did not start");
	CHECK(fill(&e) == 0, "entries and checkpoints");
	j = verify(&e, 0);
	CHECK(reports(j, 0, "incremental") && num(j, "verified_from") == ANCHOR &&
		      num(j, "checked") == 1 && num(j, "entries") == ANCHOR + 1,
	      "an intact chain verifies from the anchor, reading one entry");
	json_decref(j);

	/* Above the anchor: the entries read on every call. */
	CHECK(edit(&e, ANCHOR + 1, 0) == 0, "edit");
	j = verify(&e, 0);
	CHECK(reports(j, ANCHOR + 1, "incremental"), "an edit above the anchor is caught");
	json_decref(j);
	CHECK(edit(&e, ANCHOR + 1, 1) == 0, "put back");

	/* The anchor itself: its hash is checked on every call. */
	CHECK(edit(&e, ANCHOR, 0) == 0, "edit");
	j = verify(&e, 0);
	CHECK(reports(j, ANCHOR, "incremental"), "an edit of the anchor entry is caught");
	json_decref(j);
	CHECK(edit(&e, ANCHOR, 1) == 0, "put back");
	j = verify(&e, 0);
	CHECK(reports(j, 0, "incremental"), "put back, the chain verifies again");
	json_decref(j);

	/* Below the anchor: only the full walk reads it. */
	CHECK(edit(&e, 2, 0) == 0, "edit");
	j = verify(&e, 0);
	CHECK(reports(j, 0, "incremental") && num(j, "verified_from") == ANCHOR,
	      "the incremental verification does not read below its anchor");
	json_decref(j);
	j = verify(&e, 1);
	CHECK(reports(j, 2, "full") && num(j, "checked") >= 2, "the full verification catches it");
	json_decref(j);
	j = verify(&e, 0);
	CHECK(reports(j, 2, "full") && json_is_string(json_object_get(j, "full_verified_at")),
	      "after it, the default answer repeats the full one's finding");
	json_decref(j);
	CHECK(edit(&e, 2, 1) == 0, "put back");
	j = verify(&e, 1);
	CHECK(reports(j, 0, "full") && num(j, "entries") == ANCHOR + 1, "a full pass clears it");
	json_decref(j);
	j = verify(&e, 0);
	CHECK(reports(j, 0, "incremental"), "and the incremental one goes on from the anchor");
	json_decref(j);
	down(&e);
}

/* ?full= takes 1, true, 0 or false; the full walk is the admin's and the auditor's only. */
static void
test_full_param_and_roles(void)
{
	const char *roles[] = {"auditor", "helpdesk"};
	const int want[] = {200, 403};
	char tok[128];
	struct env e;
	struct resp r;

	CHECK(up(&e) == 0, "server did not start");
	CHECK(client_req(e.admin, "GET", "/api/v1/audit/verify?full=yes", NULL, NULL, &r) == 0,
	      "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);
	for (size_t i = 0; i < ARRAY_SIZE(roles); i++) {
		struct client *c;

		CHECK(admin_token(e.admin, roles[i], tok, sizeof(tok)) == 0, "%s token", roles[i]);
		c = client_new(&e.s, tok);
		CHECK(c && client_req(c, "GET", "/api/v1/audit/verify?full=true", NULL, NULL, &r) ==
				      0,
		      "tx");
		client_free(c);
		CHECK_STATUS(r, want[i]);
		resp_free(&r);
	}
	down(&e);
}

static const struct t_case verify_cases[] = {
	{"tamper_above_and_below_anchor", test_tamper_above_and_below_anchor},
	{"full_param_and_roles", test_full_param_and_roles},
};

#ifndef TEST_VERIFY_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(verify_cases, ARRAY_SIZE(verify_cases), argc, argv);
}
#endif
