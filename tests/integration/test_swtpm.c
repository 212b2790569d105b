/*
 * The test TPM itself (tests/lib/swtpmtest.h), as the TPM tests rely on it: a manufactured swtpm
 * answers on 127.0.0.1, its EK certificate chains to its own test manufacturer CA (openssl
 * verify), a copy of its state is the same TPM (same EK certificate), and a second manufactured
 * TPM is a different one. Read with tpm2-tools, an independent client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swtpmtest.h"
#include "testlib.h"

#define NVREAD "tpm2_nvread"

/* Reads the RSA EK certificate of the running t into path (DER). 0 or -1. */
static int
read_ek_cert(const struct swtpm *t, const char *path)
{
	char cmd[2 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "TPM2TOOLS_TCTI='%s' %s -o '%s' 0x%x >/dev/null 2>&1", t->tcti,
		 NVREAD, path, SWTPM_EK_CERT_RSA);
	return system(cmd) == 0 ? 0 : -1;
}

static int
verify_chain(const struct swtpm *ca, const char *der)
{
	char cmd[4 * PATH_MAX];

	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -inform der -in '%s' -out '%s.pem' && openssl verify -CAfile '%s' "
		 "-untrusted '%s' '%s.pem' >/dev/null 2>&1",
		 der, der, ca->ca_root, ca->ca_issuer, der);
	return system(cmd) == 0 ? 0 : -1;
}

static void
swtpm_ek_chain_copy_and_second(void)
{
	struct swtpm a, b, c;
	char ea[PATH_MAX + 16], eb[PATH_MAX + 16], ec[PATH_MAX + 16], cmd[4 * PATH_MAX];

	if (swtpm_skip_reason() != NULL)
		SKIP("%s", swtpm_skip_reason());
	if (system("command -v " NVREAD " >/dev/null") != 0)
		SKIP("tpm2-tools not installed (scripts/deps.sh installs it)");
	CHECK(swtpm_make(&a, "a") == 0, "manufacture a TPM");
	CHECK(swtpm_start(&a) == 0, "start it");
	snprintf(ea, sizeof(ea), "%s/ek.der", a.dir);
	CHECK(read_ek_cert(&a, ea) == 0, "read the EK certificate from NV");
	CHECK(verify_chain(&a, ea) == 0, "EK certificate chains to the test manufacturer CA");
	swtpm_stop(&a);

	CHECK(swtpm_copy(&b, &a, "copy") == 0, "copy its state");
	CHECK(swtpm_start(&b) == 0, "start the copy");
	snprintf(eb, sizeof(eb), "%s/ek.der", b.dir);
	CHECK(read_ek_cert(&b, eb) == 0, "read the copy's EK certificate");
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", ea, eb);
	CHECK(system(cmd) == 0, "a copy is the same TPM");
	swtpm_stop(&b);

	CHECK(swtpm_make(&c, "c") == 0, "manufacture another TPM");
	CHECK(swtpm_start(&c) == 0, "start it");
	snprintf(ec, sizeof(ec), "%s/ek.der", c.dir);
	CHECK(read_ek_cert(&c, ec) == 0, "read its EK certificate");
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", ea, ec);
	CHECK(system(cmd) != 0, "another TPM has another EK certificate");
	CHECK(verify_chain(&a, ec) != 0, "nor does it chain to the first TPM's manufacturer");
	swtpm_stop(&c);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"swtpm_ek_chain_copy_and_second", swtpm_ek_chain_copy_and_second},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
