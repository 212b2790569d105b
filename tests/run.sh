#!/usr/bin/env bash
# Runs every test suite that `make all` built: unit binaries (cmocka), then integration binaries
# (real cleave-server on 127.0.0.1). Each suite's output goes to tests/out/<build>/<suite>.log
# and is printed when the suite fails. A suite that cannot run here exits 77 after printing
# "skipped: REASON"; cases skipped inside a suite print "skipped: REASON" under their name
# (tests/lib/testlib.h) or "[  SKIPPED ]" (cmocka). Every skip is listed with its reason, and
# the last line is "N passed, N failed, N skipped" (one count per suite binary). A suite that
# passes but leaves files in tests/out/<build>/ fails: tests clean up after themselves, except
# screenshots/, kept for people to look at (test_browser saves the console's screens there).
# Suites run one at a time, except the emulated arm64 ones (below), which run beside the rest.
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

# Runs one suite with its output in LOG and its scratch files under DIR; "RC SECONDS" on stdout,
# after checking that it left nothing in DIR but its log (and screenshots/).
exec_suite() {           # exec_suite BINARY LOG DIR
	local bin=$1 log=$2 dir=$3 start rc secs before left
	before=$(ls -A "$dir")
	start=$EPOCHREALTIME
	CLEAVE_TEST_OUT="$PWD/$dir" timeout 600 "$bin" >"$log" 2>&1; rc=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	left=$(comm -13 <(echo "$before") <(ls -A "$dir") | grep -vxF -e "$(basename "$log")" -e screenshots -e beside | tr '\n' ' ')
	if [ $rc -eq 0 ] && [ -n "$left" ]; then
		echo "suite passed but left files behind in $dir: $left" >>"$log"
		rc=1
	fi
	echo "$rc $secs"
}

# Counts and prints what a suite's run came to.
report_suite() {         # report_suite KIND NAME LOG RC SECONDS
	local kind=$1 name=$2 log=$3 rc=$4 secs=$5 why
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

run_suite() {            # run_suite KIND BINARY
	local kind=$1 name log res
	name=$(basename "$2"); log="$out/$kind-$name.log"
	res=$(exec_suite "$2" "$log" "$out")
	report_suite "$kind" "$name" "$log" ${res% *} ${res#* }
}

echo "unit tests:"
for t in "$BUILD"/tests/unit/test_*; do [ -x "$t" ] && run_suite unit "$t"; done

# The suites that run an emulated arm64 machine (QEMU TCG: one host CPU each, most of their time)
# run one after another beside the others, with their files in $out/beside; reported at the end.
beside=(); for t in "$BUILD"/tests/integration/test_arm64_*; do [ -x "$t" ] && beside+=("$t"); done
mkdir -p "$out/beside"
(
	for t in "${beside[@]}"; do
		name=$(basename "$t")
		exec_suite "$t" "$out/beside/integration-$name.log" "$out/beside" >"$out/beside/$name.rc"
	done
) &
beside_pid=$!

echo "integration tests:"
for t in "$BUILD"/tests/integration/test_*; do
	[ -x "$t" ] || continue
	case " ${beside[*]} " in *" $t "*) continue ;; esac
	run_suite integration "$t"
done
if [ ${#beside[@]} -gt 0 ]; then
	echo "integration tests run beside the others (emulated arm64):"
	wait "$beside_pid"
	for t in "${beside[@]}"; do
		name=$(basename "$t"); log="$out/beside/integration-$name.log"
		res=$(cat "$out/beside/$name.rc" 2>/dev/null); res=${res:-"1 0.0"}
		report_suite integration "$name" "$log" ${res% *} ${res#* }
		rm -f "$out/beside/$name.rc"
	done
fi
echo
if [ ${#skipped[@]} -gt 0 ]; then
	echo "skipped:"
	printf '  %s\n' "${skipped[@]}"
fi
[ ${#failed[@]} -gt 0 ] && echo "failed suites: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
