#!/usr/bin/env bash
# Installs the Debian packages Cleave needs to build and test, and nothing else; then the npm
# packages of the RFC 9421 interop test (tests/interop/) and of the browser test (tests/browser/:
# playwright-core, which drives Debian's chromium), each from its package-lock.json.
# Idempotent and quick when everything is present: one dpkg-query, no network.
set -euo pipefail
cd "$(dirname "$0")/.."

# What cleave-server needs to build and run (`make run`: SQLite is embedded, so no database
# server, no browser, no balancer).
pkgs=(gcc make pkg-config libc6-dev
      libmicrohttpd-dev libgnutls28-dev libjansson-dev libcurl4-openssl-dev
      libsqlite3-dev libpq-dev libssl-dev libsodium-dev zlib1g-dev libqrencode-dev openssl
      libtss2-dev)
# `deps.sh --run` stops there; otherwise also what the agent, the tests and the tools use:
# cmocka, PostgreSQL (the second backend's tests run a private cluster), Chromium (browser
# tests), HAProxy (the balancer test), zbar (reads QR codes back), rsyslog with its GnuTLS
# driver (the collector of the SIEM stream test, run as the test's own process), node and npm,
# and LemonLDAP::NG's portal run by plackup: the OpenID provider of the single sign-on tests
# (tests/oidc/llng_op.sh; String::Random and IO::String are modules its OpenID Connect issuer
# loads that Debian lists only as recommended); and for the arm64 nested-KVM test
# (tests/arm64/, test_arm64_kvm): Debian's cross compiler and its libc, QEMU's arm64 machine and
# cpio for the initramfs (the arm64 kernels themselves come from scripts/arm64-kernel.sh); and
# swtpm with its tools (the TPM 2.0 the TPM tests manufacture and start per case) and
# tpm2-tools (an independent TPM client the tests cross-check against).
run_only=0
case "${1:-}" in
--run) run_only=1 ;;
*) pkgs+=(libcmocka-dev postgresql chromium curl ca-certificates jq zbar-tools haproxy
	   rsyslog rsyslog-gnutls
	  liblemonldap-ng-portal-perl libplack-perl libstring-random-perl libio-string-perl
	  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm cpio
	  swtpm swtpm-tools tpm2-tools) ;;
esac

# `deps.sh --fuzz`: also clang, for the libFuzzer targets of `make fuzz`.
[ "${1:-}" = "--fuzz" ] && pkgs+=(clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
# node and npm may come from elsewhere than Debian; only their absence matters.
if [ $run_only -eq 0 ]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi

# The npm packages of the interop test's signer (tests/integration/test_httpsig_interop.c), of
# the browser test (test_browser.c) and of the OpenAPI contract test (test_openapi.c): exactly
# the locked versions, only when absent. Without the registry those tests say "skipped", so no
# failure here.
npm_folder() {
  [ -f "$1/node_modules/$2/package.json" ] && return 0
  echo "deps: npm ci in $1"
  npm ci --prefix "$1" --no-audit --no-fund --loglevel=error >/dev/null ||
    echo "deps: npm ci failed in $1; its test will be skipped" >&2
}
interop() {
  [ $run_only -eq 1 ] && return 0
  npm_folder tests/interop http-message-signatures
  npm_folder tests/browser playwright-core
  npm_folder tests/contract openapi-client-axios
}
[ ${#missing[@]} -eq 0 ] && { interop; exit 0; }

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; refresh them once, then install.
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
interop
echo "deps: done"
