#!/usr/bin/env bash
# tpm_tis.ko for the emulated machine's Debian 6.1 arm64 kernel (OUT/vmlinuz-6.1, default OUT
# build/arm64), into OUT/modules-6.1/tpm_tis.ko. Debian's arm64 config builds the TPM core and
# tpm_tis_core but not CONFIG_TCG_TIS, the driver of QEMU's tpm-tis-device (the only TPM QEMU 7.2
# gives the virt machine), so it is built here as an out-of-tree module from that kernel's own
# source (linux-source-6.1: only drivers/char/tpm/tpm_tis.c and its two private headers) against
# its headers (linux-headers-ABI-arm64, -common) and kbuild tools (linux-kbuild-6.1, this
# machine's architecture), all of the kernel's exact version, fetched with apt as
# arm64-kernel.sh does (arm64 on the command line only; nothing installed) and cross-compiled
# with aarch64-linux-gnu-gcc-12 (the kernel's compiler). The kernel does not force module
# signatures: it loads the module unsigned (tainted), as any out-of-tree module. Builds each
# time it runs (make runs it when vmlinuz-6.1 is newer than the module: a new kernel).
set -euo pipefail
out=${1:-build/arm64}
out=$(cd "$out" && pwd)
o=(-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDir::State::Lists="$out/apt/lists"
   -oDir::Cache::Archives="$out/apt/debs" -oDir::State::Status=/dev/null -qq)
read -r pkg ver <"$out/vmlinuz-6.1.package" # linux-image-ABI-arm64 VERSION
abi=${pkg#linux-image-}
abi=${abi%-arm64}
work="$out/tpm-module.tmp"
rm -rf "$work" && mkdir -p "$work/debs" "$work/root" "$work/m"
(cd "$work/debs" &&
	apt-get "${o[@]}" download "linux-headers-$abi-arm64=$ver" "linux-headers-$abi-common=$ver" \
		"linux-source-6.1=$ver" &&
	apt-get -qq download "linux-kbuild-6.1=$ver")
for d in "$work"/debs/linux-headers-*.deb "$work"/debs/linux-kbuild-*.deb; do
	dpkg-deb -x "$d" "$work/root"
done
dpkg-deb --fsys-tarfile "$work"/debs/linux-source-6.1_*.deb |
	tar -xO ./usr/src/linux-source-6.1.tar.xz | xz -dc |
	tar -x -C "$work" linux-source-6.1/drivers/char/tpm/tpm_tis.c \
		linux-source-6.1/drivers/char/tpm/tpm_tis_core.h linux-source-6.1/drivers/char/tpm/tpm.h
cp "$work"/linux-source-6.1/drivers/char/tpm/* "$work/m/"
echo 'obj-m := tpm_tis.o' >"$work/m/Kbuild"
src="$work/root/usr/src"
# The headers' Makefile names the common tree by its installed path: point it at this copy.
sed -i "s|/usr/src/|$src/|" "$src/linux-headers-$abi-arm64/Makefile"
make -s -C "$src/linux-headers-$abi-arm64" M="$work/m" DEB_BUILD_ARCH="$(dpkg --print-architecture)" \
	DEB_HOST_ARCH=arm64 DEB_HOST_GNU_TYPE=aarch64-linux-gnu modules
mkdir -p "$out/modules-6.1"
cp "$work/m/tpm_tis.ko" "$out/modules-6.1/tpm_tis.ko"
rm -rf "$work"
echo "arm64-tpm-module: tpm_tis.ko for $pkg $ver"
