#!/usr/bin/env bash
# What the x86 hypervisor suites exec, for their arm64 run inside the emulated machine
# (tests/arm64/README.md): Debian's arm64 busybox-static (the shell and the small tools that
# system() and popen() use) and the openssl command line with libssl3 (test_hv_workspace verifies
# a receipt with it). Fetched with apt as arm64-kernel.sh and arm64-sysroot.sh do (the arm64
# architecture given on the command line only; nothing installed) and unpacked into
# OUT/tools (default build/arm64). openssl is linked dynamically: the image also carries the
# cross compiler's own arm64 libc and loader (scripts/arm64-suites-image.sh).
set -euo pipefail
out=${1:-build/arm64}
mkdir -p "$out/apt/lists/partial" "$out/apt/debs/partial"
out=$(cd "$out" && pwd)
o=(-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDir::State::Lists="$out/apt/lists"
   -oDir::Cache::Archives="$out/apt/debs" -oDir::State::Status=/dev/null -qq)
pkgs=(busybox-static openssl libssl3)

[ -e "$out/tools/.done" ] && exit 0
if ! ls "$out"/apt/lists/*_Packages* >/dev/null 2>&1; then
	apt-get "${o[@]}" update
fi
rm -rf "$out/tools.tmp" && mkdir -p "$out/tools.tmp"
for p in "${pkgs[@]}"; do
	(cd "$out/apt/debs" && apt-get "${o[@]}" download "$p")
	deb=$(ls -t "$out/apt/debs/${p}"_*.deb | head -n 1)
	dpkg-deb -x "$deb" "$out/tools.tmp"
	echo "$p $(dpkg-deb -f "$deb" Version)" >>"$out/tools.tmp/.packages"
	rm -f "$deb"
done
rm -rf "$out/tools" && mv "$out/tools.tmp" "$out/tools"
touch "$out/tools/.done"
sed 's/^/arm64-testtools: /' "$out/tools/.packages"
