/*
 * Makes the self-signed TLS certificate cleave-server uses when the operator supplies none, so
 * `make run` serves HTTPS on first start and curl can trust it with --cacert. It only creates
 * files; loading them into the HTTP stack, renewing them and choosing names is the caller's job.
 */
#ifndef CLEAVE_SERVER_TLS_CERT_H
#define CLEAVE_SERVER_TLS_CERT_H

#include <stddef.h>

/*
 * Generates an ECDSA P-256 key and a self-signed X.509 v3 certificate for it (CN
 * "cleave-server", subjectAltName with every DNS name and IP address given, CA:TRUE so the
 * certificate is its own trust anchor, valid for days days from now, SHA-256 signature). Writes
 * the key as PKCS#8 PEM with mode 0600 to key_path and the certificate as PEM with mode 0644 to
 * cert_path, each atomically (temp file, fsync, rename, directory fsync); the key is written
 * first. All pointers are borrowed. At least one name is required; ips are IPv4 or IPv6 text.
 * Returns 0, -EINVAL for bad arguments, -EIO for an OpenSSL failure, or another -errno from the
 * file system.
 */
int tls_cert_generate(const char *cert_path, const char *key_path, const char *const *dns_names,
		      size_t n_dns, const char *const *ips, size_t n_ips, int days);

/*
 * The base64 SHA-256 of the public key (DER SubjectPublicKeyInfo) of the first certificate in
 * cert_pem (borrowed), as cleave-agent's --pin-sha256 and curl's --pinnedpubkey sha256//
 * take it, into out (cap bytes, 45 suffice). 0, -EINVAL when no certificate is readable,
 * -ENOSPC when out is too small.
 */
int tls_cert_pin_sha256(const char *cert_pem, char *out, size_t cap);

#endif
