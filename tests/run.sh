#!/usr/bin/env bash
# Runs every test suite that `make all` built: unit binaries (cmocka), then integration binaries
# (real cleave-server on 127.0.0.1). Each suite's output goes to tests/out/<suite>.log and is
# printed when the suite fails. Ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
out=tests/out/$(basename "$BUILD")
rm -rf "$out"; mkdir -p "$out"
export CLEAVE_BIN="$PWD/$BUILD/bin" CLEAVE_TEST_OUT="$PWD/$out"
pass=0; fail=0; failed=()

run_suite() {            # run_suite KIND BINARY
	local kind=$1 bin=$2 name log start rc
	name=$(basename "$bin"); log="$out/$kind-$name.log"
	start=$EPOCHREALTIME
	timeout 600 "$bin" >"$log" 2>&1; rc=$?
	local secs; secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); printf '  ok    %-12s %-40s %6ss\n' "$kind" "$name" "$secs"
	else
		fail=$((fail + 1)); failed+=("$kind/$name")
		printf '  FAIL  %-12s %-40s %6ss (exit %d, log %s)\n' "$kind" "$name" "$secs" $rc "$log"
		tail -n 40 "$log" | sed 's/^/        | /'
	fi
}

echo "unit tests:"
for t in "$BUILD"/tests/unit/test_*; do [ -x "$t" ] && run_suite unit "$t"; done
echo "integration tests:"
for t in "$BUILD"/tests/integration/test_*; do [ -x "$t" ] && run_suite integration "$t"; done

echo
[ ${#failed[@]} -gt 0 ] && echo "failed suites: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
