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

# The table: one row per figure and kernel, the runs, their median, and median / reference.
for k in 61-nvhe 612-pkvm; do
	echo
	echo "kernel $k (µs per call unless named; median of $RUNS runs; ×ref = median / ref-psci-hvc)"
	for r in $(seq "$RUNS"); do
		tr -d '\r' <"$work/$k-$r.log" | sed -n 's/^arm64-bench: //p; s/^bridge STATUS round trip, n=[0-9]*: p50 \([0-9.]*\) us.*/bridge-status-p50 \1/p' |
			awk -v r="$r" '$2 ~ /^[0-9.]+$/ { print r, $1, $2 }'
	done | awk -v runs="$RUNS" '
		{ v[$2, $1] = $3; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
		END {
			for (i = 0; i < n; i++) {
				name = order[i]; m = 0; line = sprintf("%-22s", name)
				for (r = 1; r <= runs; r++) { x[r] = v[name, r]; line = line sprintf(" %9s", x[r]) }
				# median of the runs present (insertion sort, at most a handful)
				c = 0
				for (r = 1; r <= runs; r++) if (x[r] != "") { y[++c] = x[r] + 0 }
				for (a = 2; a <= c; a++) for (b = a; b > 1 && y[b - 1] > y[b]; b--) { t = y[b]; y[b] = y[b - 1]; y[b - 1] = t }
				med = c ? (c % 2 ? y[(c + 1) / 2] : (y[c / 2] + y[c / 2 + 1]) / 2) : 0
				meds[name] = med
				out[i] = line sprintf("   median %9.2f", med)
			}
			ref = meds["ref-psci-hvc"]
			for (i = 0; i < n; i++) {
				name = order[i]
				if (ref > 0 && name !~ /^ref-loop/) out[i] = out[i] sprintf("   %6.2f ×ref", meds[name] / ref)
				print out[i]
			}
		}'
	for r in $(seq "$RUNS"); do
		tr -d '\r' <"$work/$k-$r.log" | sed -n "s/^arm64-bench: calls-/  run $r calls after /p"
	done
done
echo
echo "logs: $work"
exit "$failed"
