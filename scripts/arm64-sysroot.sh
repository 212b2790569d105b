#!/usr/bin/env bash
# The arm64 libraries cleave-hv links (libcrypto, libsodium: static archives and headers) from
# Debian's own arm64 packages, unpacked into OUT/sysroot (default build/arm64). apt gets the
# arm64 architecture and its own list folders on the command line only, as in arm64-kernel.sh,
# so the machine's dpkg architectures are untouched. Nothing is installed.
#   arm64-sysroot.sh [OUT [DIR PACKAGE...]]
# With DIR and packages, those packages go into OUT/DIR instead: tests/arm64/tpm.mk puts Debian's
# arm64 tpm2-tss, OpenSSL and libsodium shared libraries and headers into OUT/tpmroot, and
# tests/arm64/suites.mk what the x86 hypervisor suites exec in the emulated machine
# (busybox-static, the openssl command line and libssl3) into OUT/tools.
set -euo pipefail
out=${1:-build/arm64}
dir=${2:-sysroot}
mkdir -p "$out/apt/lists/partial" "$out/apt/debs/partial"
out=$(cd "$out" && pwd)
o=(-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDir::State::Lists="$out/apt/lists"
   -oDir::Cache::Archives="$out/apt/debs" -oDir::State::Status=/dev/null -qq)
pkgs=(libssl-dev libsodium-dev)
[ $# -gt 2 ] && pkgs=("${@:3}")

[ -e "$out/$dir/.done" ] && exit 0
if ! ls "$out"/apt/lists/*_Packages* >/dev/null 2>&1; then
	apt-get "${o[@]}" update
fi
rm -rf "$out/$dir.tmp" && mkdir -p "$out/$dir.tmp"
for p in "${pkgs[@]}"; do
	(cd "$out/apt/debs" && apt-get "${o[@]}" download "$p")
	deb=$(ls -t "$out/apt/debs/${p}"_*.deb | head -n 1)
	dpkg-deb -x "$deb" "$out/$dir.tmp"
	echo "$p $(dpkg-deb -f "$deb" Version)" >>"$out/$dir.tmp/.packages"
	rm -f "$deb"
done
rm -rf "$out/$dir" && mv "$out/$dir.tmp" "$out/$dir"
touch "$out/$dir/.done"
sed "s/^/arm64-sysroot ($dir): /" "$out/$dir/.packages"
