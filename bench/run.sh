#!/usr/bin/env bash
# Lanyard benchmark: release build, Lanyard on SQLite in a temp dir, the RSA-2048 signing
# baseline from `openssl speed`, then the two load scenarios of `lanyard-bench`, and a summary.
#
#   bench/run.sh                      # defaults below
#   DURATION=10 CONCURRENCY=64 bench/run.sh
#   PROFILE=1 bench/run.sh            # also perf-record the server during each scenario
#
# Settings (environment): DURATION (measured seconds per scenario, default 15, at most 20),
# WARMUP (seconds, default 2), CONCURRENCY (default 32), LOG (server log filter, default info),
# PORT (default: a free loopback port), PROFILE (1 = perf record/report), SKIP_BUILD (1 = reuse
# the release binaries).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-32}
LOG=${LOG:-info}
PROFILE=${PROFILE:-0}
if awk "BEGIN { exit !($DURATION > 20) }"; then
  echo "DURATION is capped at 20 s per scenario" >&2
  DURATION=20
fi

cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building release binaries (lanyard, lanyard-bench)"
  cargo build --release -p lanyard -p lanyard-bench
fi
LANYARD=$TARGET_DIR/release/lanyard
BENCH=$TARGET_DIR/release/lanyard-bench

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lanyard-bench.XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- CPU placement: server and load generator on different cores ----
NCPU=$(nproc)
SERVER_PIN=()
CLIENT_PIN=()
PLACEMENT="not pinned"
if command -v taskset >/dev/null 2>&1 && [ "$NCPU" -ge 2 ]; then
  HALF=$((NCPU / 2))
  SERVER_CPUS="0-$((HALF - 1))"
  CLIENT_CPUS="$HALF-$((NCPU - 1))"
  SERVER_PIN=(taskset -c "$SERVER_CPUS")
  CLIENT_PIN=(taskset -c "$CLIENT_CPUS")
  PLACEMENT="server on CPU $SERVER_CPUS, load generator on CPU $CLIENT_CPUS (taskset)"
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- RSA-2048 baseline on the server's cores (before the server starts) ----
echo "== openssl speed -seconds 5 rsa2048 ($PLACEMENT)"
"${SERVER_PIN[@]}" openssl speed -seconds 5 rsa2048 > "$WORK/openssl.txt" 2>&1
RSA_SIGN=$(awk '/^rsa +2048 +bits/ { print $(NF-1) }' "$WORK/openssl.txt" | tail -1)
tail -3 "$WORK/openssl.txt"

# ---- Lanyard on SQLite ----
if [ -z "${PORT:-}" ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
fi
echo "== starting lanyard on 127.0.0.1:$PORT (SQLite in $WORK/data, log $LOG)"
"${SERVER_PIN[@]}" "$LANYARD" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --log "$LOG" \
  > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "lanyard exited:"; cat "$WORK/server.log"; exit 1
  fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null
CREDS=$WORK/data/admin-credentials.json

run_scenario() {
  local scenario=$1
  echo "== scenario $scenario: $CONCURRENCY connections, ${WARMUP}s warm-up + ${DURATION}s"
  local perf_pid=
  if [ "$PROFILE" = 1 ] && command -v perf >/dev/null 2>&1; then
    (sleep "$WARMUP"; exec perf record -q -F 499 -g -p "$SERVER_PID" -o "$WORK/perf-$scenario.data" -- sleep "$DURATION") \
      > "$WORK/perf-$scenario.log" 2>&1 &
    perf_pid=$!
  fi
  # Server CPU time (user + system) over the measured window, from /proc/PID/stat.
  (sleep "$WARMUP"; a=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"); sleep "$DURATION"
   b=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"); echo $((b - a)) > "$WORK/cpu-$scenario") &
  local cpu_pid=$!
  "${CLIENT_PIN[@]}" "$BENCH" --scenario "$scenario" --credentials "$CREDS" \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" --json \
    | tee "$WORK/$scenario.txt"
  wait "$cpu_pid" || true
  echo "server CPU time in the measured window: $(awk -v t="$(cat "$WORK/cpu-$scenario")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f s", t / hz }')"
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    echo "-- perf: hottest symbols in the server (self time)"
    perf report -i "$WORK/perf-$scenario.data" --no-children --sort symbol --percent-limit 1.5 --stdio 2>/dev/null \
      | grep -E '^ +[0-9.]+%' | cut -c1-140 | sed -E 's/[[:space:]]+$//' | head -25 || true
    echo "-- perf: share by thread (comm)"
    perf report -i "$WORK/perf-$scenario.data" --no-children --sort comm --stdio 2>/dev/null \
      | grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//' | head -5 || true
  fi
}
run_scenario token
run_scenario user-read

echo "== stopping lanyard (SIGTERM)"
kill -TERM "$SERVER_PID"
STATUS=0
wait "$SERVER_PID" || STATUS=$?
SERVER_PID=
echo "lanyard exited with status $STATUS"

field() { sed -n 's/^RESULT //p' "$WORK/$1.txt" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
TOK_RPS=$(field token rps)
USR_RPS=$(field user-read rps)
printf '\n== summary (%s; %s CPUs: %s)\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$NCPU" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"
printf '%-36s %12s %9s %9s %9s\n' "" "requests/s" "p50 ms" "p99 ms" "errors"
printf '%-36s %12.0f\n' "openssl RSA-2048 sign (1 proc)" "$RSA_SIGN"
for s in token user-read; do
  printf '%-36s %12.0f %9.2f %9.2f %9d\n' "lanyard $s" "$(field "$s" rps)" "$(field "$s" p50_ms)" "$(field "$s" p99_ms)" "$(field "$s" errors)"
done
python3 - "$TOK_RPS" "$RSA_SIGN" "$USR_RPS" "$(cat "$WORK/cpu-token")" "$(cat "$WORK/cpu-user-read")" "$(getconf CLK_TCK)" "$DURATION" <<'EOF'
import sys
tok, rsa, usr, cpu_tok, cpu_usr, hz, dur = map(float, sys.argv[1:])
cpu_tok, cpu_usr = cpu_tok / hz, cpu_usr / hz
# openssl speed divides by CPU time; the same view of Lanyard: requests per second of server CPU.
tok_cpu = tok * dur / cpu_tok if cpu_tok else 0
usr_cpu = usr * dur / cpu_usr if cpu_usr else 0
print(f"server CPU use: token {cpu_tok / dur:.2f} cores, user-read {cpu_usr / dur:.2f} cores")
print(f"client_credentials / RSA-2048 sign rate: {100 * tok / rsa:.0f}% wall-clock, {100 * tok_cpu / rsa:.0f}% per server CPU-second "
      f"({tok_cpu:.0f} tokens per CPU-s); target >= 75% -> {'met' if tok >= 0.75 * rsa else 'NOT met'}")
print(f"user reads: {usr:.0f}/s wall-clock, {usr_cpu:.0f} per server CPU-s; target 10,000/s -> {'met' if usr >= 10000 else 'NOT met'} ({100 * usr / 10000:.0f}%)")
EOF
