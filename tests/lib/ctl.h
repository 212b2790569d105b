/*
 * Running cleavectl from the integration tests (test_cleavectl*.c): a real cleave-server, a
 * private HOME and XDG_CONFIG_HOME inside its data directory, a profile made by
 * `cleavectl login` with the server certificate's key pinned, and each run's exit code,
 * stdout and stderr.
 */
#ifndef CLEAVE_TEST_CTL_H
#define CLEAVE_TEST_CTL_H

#include <jansson.h>
#include <limits.h>
#include <sys/types.h>

#include "testlib.h"

#define CTL_OUT_MAX (256 * 1024)

struct ctl_env {
	struct srv s;
	struct client *admin, *anon;
	char home[PATH_MAX], cfg[PATH_MAX + 32], pin[64];
	char token_env[600]; /* "CLEAVE_TOKEN=..." for the next runs, or "" */
	char out[CTL_OUT_MAX], err[CTL_OUT_MAX];
};

/* build/bin/cleavectl (or $CLEAVE_BIN/cleavectl). */
const char *ctl_bin(void);
/* base64 SHA-256 of a PEM certificate's SubjectPublicKeyInfo (curl's pin). 0 or -1. */
int ctl_cert_pin(const char *pem, char *out, size_t cap);
/* Starts the server, makes HOME, logs in as the first admin (profile "default"). 0 or -1. */
int ctl_up(struct ctl_env *e, const char *tag);
void ctl_down(struct ctl_env *e);
/* Starts cleavectl with args (NULL-terminated) and input on stdin; its pid or -1. */
pid_t ctl_spawn(struct ctl_env *e, const char *input, const char *const *args);
/* Waits (at most 60 s) for it; its output into e->out and e->err. The exit code. */
int ctl_wait(struct ctl_env *e, pid_t pid);
/* Runs cleavectl with input and the arguments (NULL-terminated); the exit code. */
int ctl_in(struct ctl_env *e, const char *input, ...);
#define ctl(e, ...) ctl_in(e, NULL, __VA_ARGS__, (const char *)NULL)
/* The JSON document cleavectl printed (caller decrefs), or NULL. */
json_t *ctl_json(const struct ctl_env *e);
/* The string member name of that document into out: 0, or -1 when absent. */
int ctl_out_str(const struct ctl_env *e, const char *name, char *out, size_t cap);
/*
 * Plays device d until its command id is settled: checks in, acknowledges, and reports each
 * command completed with a receipt signed by its hypervisor key (policy commands without one).
 * 0 when id was reported, -1 after seconds.
 */
int ctl_device_serve(struct ctl_env *e, struct device_sim *d, const char *id, double seconds);
/* ctl_up with conf (lines of a --config file, e.g. "two_person_rule = 1\n"). 0 or -1. */
int ctl_up_conf(struct ctl_env *e, const char *tag, const char *conf);
/*
 * A console account email (admin) with TOTP, signed in with a code, whose session makes an
 * admin API token with the approve permission: its secret into tok (schema/api.md "Getting
 * the approve permission"). 0 or -1 (the refusal printed).
 */
int ctl_approver(struct ctl_env *e, const char *email, char *tok, size_t cap);

#define CTL_UP(e, tag) CHECK(ctl_up(e, tag) == 0, "server or login failed: %s", (e)->err)
#define RUN(want, e, ...)                                                                          \
	do {                                                                                       \
		int got_ = ctl(e, __VA_ARGS__);                                                    \
		CHECK(got_ == (want), "exit %d, want %d\nstdout: %.1500s\nstderr: %.1500s", got_,  \
		      (want), (e)->out, (e)->err);                                                 \
	} while (0)

#endif
