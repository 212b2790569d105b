/* See hvtpm.h. */
#include "hvtpm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trun.h"

int
tpm_identity(struct bridge_client *c, struct tpm_id *id)
{
	size_t n = 0, off = 8;

	if (bridge_call(c, CLV_FN_TPM_IDENTITY, NULL, 0, id->buf, sizeof(id->buf), &n) != CLV_OK ||
	    n < 8)
		return -1;
	for (int i = 0; i < 4; i++) {
		id->len[i] = (size_t)id->buf[2 * i] | (size_t)id->buf[2 * i + 1] << 8;
		if (id->len[i] > n - off)
			return -1;
		id->part[i] = id->buf + off;
		off += id->len[i];
	}
	return off == n ? 0 : -1;
}

int
hvtpm_up(struct hvtpm *tc)
{
	struct tpm_id id;
	const char *bin = getenv("CLEAVE_BIN");

	bin = bin && *bin ? bin : "build/bin";
	snprintf(tc->hvctl, sizeof(tc->hvctl), "%s/cleave-hvctl", bin);
	snprintf(tc->ticket, sizeof(tc->ticket), "%s/cleave-ticket", bin);
	if (hvp_prepare(&tc->hv) != 0)
		return -1;
	tc->hv.extra[0] = "--tpm";
	tc->hv.extra[1] = tc->tpm.tcti;
	tc->hv.extra[2] = "--volume-size";
	tc->hv.extra[3] = "8";
	if (hvp_start(&tc->hv) != 0 || bridge_connect(&tc->c, tc->hv.sock, 5000) != 0 ||
	    tpm_identity(&tc->c, &id) != 0 || id.len[3] > sizeof(tc->spki))
		return -1;
	memcpy(tc->spki, id.part[3], id.len[3]);
	tc->spki_len = id.len[3];
	hvp_tpm_key(tc->spki, tc->spki_len);
	return hvsig_key_id(tc->spki, tc->spki_len, tc->hv_key);
}

void
hvtpm_end(struct hvtpm *tc)
{
	bridge_close(&tc->c);
	hvp_cleanup(&tc->hv);
	swtpm_stop(&tc->tpm);
	if (!t_failed_now) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tc->tpm.dir);
		(void)!system(cmd);
	}
}

int
hvtpm_run(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;

	if (f == NULL)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	return pclose(f);
}
