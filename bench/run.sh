#!/usr/bin/env bash
# Runs the cleave-server benchmarks that `make bench` built: throughput (signed check-ins against
# the hello reference, alternating rounds) and parked long-polls (memory per agent, wipe delivery),
# each against a fresh cleave-server and hello on 127.0.0.1, then prints one table with the
# machine and ratios against the in-run reference. It builds nothing, stops only the processes it
# started (by PID), keeps every wait bounded and exits non-zero only when a step failed, not when
# a target is missed. Knobs: BENCH_AGENTS, BENCH_CONNS, BENCH_SECONDS, BENCH_ROUNDS,
# BENCH_SAMPLE, BENCH_BURST, BENCH_CONSOLE_DEVICES, BENCH_CONSOLE_RUNS.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case $BUILD in /*) BIN=$BUILD ;; *) BIN=$PWD/$BUILD ;; esac
AGENTS=${BENCH_AGENTS:-10000}
CONNS=${BENCH_CONNS:-64}
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
SAMPLE=${BENCH_SAMPLE:-200}
BURST=${BENCH_BURST:-1000}
BUDGET=570 # seconds for the whole run

for b in "$BIN/bin/cleave-server" "$BIN/bench/hello" "$BIN/bench/loadgen"; do
	[ -x "$b" ] || { echo "bench: $b is missing; run make bench" >&2; exit 1; }
done
work=$(mktemp -d /tmp/cleave-bench-XXXXXX)
started=()   # PIDs this script started and has not stopped yet
failed=0
results=$work/results.txt
: >"$results"
t_begin=$SECONDS

note() { printf '[bench] %s\n' "$*" >&2; }
fail() { note "FAILED: $*"; failed=1; }
left() { echo $((BUDGET - (SECONDS - t_begin))); }

# stop PID NAME: SIGTERM, wait (bounded, 30 s), SIGKILL as a last resort; records how it went.
stop() {
	local pid=$1 name=$2 t0=$EPOCHREALTIME rc
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		fail "$name did not stop within 30 s of SIGTERM; killed"
	fi
	wait "$pid"; rc=$?
	local keep=() p
	for p in "${started[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	started=("${keep[@]}")
	printf 'STOP name=%s exit=%d stop_s=%.2f\n' "$name" "$rc" \
		"$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" >>"$results"
	[ "$rc" -eq 0 ] || fail "$name exited with status $rc after SIGTERM (log: $work/$name.log)"
}

cleanup() {
	for pid in "${started[@]}"; do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; wait "$pid"; }
	done
	if [ "$failed" -eq 0 ]; then rm -rf "$work"; else note "logs kept in $work"; fi
}
trap cleanup EXIT
trap 'fail interrupted; exit 1' INT TERM

# start_cleave NAME: a fresh cleave-server on 127.0.0.1 port 0; sets CLEAVE_PID and CLEAVE_DIR.
start_cleave() {
	CLEAVE_DIR=$work/$1
	"$BIN/bin/cleave-server" --data "$CLEAVE_DIR" --listen 127.0.0.1:0 >"$work/$1.log" 2>&1 &
	CLEAVE_PID=$!
	started+=("$CLEAVE_PID")
	for _ in $(seq 150); do
		[ -s "$CLEAVE_DIR/server.url" ] && [ -s "$CLEAVE_DIR/admin-token" ] && return 0
		kill -0 "$CLEAVE_PID" 2>/dev/null || break
		sleep 0.1
	done
	fail "cleave-server did not start (log: $work/$1.log)"
	return 1
}

# start_hello NAME CERT_DIR: the reference daemon with cleave-server's certificate.
start_hello() {
	"$BIN/bench/hello" --cert "$2/tls/cert.pem" --key "$2/tls/key.pem" \
		--url-file "$work/$1.url" >"$work/$1.log" 2>&1 &
	HELLO_PID=$!
	started+=("$HELLO_PID")
	for _ in $(seq 100); do
		[ -s "$work/$1.url" ] && return 0
		kill -0 "$HELLO_PID" 2>/dev/null || break
		sleep 0.1
	done
	fail "hello did not start (log: $work/$1.log)"
	return 1
}

# loadgen ARGS...: one bounded run; its RESULT line goes to the results file.
loadgen() {
	local budget out
	budget=$(left)
	[ "$budget" -gt 30 ] || { fail "time budget used up before: loadgen $*"; return 1; }
	out=$(timeout $((budget + 30)) "$BIN/bench/loadgen" "$@" --deadline "$budget" \
		2> >(sed 's/^/    /' >&2))
	local rc=$?
	printf '%s\n' "$out" | grep '^RESULT' | sed "s/^RESULT/RESULT round=${ROUND:-0}/" >>"$results"
	[ $rc -eq 0 ] || fail "loadgen $1 ${3:-} exited with $rc"
}

note "work directory $work; budget ${BUDGET}s"
# ---- throughput: alternate hello and cleave so that host noise hits both ----
if start_cleave tput && start_hello hello-tput "$CLEAVE_DIR"; then
	for ROUND in $(seq "$ROUNDS"); do
		note "throughput round $ROUND: hello"
		loadgen throughput --target hello --url "$(cat "$work/hello-tput.url")" \
			--cacert "$CLEAVE_DIR/tls/cert.pem" --pid "$HELLO_PID" --conns "$CONNS" \
			--seconds "$SECS"
		note "throughput round $ROUND: cleave-server, signed check-ins"
		loadgen throughput --target cleave --url "$(cat "$CLEAVE_DIR/server.url")" \
			--cacert "$CLEAVE_DIR/tls/cert.pem" --admin-token-file "$CLEAVE_DIR/admin-token" \
			--pid "$CLEAVE_PID" --conns "$CONNS" --seconds "$SECS"
	done
	ROUND=0
	stop "$HELLO_PID" hello-tput
	stop "$CLEAVE_PID" tput
fi

# ---- parked: each on a fresh process ----
if start_cleave parked; then
	note "parked: cleave-server, $AGENTS agents"
	loadgen parked --target cleave --url "$(cat "$CLEAVE_DIR/server.url")" \
		--cacert "$CLEAVE_DIR/tls/cert.pem" --admin-token-file "$CLEAVE_DIR/admin-token" \
		--pid "$CLEAVE_PID" --agents "$AGENTS" --sample "$SAMPLE" --burst "$BURST"
	# The agents went away while parked: this also times a stop with that many suspended.
	stop "$CLEAVE_PID" parked
	if start_hello hello-parked "$CLEAVE_DIR"; then
		note "parked: hello, $AGENTS agents"
		loadgen parked --target hello --url "$(cat "$work/hello-parked.url")" \
			--cacert "$CLEAVE_DIR/tls/cert.pem" --pid "$HELLO_PID" --agents "$AGENTS"
		stop "$HELLO_PID" hello-parked
	fi
fi

# ---- the table ----
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
echo
echo "cleave-server benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), $((SECONDS - t_begin)) s)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
	"$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)," \
	"Debian $(cat /etc/debian_version 2>/dev/null), fd limit $(ulimit -Hn)"
echo "libraries: libmicrohttpd $(ver libmicrohttpd12), GnuTLS $(ver libgnutls30)," \
	"OpenSSL $(ver libssl3), SQLite $(ver libsqlite3-0), Jansson $(ver libjansson4)"
echo "code: $(git describe --always --dirty 2>/dev/null || echo '?')" \
	"(server and load generator share the machine's cores)"
awk -v conns="$CONNS" -v secs="$SECS" -f /dev/stdin "$results" <<'AWK'
function kv(line, key,   m) { return match(line, " " key "=[^ ]*") ? substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2) : "" }
function ok(b) { return b ? "met" : "MISSED" }
/^RESULT/ && kv($0, "mode") == "throughput" { t[++nt] = $0 }
/^RESULT/ && kv($0, "mode") == "parked" { p[kv($0, "target")] = $0 }
/^STOP/ { s[kv($0, "name")] = $0 }
END {
	printf "\nThroughput: TLS keep-alive, %s connections, %s s per run, one request at a time each\n", conns, secs
	printf "%-6s %-7s %9s %9s %15s %9s %8s %8s %7s\n", "round", "target", "req/s", "srv CPU-s", "req/srv CPU-s", "cli CPU-s", "p50 ms", "p99 ms", "errors"
	for (i = 1; i <= nt; i++) {
		l = t[i]; r = kv(l, "round"); g = kv(l, "target")
		printf "%-6s %-7s %9s %9s %15s %9s %8s %8s %7s\n", r, g, kv(l, "rps"), kv(l, "server_cpu_s"), kv(l, "per_cpu_s"), kv(l, "client_cpu_s"), kv(l, "lat_p50_ms"), kv(l, "lat_p99_ms"), kv(l, "errors")
		per[r, g] = kv(l, "per_cpu_s") + 0
	}
	best = 0; nr = 0
	for (i = 1; i <= nt; i++) {
		r = kv(t[i], "round")
		if (kv(t[i], "target") != "cleave" || per[r, "hello"] == 0) continue
		ratio[++nr] = per[r, "cleave"] / per[r, "hello"]
		printf "round %s: cleave signed check-ins per server CPU-s / hello requests per server CPU-s = %.3f\n", r, ratio[nr]
		if (per[r, "cleave"] > best) best = per[r, "cleave"]
		cl[nr] = per[r, "cleave"]
	}
	if (nr > 0) {
		for (i = 1; i <= nr; i++) for (j = i + 1; j <= nr; j++) {
			if (ratio[j] < ratio[i]) { x = ratio[i]; ratio[i] = ratio[j]; ratio[j] = x }
			if (cl[j] < cl[i]) { x = cl[i]; cl[i] = cl[j]; cl[j] = x }
		}
		printf "median over %d rounds: ratio %.3f, %.0f signed check-ins per server CPU-s\n", nr, ratio[int((nr + 1) / 2)], cl[int((nr + 1) / 2)]
		med = cl[int((nr + 1) / 2)]
	}
	c = p["cleave"]; h = p["hello"]
	printf "\nParked long-polls: one TLS connection per agent, wait 55 s, after one keep-alive request\n"
	printf "%-7s %7s %7s %9s %12s %11s %11s %10s %12s\n", "target", "agents", "parked", "attach/s", "attach/CPU-s", "RSS before", "RSS parked", "KiB/agent", "slab KiB/conn"
	for (g in p) printf "%-7s %7s %7s %9s %12s %8s KiB %8s KiB %10s %12s\n", g, kv(p[g], "agents"), kv(p[g], "parked"), kv(p[g], "attach_per_s"), kv(p[g], "attach_per_cpu_s"), kv(p[g], "rss_before_kib"), kv(p[g], "rss_parked_kib"), kv(p[g], "kib_per_agent"), kv(p[g], "slab_kib_per_conn")
	if (c != "" && h != "" && kv(h, "kib_per_agent") + 0 > 0)
		printf "cleave KiB per parked agent / hello KiB per parked agent = %.3f (slab counts both socket ends)\n", kv(c, "kib_per_agent") / kv(h, "kib_per_agent")
	if (c != "") {
		printf "\nWipe POST -> parked agent's 200 (cleave, %s agents parked)\n", kv(c, "parked")
		printf "  one at a time:   n=%s  p50 %s ms  p99 %s ms  max %s ms  (the POST itself: p50 %s ms, p99 %s ms; failed %s)\n", kv(c, "wipe_n"), kv(c, "wipe_p50_ms"), kv(c, "wipe_p99_ms"), kv(c, "wipe_max_ms"), kv(c, "post_p50_ms"), kv(c, "post_p99_ms"), kv(c, "wipe_fail")
		if (kv(c, "burst_n") != "")
			printf "  burst, 4 admin connections: n=%s  p50 %s ms  p99 %s ms  max %s ms  (all POSTs took %s ms; last answer %s ms after the first POST)\n", kv(c, "burst_n"), kv(c, "burst_p50_ms"), kv(c, "burst_p99_ms"), kv(c, "burst_max_ms"), kv(c, "burst_posts_ms"), kv(c, "burst_span_ms")
	}
	if (h != "")
		printf "  hello reference, all %s parked released by one request: p50 %s ms  p99 %s ms  max %s ms\n", kv(h, "fanout_n"), kv(h, "fanout_p50_ms"), kv(h, "fanout_p99_ms"), kv(h, "fanout_max_ms")
	if ("parked" in s)
		printf "  cleave-server stopped by SIGTERM with its agents gone while parked: exit %s after %s s\n", kv(s["parked"], "exit"), kv(s["parked"], "stop_s")
	printf "\nTargets\n"
	if (best > 0) printf "  >= 5,000 signed check-ins/s per server core:  %.0f per server CPU-s (median; best round %.0f)  %s\n", med, best, ok(med >= 5000)
	if (c != "") {
		printf "  <= 16 KiB per parked agent:                   %s KiB  %s\n", kv(c, "kib_per_agent"), ok(kv(c, "kib_per_agent") + 0 <= 16)
		printf "  10,000 parked agents in one process:          %s parked  %s\n", kv(c, "parked"), ok(kv(c, "parked") + 0 >= 10000)
		printf "  p99 <= 300 ms wipe POST -> parked agent:      %s ms  %s\n", kv(c, "wipe_p99_ms"), ok(kv(c, "wipe_n") + 0 > 0 && kv(c, "wipe_p99_ms") + 0 <= 300)
	}
}
AWK

# The corporate volume (issue 3): crypto throughput against openssl speed in this run, and the
# wipe critical path for a small and a large volume beside a plain overwrite.
echo
echo "Corporate volume (cleave-hv)"
vdir=$(mktemp -d "$work/volume.XXXXXX")
if timeout 300 "$BIN/bench/volume_bench" "$vdir" > "$work/volume.txt" 2>&1; then
	sed 's/^/  /' "$work/volume.txt"
	ossl=$(openssl speed -evp aes-256-xts -bytes 4096 -seconds 3 2>/dev/null | awk '/^AES-256-XTS/ { sub(/k$/, "", $2); print $2 / 1000 }')
	awk -v o="$ossl" '/best warm pass/ { for (i = 1; i <= NF; i++) { if ($i == "write") w = $(i + 1); if ($i == "read") r = $(i + 1) } }
		END { if (o > 0) printf "  openssl speed -evp aes-256-xts (4 KiB): %.0f MB/s; volume write %.2fx, read %.2fx (target >= 0.8x)\n", o, w / o, r / o }' "$work/volume.txt"
else
	echo "  volume_bench failed:"; tail -5 "$work/volume.txt"; failed=1
fi
rm -rf "$vdir"

# cleave-hv itself: bridge round trip and memory beyond guest RAM (with the VM running).
hvdir=$(mktemp -d "$work/hv.XXXXXX"); chmod 700 "$hvdir"
"$BIN/bin/cleave-hv" --state "$hvdir" > "$work/hv.log" 2>&1 &
hvpid=$!
for _ in $(seq 100); do [ -S "$hvdir/hv.sock" ] && break; sleep 0.05; done
sleep 0.5
if timeout 60 "$BIN/bench/hv_bench" "$hvdir/hv.sock" 5000 > "$work/hvb.txt" 2>&1; then
	sed 's/^/  /' "$work/hvb.txt"
	awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { printf "  cleave-hv memory with the VM running: %.1f MiB anonymous (incl. touched guest RAM) + %.1f MiB shared library pages (target <= 5 MiB beyond guest RAM)\n", a / 1024, f / 1024 }' "/proc/$hvpid/status"
	grep -q "corporate VM running" "$work/hv.log" || echo "  (the corporate VM was not running: no /dev/kvm?)"
else
	echo "  hv_bench failed:"; tail -5 "$work/hvb.txt"; failed=1
fi
kill "$hvpid" 2>/dev/null; wait "$hvpid" 2>/dev/null

# The product end to end (issue 4): admin POST -> verified receipt, agent online and parked.
echo
echo "End-to-end wipe (cleave-server + cleave-hv + cleave-agent, ${BENCH_E2E_ROUNDS:-20} rounds)"
if CLEAVE_BIN="$BIN/bin" CLEAVE_TEST_OUT="$work" timeout 600 "$BIN/bench/e2e_bench" "${BENCH_E2E_ROUNDS:-20}" > "$work/e2e.txt" 2>&1; then
	grep -v '^E2E ' "$work/e2e.txt" | tail -3 | sed 's/^/  /'
	awk '/^E2E / { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "  total p50 %d ms, p99 %d ms (target p99 <= 1000 ms: %s)\n", v["total_p50_ms"], v["total_p99_ms"], v["total_p99_ms"] <= 1000 ? "met" : "MISSED"
		printf "  delivery p50/p99 %d/%d ms, hypervisor wipe %d/%d ms, receipt upload + verification %d/%d ms\n", v["delivery_p50_ms"], v["delivery_p99_ms"], v["wipe_p50_ms"], v["wipe_p99_ms"], v["report_p50_ms"], v["report_p99_ms"] }' "$work/e2e.txt"
else
	echo "  e2e_bench failed:"; tail -5 "$work/e2e.txt"; failed=1
fi

# The console's queries at fleet size (issue 9 §5): device list, search, filters, summary with
# 100,000 devices, each beside GET /healthz on the same connection.
echo
echo "Console queries (cleave-server, ${BENCH_CONSOLE_DEVICES:-100000} devices)"
if CLEAVE_BIN="$BIN/bin" CLEAVE_TEST_OUT="$work" timeout 600 "$BIN/bench/console_bench" \
	"${BENCH_CONSOLE_DEVICES:-100000}" "${BENCH_CONSOLE_RUNS:-15}" > "$work/console.txt" 2>&1; then
	sed 's/^/  /' "$work/console.txt"
else
	echo "  console_bench failed:"; tail -5 "$work/console.txt"; failed=1
fi
if [ "$failed" -ne 0 ]; then
	echo "bench: a step failed (see above); logs kept in $work"
	exit 1
fi
