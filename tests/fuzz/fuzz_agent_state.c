/*
 * libFuzzer target: the agent's state-file readers (agent/kvfile.c and the records on top of it
 * in keystore.c and journal.c), which read files that anyone with the phone's storage, a torn
 * disk or a person could have changed. The first byte picks the record (identity, state, nonce
 * floor, journal entry); when the second byte is odd, the correct checksum line is appended to
 * the rest, so mutations get past the checksum to the field parsers; otherwise the rest is the
 * whole file. The file is written 0600 in a private directory and read by the agent's own
 * loaders. A state or journal record they accept must be written back and read again unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/journal.h"
#include "agent/keystore.h"
#include "agent/kvfile.h"
#include "crypto.h"
#include "log.h"
#include "util.h"

#define FUZZ_ID "cmd_fuzz" /* the journal record's id, as its file name says */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agent_dir dir;
static struct journal jnl;
static char top[PATH_MAX];

static void
remove_dir(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	(void)!system(cmd);
}

/* A private state directory under $TMPDIR (or /tmp), removed at exit. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	log_set_level((enum log_level)(LOG_LVL_ERR + 1)); /* every refusal is logged */
	snprintf(top, sizeof(top), "%s/cleave-fuzz-state-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(top) == NULL || agent_dir_open(&dir, top, 0) != 0 ||
	    journal_open(&jnl, &dir) != 0) {
		perror("cleave-fuzz-state: state directory");
		exit(1);
	}
	atexit(remove_dir);
	return 0;
}

/* Writes the record: body as given, or body and the checksum line the writer would add. */
static int
put_file(const char *path, const uint8_t *body, size_t n, int fix_sum)
{
	static char buf[KV_FILE_MAX * 2];
	uint8_t sum[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	size_t len = MIN(n, (size_t)KV_FILE_MAX + 1); /* a bit over the limit is enough */
	int fd, ok;

	memcpy(buf, body, len);
	if (fix_sum) {
		crypto_sha256(buf, len, sum);
		hex_encode(hex, sizeof(hex), sum, sizeof(sum));
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "sha256 %s\n", hex);
	}
	/* a plain write, not the agent's fsync'd one: hundreds of times faster, same bytes */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	ok = write(fd, buf, len) == (ssize_t)len;
	return close(fd) == 0 && ok ? 0 : -1;
}

static void
state_round_trip(void)
{
	struct agent_state a, b;

	if (agent_state_load(&dir, &a) != 0)
		return;
	if (agent_state_save(&dir, &a) != 0 || agent_state_load(&dir, &b) != 0 ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		__builtin_trap();
}

static void
journal_round_trip(void)
{
	struct journal_entry a, b, *all = NULL;
	size_t n = 0;

	if (journal_list(&jnl, &all, &n) == 0 && n > 1)
		__builtin_trap(); /* one record in the directory */
	free(all);
	if (journal_get(&jnl, FUZZ_ID, &a) != 0)
		return;
	if (journal_put(&jnl, &a) != 0 || journal_get(&jnl, FUZZ_ID, &b) != 0 ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"identity", "state", "nonce",
					    "journal/" FUZZ_ID ".cmd"};
	char path[PATH_MAX];
	struct identity id;
	struct nonce_gen g;
	int kind;

	if (size < 2)
		return 0;
	kind = data[0] % 4;
	if (agent_dir_file(&dir, names[kind], path, sizeof(path)) != 0 ||
	    put_file(path, data + 2, size - 2, data[1] & 1) != 0)
		__builtin_trap();
	switch (kind) {
	case 0:
		if (identity_load(&dir, &id, NULL) == 0 && id.device_id[0] == '\0')
			__builtin_trap();
		break;
	case 1:
		state_round_trip();
		break;
	case 2:
		(void)nonce_open(&g, &dir);
		break;
	default:
		journal_round_trip();
	}
	unlink(path);
	return 0;
}
