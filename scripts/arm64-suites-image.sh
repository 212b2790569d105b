#!/usr/bin/env bash
# Packs the arm64 image the x86 hypervisor suites run in (tests/arm64/README.md):
#   arm64-suites-image.sh OUT.cpio.gz INIT GUEST TOOLS CROSS_LIB PROGRAM...
# INIT at /init, each PROGRAM (static arm64) in /bin/, GUEST at /guest/guest.bin (hvproc.c's
# rule: $CLEAVE_BIN/../guest/guest.bin with CLEAVE_BIN=/bin), busybox and openssl from TOOLS
# (scripts/arm64-sysroot.sh OUT tools ...) in /bin/, openssl's libssl3 and the cross compiler's arm64 libc
# and loader (CROSS_LIB: /usr/aarch64-linux-gnu/lib) in /lib/. A gzipped newc cpio owned by
# root, the same bytes for the same inputs.
set -euo pipefail
out=$1 init=$2 guest=$3 tools=$4 cross=$5; shift 5
stage=$(mktemp -d "${out}.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/guest" "$stage/lib/aarch64-linux-gnu" \
	"$stage/usr/lib/ssl"
install -m 0755 "$init" "$stage/init"
for p in "$@"; do install -m 0755 "$p" "$stage/bin/"; done
install -m 0644 "$guest" "$stage/guest/guest.bin"
install -m 0755 "$tools/bin/busybox" "$tools/usr/bin/openssl" "$stage/bin/"
install -m 0644 "$tools/etc/ssl/openssl.cnf" "$stage/usr/lib/ssl/openssl.cnf"
for l in libssl.so.3 libcrypto.so.3; do
	install -m 0644 "$tools/usr/lib/aarch64-linux-gnu/$l" "$stage/lib/aarch64-linux-gnu/"
done
install -m 0755 "$cross/ld-linux-aarch64.so.1" "$stage/lib/"
install -m 0644 "$cross/libc.so.6" "$stage/lib/aarch64-linux-gnu/"
find "$stage" -exec touch -h -d @0 {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
