#!/usr/bin/env bash
# Fetches Debian's arm64 kernels for the nested-KVM tests (tests/integration/test_arm64_kvm.c)
# and unpacks each vmlinuz into OUT (build/arm64 by default): vmlinuz-6.1 always, vmlinuz-6.12
# when the archive here offers a 6.12 arm64 kernel (bookworm-backports or a point release).
# The machine's own dpkg architectures are left alone: apt gets the arm64 architecture and its
# own list and archive folders on the command line only (OUT/apt/), so nothing is installed.
# The newest package of each series is picked at run time; their version numbers move.
# Idempotent: a vmlinuz already present is kept. Needs the network only when one is missing.
# From the 6.1 package it also keeps OUT/modules-6.1/virtio_mmio.ko and virtio_blk.ko (modules
# in Debian's config; decompressed if the package compressed them): the Linux corporate half
# (that kernel) loads them from its initramfs to reach its virtio disk (tests/arm64/corp_init.c);
# and tpm_tis_core.ko and tpm_tis.ko (Debian builds the TPM core in, the TIS driver as modules):
# the emulated machine loads them to reach QEMU's tpm-tis-device (tests/arm64/tpm_steps.c);
# and virtio_console.ko: the emulated machine's virtio-serial port that carries the bridge to
# the host (tests/arm64/enroll_relay.c).
set -euo pipefail
out=${1:-build/arm64}
mkdir -p "$out/apt/lists/partial" "$out/apt/debs/partial" "$out/apt/unpack"
out=$(cd "$out" && pwd)
o=(-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDir::State::Lists="$out/apt/lists"
   -oDir::Cache::Archives="$out/apt/debs" -oDir::State::Status=/dev/null -qq)

# newest_kernel SERIES: the highest-versioned linux-image-SERIES.*-arm64 package name (unsigned
# generic flavour, the one measured in the reference; not cloud, rt or dbg), or nothing when the archive has none.
newest_kernel() {
	apt-cache "${o[@]}" search --names-only "^linux-image-$1[.-].*-arm64\$" 2>/dev/null |
		awk '{print $1}' | grep -v -e '-rt-' -e '-cloud-' -e 'unsigned' -e 'dbg' | sort -V | tail -n 1
}

keep_modules() {         # keep_modules SERIES: the virtio and TPM modules of the unpacked package
	local m f
	mkdir -p "$out/modules-$1"
	for m in virtio_mmio virtio_blk tpm_tis_core virtio_console; do
		f=$(find "$out/apt/unpack/lib/modules" -name "$m.ko*" | head -n 1)
		[ -n "$f" ] || { echo "arm64-kernel: no $m module in the package" >&2; return 1; }
		case $f in
		*.xz) xz -dc "$f" >"$out/modules-$1/$m.ko" ;;
		*.zst) zstd -qdc "$f" >"$out/modules-$1/$m.ko" ;;
		*) cp "$f" "$out/modules-$1/$m.ko" ;;
		esac
	done
}

fetch() {                # fetch SERIES REQUIRED MODULES (1: keep the virtio modules too)
	local series=$1 required=$2 modules=$3 pkg deb
	[ -s "$out/vmlinuz-$series" ] && { [ "$modules" = 0 ] || [ -s "$out/modules-$series/virtio_console.ko" ]; } &&
		return 0
	pkg=$(newest_kernel "$series")
	if [ -z "$pkg" ]; then
		[ "$required" = 1 ] && { echo "arm64-kernel: no linux-image-$series arm64 package in the archive" >&2; return 1; }
		echo "arm64-kernel: no $series arm64 kernel in this machine's archive; skipping it"
		return 0
	fi
	echo "arm64-kernel: fetching $pkg"
	(cd "$out/apt/debs" && apt-get "${o[@]}" download "$pkg")
	deb=$(ls -t "$out/apt/debs/${pkg}"_*.deb | head -n 1)
	rm -rf "$out/apt/unpack" && mkdir -p "$out/apt/unpack"
	dpkg-deb -x "$deb" "$out/apt/unpack"
	cp "$(ls "$out"/apt/unpack/boot/vmlinuz-* | head -n 1)" "$out/vmlinuz-$series.tmp"
	echo "$pkg $(dpkg-deb -f "$deb" Version)" >"$out/vmlinuz-$series.package"
	[ "$modules" = 0 ] || keep_modules "$series"
	# The same kernel fetched again (for a module added here) keeps its file and time stamp, so
	# what make built from it stays current.
	if cmp -s "$out/vmlinuz-$series.tmp" "$out/vmlinuz-$series"; then
		rm -f "$out/vmlinuz-$series.tmp"
	else
		mv "$out/vmlinuz-$series.tmp" "$out/vmlinuz-$series"
	fi
	rm -rf "$out/apt/unpack" "$deb"
}

if [ ! -s "$out/vmlinuz-6.1" ] || [ ! -e "$out/vmlinuz-6.12.checked" ] ||
	[ ! -s "$out/modules-6.1/virtio_console.ko" ]; then
	apt-get "${o[@]}" update
fi
fetch 6.1 1 1
fetch 6.12 0 0
touch "$out/vmlinuz-6.12.checked"
ls -l "$out"/vmlinuz-* | sed 's/^/arm64-kernel: /'
