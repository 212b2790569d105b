#!/usr/bin/env bash
# Packs the arm64 test initramfs: arm64-initramfs.sh OUT.cpio.gz INIT PROGRAM... puts INIT at
# /init and each PROGRAM in /bin/ (static arm64 binaries), with empty /dev and /proc (init mounts
# them), as a gzipped newc cpio owned by root, the same bytes for the same inputs. A PROGRAM
# written DEST=SRC goes to /DEST instead (the Linux guest's modules in lib/, its kernel; shared
# libraries and their loader), executable when SRC is.
set -euo pipefail
out=$1 init=$2; shift 2
stage=$(mktemp -d "${out}.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc"
install -m 0755 "$init" "$stage/init"
for p in "$@"; do
	case $p in
	*=*) install -D -m "$([ -x "${p#*=}" ] && echo 0755 || echo 0644)" "${p#*=}" "$stage/${p%%=*}" ;;
	*) install -m 0755 "$p" "$stage/bin/" ;;
	esac
done
find "$stage" -exec touch -h -d @0 {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
