#!/usr/bin/env bash
# make demo: the whole selective wipe on this machine, with the real cleave-server, cleave-hv
# and cleave-agent on 127.0.0.1. It enrolls a device, writes records into the corporate
# workspace and files into a "personal" folder, wipes the corporate half through the REST API
# with curl, then shows the verified receipt (checked again with openssl alone), the records
# gone and the personal files unchanged. Every process it starts is stopped at the end.
# usage: scripts/demo.sh [BUILD_DIR]   (default build)
set -euo pipefail

BUILD=${1:-build}
B=$(cd "$BUILD/bin" && pwd)
W=$(mktemp -d /tmp/cleave-demo.XXXXXX)
chmod 700 "$W"
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	echo
	echo "== all processes stopped; logs and state are in $W"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
	echo "demo: $*" >&2
	echo "demo: logs in $W/*.log" >&2
	exit 1
}
# Waits (at most $1 tenths of a second) until the command in "$@" succeeds.
wait_for() {
	local n=$1
	shift
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# JSON field of a flat object, without jq (the demo needs only curl and openssl).
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n1; }

step "starting cleave-server (data in $W/server)"
mkdir -m 700 "$W/server"
"$B/cleave-server" --data "$W/server" --listen 127.0.0.1:0 >"$W/server.log" 2>&1 &
pids+=($!)
wait_for 150 test -s "$W/server/server.url" -a -s "$W/server/admin-token" || fail "the server did not start"
URL=$(cat "$W/server/server.url")
TOKEN=$(cat "$W/server/admin-token")
CA="$W/server/tls/cert.pem"
api() { curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$@"; }
echo "   $URL"

step "starting cleave-hv: the corporate VM and its encrypted volume (state in $W/hv)"
mkdir -m 700 "$W/hv"
"$B/cleave-hv" --state "$W/hv" >"$W/hv.log" 2>&1 &
pids+=($!)
HV="$W/hv/hv.sock"
wait_for 100 "$B/cleave-hvctl" --socket "$HV" status || fail "cleave-hv did not start"
"$B/cleave-hvctl" --socket "$HV" status | sed 's/^/   /'

step "an IT admin creates a policy and an enrollment token for alice@example.com"
api -X PUT "$URL/api/v1/policies/standard" \
	-d '{"offline": {"lock_after_hours": 72, "wipe_after_days": 30}, "max_failed_unlocks": 10}' >/dev/null
ET=$(api -X POST "$URL/api/v1/enrollment-tokens" -d '{"owner": "alice@example.com"}' | field token)
[ -n "$ET" ] || fail "no enrollment token"

step "alice enrolls her phone: cleave-agent enroll (device key, hypervisor attestation, pin)"
"$B/cleave-agent" --state "$W/agent" enroll --server "$URL" --token "$ET" --ca-cert "$CA" \
	--hv-socket "$HV" 2>&1 | sed 's/^/   /'
DEV=$(sed -n "s/^device_id //p" "$W/agent/identity")
"$B/cleave-agent" --state "$W/agent" --hv-socket "$HV" run >"$W/agent.log" 2>&1 &
pids+=($!)
echo "   device $DEV; the agent keeps a long-poll check-in open"

step "alice works in the corporate half (its console) and keeps personal files"
printf 'put q3 revenue 48.2M, do not share\rput contacts ACME: Jo 555-0101\rlist\r' |
	"$B/cleave-hvctl" --socket "$HV" console | tr -d '\r' | sed 's/^/   /'
echo
mkdir "$W/personal"
echo "holiday photos" >"$W/personal/photo.txt"
head -c 65536 /dev/urandom >"$W/personal/music.bin"
(cd "$W/personal" && sha256sum *) >"$W/personal.before"
sed 's/^/   /' "$W/personal.before"
if grep -q "48.2M" "$W/hv/corporate"; then fail "plaintext in the volume file"; fi
echo "   the volume file holds no plaintext of the records"

step "the phone is lost: the admin wipes its corporate half through the REST API"
CMD=$(api -X POST "$URL/api/v1/devices/$DEV/commands" -d '{"type": "wipe", "reason": "phone lost"}' | field id)
echo "   POST /api/v1/devices/$DEV/commands -> $CMD"
t0=$(date +%s%N)
done_=""
for ((i = 0; i < 300; i++)); do
	J=$(api "$URL/api/v1/commands/$CMD")
	case "$J" in *'"status":"completed"'*) done_=1; break ;; *'"status":"failed"'*) break ;; esac
	sleep 0.05
done
[ -n "$done_" ] || fail "the wipe did not complete: $J"
t1=$(date +%s%N)
echo "   completed in $(((t1 - t0) / 1000000)) ms; verified by the server: $(echo "$J" | grep -o '"verified":[a-z]*')"

step "an auditor checks the receipt with openssl alone"
echo "$J" | field receipt | base64 -d >"$W/receipt.bin"
echo "$J" | field ticket | base64 -d >"$W/ticket.bin"
api "$URL/api/v1/devices/$DEV" | sed -n 's/.*"hypervisor":{"key":"\([^"]*\)".*/\1/p' | base64 -d >"$W/hv_key.bin"
{ printf '\060\052\060\005\006\003\053\145\160\003\041\000'; cat "$W/hv_key.bin"; } |
	openssl pkey -pubin -inform DER -out "$W/hv.pem"
head -c 256 "$W/receipt.bin" >"$W/body.bin"
tail -c 64 "$W/receipt.bin" >"$W/sig.bin"
openssl pkeyutl -verify -pubin -inkey "$W/hv.pem" -rawin -in "$W/body.bin" -sigfile "$W/sig.bin" | sed 's/^/   /'
th=$(od -An -tx1 -v -j112 -N32 "$W/receipt.bin" | tr -d ' \n')
[ "$th" = "$(sha256sum <"$W/ticket.bin" | cut -d' ' -f1)" ] || fail "the receipt is not for this ticket"
echo "   the receipt names this command's ticket (SHA-256 $th)"
echo "   checks run/passed: $(od -An -tx4 -j180 -N8 "$W/receipt.bin")"

step "the corporate half is empty (a fresh VM on a fresh volume)"
printf 'list\rget q3\r' | "$B/cleave-hvctl" --socket "$HV" console | tr -d '\r' | sed 's/^/   /'
echo

step "the personal half is untouched"
(cd "$W/personal" && sha256sum *) >"$W/personal.after"
if cmp -s "$W/personal.before" "$W/personal.after"; then
	sed 's/^/   /' "$W/personal.after"
	echo "   identical before and after the wipe"
else
	fail "personal files changed"
fi
