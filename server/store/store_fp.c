/* The fingerprint column's value (store_fp.h), shared by the SQLite and PostgreSQL backends. */
#include "store_fp.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

void
store_hv_fingerprint(const uint8_t key[32], char *out, size_t cap)
{
	char fp[64];

	if (key_fingerprint(key, fp, sizeof(fp)) != 0 || strncmp(fp, "SHA256:", 7) != 0)
		fp[7] = '\0';
	snprintf(out, cap, "%s", fp + 7);
}
