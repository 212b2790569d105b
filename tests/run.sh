#!/usr/bin/env bash
# Runs every test suite that `make all` built: unit binaries (cmocka), then integration binaries
# (real cleave-server on 127.0.0.1). Each suite's output goes to tests/out/<build>/<suite>.log
# and is printed when the suite fails. A suite that cannot run here exits 77 after printing
# "skipped: REASON"; cases skipped inside a suite print "skipped: REASON" under their name
# (tests/lib/testlib.h) or "[  SKIPPED ]" (cmocka). Every skip is listed with its reason, and
# the last line is "N passed, N failed, N skipped" (one count per suite binary). A suite that
# passes but leaves files in tests/out/<build>/ fails: tests clean up after themselves, except
# screenshots/, kept for people to look at (test_browser saves the console's screens there).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
out=tests/out/$(basename "$BUILD")
rm -rf "$out"; mkdir -p "$out"
export CLEAVE_BIN="$PWD/$BUILD/bin" CLEAVE_TEST_OUT="$PWD/$out"
pass=0; fail=0; skip=0; failed=(); skipped=()

# The reasons a suite's log gives for what it skipped, one "NAME: REASON" line each.
skip_reasons() {         # skip_reasons LOG
	awk '/^  [^ ]/ { name = $1 }
	     /^    skipped: / { sub(/^    skipped: /, ""); print name ": " $0 }
	     /^SKIP: / { why = substr($0, 7) }
	     /^\[  SKIPPED \] .*listed below/ { next }
	     /^\[  SKIPPED \] / { sub(/^\[  SKIPPED \] /, "")
				 if (!seen[$0]++) print $0 ": " (why != "" ? why : "(cmocka skip)") }' "$1"
}

run_suite() {            # run_suite KIND BINARY
	local kind=$1 bin=$2 name log start rc why before left
	name=$(basename "$bin"); log="$out/$kind-$name.log"
	before=$(ls -A "$out")
	start=$EPOCHREALTIME
	timeout 600 "$bin" >"$log" 2>&1; rc=$?
	local secs; secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	left=$(comm -13 <(echo "$before") <(ls -A "$out") | grep -vxF -e "$kind-$name.log" -e screenshots | tr '\n' ' ')
	if [ $rc -eq 0 ] && [ -n "$left" ]; then
		echo "suite passed but left files behind in $out: $left" >>"$log"
		rc=1
	fi
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); printf '  ok    %-12s %-40s %6ss\n' "$kind" "$name" "$secs"
		while IFS= read -r why; do
			printf '        skipped case %s\n' "$why"
			skipped+=("$kind/$name $why")
		done < <(skip_reasons "$log")
	elif [ $rc -eq 77 ]; then
		why=$(sed -n 's/^skipped: //p' "$log" | tail -n 1)
		skip=$((skip + 1)); skipped+=("$kind/$name: ${why:-no reason given}")
		printf '  skip  %-12s %-40s %6ss (%s)\n' "$kind" "$name" "$secs" "${why:-no reason given}"
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
if [ ${#skipped[@]} -gt 0 ]; then
	echo "skipped:"
	printf '  %s\n' "${skipped[@]}"
fi
[ ${#failed[@]} -gt 0 ] && echo "failed suites: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
