#!/usr/bin/env bash
# The arm64 exit costs in the emulated machine (issue 12), EMULATED figures: boots QEMU
# (`-M virt,virtualization=on`, TCG, niced, one QEMU at a time) with
# $BUILD/arm64/initramfs-bench.cpio.gz, whose init runs bench/arm64_bench.c, BENCH_ARM64_RUNS
# times (default 3) on each kernel: 6.1 nVHE (cortex-a57: no SMCCC filter, the MMIO store) and
# 6.12 under a pKVM host (max, kvm-arm.mode=protected: HVC, and the store forced). Also runs
# x86's test_kvm_boot once for this machine's x86 doorbell in the same session. Prints every
# figure per run, the median, and its ratio to the run's in-kernel reference (PSCI_VERSION by
# HVC, answered by KVM without a userspace exit). Builds nothing (`make bench-arm64` does);
# stops only its own QEMU (by pid, bounded); the logs stay in a temporary folder it prints.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
A=$BUILD/arm64
RUNS=${BENCH_ARM64_RUNS:-3}
IMAGE=$A/initramfs-bench.cpio.gz
QEMU=$(command -v qemu-system-aarch64) || { echo "bench-arm64: no qemu-system-aarch64" >&2; exit 1; }
for f in "$IMAGE" "$A/vmlinuz-6.1" "$A/vmlinuz-6.12"; do
	[ -r "$f" ] || { echo "bench-arm64: $f is missing (make arm64-kernel bench-arm64)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/cleave-bench-arm64-XXXXXX)
failed=0

# boot TAG KERNEL CPU EXTRA: one QEMU run, its console in $work/TAG.log; bounded to 300 s.
boot() {
	local tag=$1 kernel=$2 cpu=$3 extra=$4 pid
	nice -n 10 "$QEMU" -M virt,virtualization=on,gic-version=3 -cpu "$cpu" -smp 1 -m 512 \
		-nic none -kernel "$A/vmlinuz-$kernel" -initrd "$IMAGE" -nographic -no-reboot \
		-append "console=ttyAMA0 panic=-1 $extra -- /bin/arm64_bench" \
		</dev/null >"$work/$tag.log" 2>&1 &
	pid=$!
	for _ in $(seq 3000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		echo "bench-arm64: $tag did not finish within 300 s; killed" >&2
	fi
	wait "$pid"
	tr -d '\r' <"$work/$tag.log" | grep -q '^arm64-bench: result ok' || {
		echo "bench-arm64: $tag failed (log: $work/$tag.log)" >&2
		failed=1
	}
}

echo "machine: $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
	"load $(cut -d' ' -f1-3 /proc/loadavg); $($QEMU --version | head -1); $(date -u +%FT%TZ)"
if [ -x "$BUILD/tests/integration/test_kvm_boot" ] && [ -w /dev/kvm ]; then
	CLEAVE_BIN=$PWD/$BUILD/bin "$BUILD/tests/integration/test_kvm_boot" 2>&1 |
		sed -n 's/^ *timing: doorbell round trip/x86 (same session): doorbell round trip/p'
fi
for r in $(seq "$RUNS"); do
	boot "61-nvhe-$r" 6.1 cortex-a57 ""
	boot "612-pkvm-$r" 6.12 max "kvm-arm.mode=protected"
done

# The table: one row per figure and kernel: each run's µs, the median µs, and the median in
# loop iterations (each run's µs over the loop's ns measured around it, ×1000): QEMU's share
# of the machine moves within a run, the ratio of a figure to the loop beside it much less.
# ×ref = that median over the in-kernel reference's (PSCI_VERSION by HVC), same units.
median() { sort -g | awk '{ y[++c] = $1 } END { if (c) print (c % 2 ? y[(c + 1) / 2] : (y[c / 2] + y[c / 2 + 1]) / 2) }'; }
for k in 61-nvhe 612-pkvm; do
	echo
	echo "kernel $k: µs per call in runs 1..$RUNS, median µs, median loop iterations per call, ×ref"
	rows=$work/$k.rows
	: >"$rows"
	for r in $(seq "$RUNS"); do
		tr -d '\r' <"$work/$k-$r.log" | sed -n 's/^arm64-bench: //p' |
			awk -v r="$r" '$2 ~ /^[0-9.]+$/ { print $1, r, $2, ($3 == "loop" ? $4 : "") }' >>"$rows"
	done
	ref=$(awk '$1 == "ref-psci-hvc" && $4 > 0 { print $3 * 1000 / $4 }' "$rows" | median)
	for name in $(awk '!seen[$1]++ { print $1 }' "$rows"); do
		line=$(printf '%-20s' "$name")
		for r in $(seq "$RUNS"); do
			line+=$(awk -v n="$name" -v r="$r" '$1 == n && $2 == r { printf " %9s", $3 }' "$rows")
		done
		med=$(awk -v n="$name" '$1 == n { print $3 }' "$rows" | median)
		its=$(awk -v n="$name" '$1 == n && $4 > 0 { print $3 * 1000 / $4 }' "$rows" | median)
		line+=$(printf '   median %9.2f' "$med")
		[ -n "$its" ] && line+=$(awk -v i="$its" -v ref="${ref:-0}" \
			'BEGIN { printf "   %8.0f it", i; if (ref > 0) printf "   %6.2f ×ref", i / ref }')
		echo "$line"
	done
	for r in $(seq "$RUNS"); do
		tr -d '\r' <"$work/$k-$r.log" | sed -n "s/^arm64-bench: calls-/  run $r calls after /p"
	done
done
echo
echo "logs: $work"
exit "$failed"
