/*
 * Browser tests: the C side starts the real server (and devices) and runs a script under
 * tests/browser/ in node, which drives Debian's Chromium with playwright-core. These helpers
 * find the parts (or say why a case must be skipped), make an admin account to sign in with,
 * and run a script bounded in time with its output in OUTDIR/browser.log.
 */
#ifndef CLEAVE_TEST_BROWSER_H
#define CLEAVE_TEST_BROWSER_H

#include <stddef.h>

#include "testlib.h"

/* The repository root and, when the browser cannot run here, why; NULL when it can. */
const char *browser_skip_reason(void);
const char *browser_repo(void);

/*
 * Makes OUTDIR = $CLEAVE_TEST_OUT/screenshots/NAME (kept after the test: screenshots are
 * looked at). 0 or -1.
 */
int browser_outdir(const char *name, char *out, size_t cap);

/* Makes a console account with role and password through the API (admin bearer). 0 or -1. */
int browser_admin(struct client *admin, const char *email, const char *role, const char *password);

/*
 * Runs `node tests/browser/SCRIPT ARGS…` (args NULL-terminated) for at most seconds, its
 * output to OUTDIR/browser.log, printed when it fails. Its exit status (77: skipped), or -1.
 */
int browser_run(const char *script, const char *outdir, int seconds, const char *const *args);

#endif
