#!/usr/bin/env bash
# Packs the arm64 test initramfs: arm64-initramfs.sh OUT.cpio.gz INIT PROGRAM... puts INIT at
# /init and each PROGRAM in /bin/ (static arm64 binaries), with empty /dev and /proc (init mounts
# them), as a gzipped newc cpio owned by root, the same bytes for the same inputs.
set -euo pipefail
out=$1 init=$2; shift 2
stage=$(mktemp -d "${out}.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc"
install -m 0755 "$init" "$stage/init"
for p in "$@"; do install -m 0755 "$p" "$stage/bin/"; done
touch -d @0 "$stage" "$stage"/* "$stage"/bin/*
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
