#!/usr/bin/env bash
# make phone: a phone on this machine for trying Cleave with `make run`. Starts cleave-hv (the
# corporate half) with its state in var/phone/, then asks for the enrollment command the
# employee page shows, runs it as printed (with build/bin on PATH and cleave-hv's socket in
# CLEAVE_HV_SOCKET), and keeps the agent checking in until Ctrl-C. A phone that is already
# enrolled (its agent state exists) just starts checking in again. Stops what it started.
set -euo pipefail

BUILD=${1:-build}
B=$(cd "$BUILD/bin" && pwd)
P=$(mkdir -p var/phone && chmod 700 var var/phone && cd var/phone && pwd)
STATE=$HOME/.cleave # the folder the employee page's command names
export CLEAVE_HV_SOCKET="$P/hv.sock"
export PATH="$B:$PATH"
hv=
agent=

stop() {
	[ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
	[ -n "$hv" ] && kill -TERM "$hv" 2>/dev/null && wait "$hv" 2>/dev/null || true
	echo
	echo "== phone stopped (cleave-hv state in $P, agent state in $STATE; logs: $P/hv.log)"
}
trap stop EXIT
trap 'exit 130' INT TERM

echo "== starting cleave-hv, the corporate half (state in $P/hv, log $P/hv.log)"
mkdir -p -m 700 "$P/hv"
"$B/cleave-hv" --state "$P/hv" --socket "$CLEAVE_HV_SOCKET" >>"$P/hv.log" 2>&1 &
hv=$!
for _ in $(seq 100); do
	"$B/cleave-hvctl" --socket "$CLEAVE_HV_SOCKET" status >/dev/null 2>&1 && break
	kill -0 "$hv" 2>/dev/null || { echo "cleave-hv did not start; see $P/hv.log" >&2; exit 1; }
	sleep 0.1
done

if [ ! -e "$STATE/identity" ]; then
	echo
	echo "== Enroll this phone: in the console (make run), open Enrollment, create a link,"
	echo "   open it, and paste the command it shows here (one line, starting with cleave-agent):"
	printf '> '
	IFS= read -r line || exit 1
	case "$line" in
	"cleave-agent "*) ;;
	*) echo "that is not the enrollment command (it starts with cleave-agent)" >&2; exit 2 ;;
	esac
	# The page's command names the state folder as ~/.cleave; take it as printed.
	eval "$line" || { echo "enrollment failed (the message above says why)" >&2; exit 1; }
fi

echo
echo "== the phone checks in (cleave-agent --state $STATE run); wipe it from the console."
echo "   Its own page: cleave-agent --state $STATE status. Ctrl-C stops the phone."
"$B/cleave-agent" --state "$STATE" run &
agent=$!
wait "$agent"
