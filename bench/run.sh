#!/usr/bin/env bash
# Lanyard benchmark: release build, Lanyard on SQLite in a temp dir (or on PostgreSQL), the
# RSA-2048 signing baseline from `openssl speed` and the argon2id hash rate from
# `lanyard-bench --scenario hash`, then the load scenarios of `lanyard-bench`, and a summary.
#
#   bench/run.sh                      # defaults below
#   DURATION=10 CONCURRENCY=64 bench/run.sh
#   PROFILE=1 bench/run.sh            # also perf-record the server during each scenario
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/run.sh   # on PostgreSQL
#   SCENARIOS=signin SIGNIN_REQUESTS=2000 bench/run.sh
#   SCENARIOS="signin signin-mfa" SIGNIN_REQUESTS=2000 bench/run.sh
#
# Settings (environment): DURATION (measured seconds per timed scenario, default 15, at most 20),
# WARMUP (seconds, default 2), CONCURRENCY (default 32), LOG (server log filter, default info),
# PORT (default: a free loopback port), PROFILE (1 = perf record/report), SKIP_BUILD (1 = reuse
# the release binaries), SCENARIOS (default "token user-read signin"; also signin-mfa), USERS
# (signin users, default 200; signin-mfa uses at least SIGNIN_REQUESTS/4, as Lanyard sends at
# most 5 passcodes per device in 15 minutes), SIGNIN_REQUESTS (measured sign-ins per sign-in
# scenario, default 10000), SIGNIN_MAX_SECONDS (time cap of each sign-in scenario, default
# 600), RSS_AT (sign-in counts at which to read the server's
# VmRSS, default "2000,10000"), HASHES (argon2id hashes timed, default 40), ARGON2_MEMORY_KIB /
# ARGON2_ITERATIONS (passed to Lanyard and to the hash baseline; default Lanyard's 19456 / 2),
# DATABASE_URL (postgres://USER@HOST:PORT/DB: run Lanyard on PostgreSQL; a fresh database
# lanyard_bench_<random> is created next to DB with psql and dropped afterwards, unless
# PG_REUSE_DB=1, which uses DB itself and needs LANYARD_MASTER_KEY to match its data).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-32}
LOG=${LOG:-info}
PROFILE=${PROFILE:-0}
SCENARIOS=${SCENARIOS:-token user-read signin}
USERS=${USERS:-200}
SIGNIN_REQUESTS=${SIGNIN_REQUESTS:-10000}
SIGNIN_MAX_SECONDS=${SIGNIN_MAX_SECONDS:-600}
RSS_AT=${RSS_AT:-2000,10000}
HASHES=${HASHES:-40}
ARGON2_MEMORY_KIB=${ARGON2_MEMORY_KIB:-19456}
ARGON2_ITERATIONS=${ARGON2_ITERATIONS:-2}
DATABASE_URL=${DATABASE_URL:-}
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
PG_ADMIN_URL=
PG_DB=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$PG_DB" ]; then
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\"" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the database: SQLite in the temp dir, or PostgreSQL ----
DB_ARGS=()
DB_DESC="SQLite in $WORK/data"
case "$DATABASE_URL" in
  "") ;;
  postgres://*|postgresql://*)
    if [ "${PG_REUSE_DB:-0}" = 1 ]; then
      DB_URL=$DATABASE_URL
    else
      # A fresh database per run, so that nothing else on the server (tests truncating tables,
      # another master key) gets in the way; dropped again on exit.
      command -v psql >/dev/null || { echo "psql is needed to create a fresh database (or PG_REUSE_DB=1)" >&2; exit 1; }
      PG_DB="lanyard_bench_$(date +%s)_$$"
      PG_ADMIN_URL=$DATABASE_URL
      base=${DATABASE_URL%%\?*}
      query=${DATABASE_URL#"$base"}
      DB_URL="${base%/*}/$PG_DB$query"
      psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
    fi
    DB_ARGS=(--database-url "$DB_URL")
    DB_DESC="PostgreSQL ${DB_URL%%\?*}"
    ;;
  *) echo "DATABASE_URL must be postgres://... (SQLite is the default)" >&2; exit 1 ;;
esac

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

# ---- argon2id baseline: single-threaded hashes/s on the server's cores ----
# Twice: with one reused block array (as Lanyard hashes now; the limit) and with the plain API's
# fresh memory per hash (the baseline of earlier runs). Measured before the server starts and
# again after it stopped; the summary uses the faster of the two (the less disturbed one, on a
# shared machine).
SERVER_CORES=$NCPU
if [ ${#SERVER_PIN[@]} -gt 0 ]; then SERVER_CORES=$HALF; fi
SIGNIN_SCENARIOS=()
for s in $SCENARIOS; do
  case "$s" in signin|signin-mfa) SIGNIN_SCENARIOS+=("$s") ;; esac
done
hash_baseline() {
  echo "== argon2id m=$ARGON2_MEMORY_KIB KiB t=$ARGON2_ITERATIONS p=1: $HASHES hashes on one thread ($1; load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "${SERVER_PIN[@]}" "$BENCH" --scenario hash --hashes "$HASHES" "${@:3}" \
    --argon2-memory-kib "$ARGON2_MEMORY_KIB" --argon2-iterations "$ARGON2_ITERATIONS" --json | tee "$WORK/$2.txt"
}
if [ ${#SIGNIN_SCENARIOS[@]} -gt 0 ]; then
  hash_baseline "reused memory" hash --reuse-memory
  hash_baseline "fresh memory per hash" hash-fresh
fi

# ---- Lanyard on SQLite ----
if [ -z "${PORT:-}" ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
fi
echo "== starting lanyard on 127.0.0.1:$PORT ($DB_DESC, log $LOG)"
"${SERVER_PIN[@]}" "$LANYARD" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --log "$LOG" \
  "${DB_ARGS[@]}" --argon2-memory-kib "$ARGON2_MEMORY_KIB" --argon2-iterations "$ARGON2_ITERATIONS" \
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

mem_kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status"; }

run_scenario() {
  local scenario=$1
  if [ "$scenario" = signin ] || [ "$scenario" = signin-mfa ]; then
    run_signin "$scenario"
    return
  fi
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
# A sign-in scenario (signin, signin-mfa): bounded by the request count (SIGNIN_REQUESTS,
# default 10,000) with a time cap; lanyard-bench reads the server's memory at the RSS_AT counts
# and its CPU time over the measured window itself (--server-pid).
run_signin() {
  local scenario=$1
  echo "== scenario $scenario: $USERS users (signin-mfa: at least SIGNIN_REQUESTS/4), $CONCURRENCY connections, ${WARMUP}s warm-up + $SIGNIN_REQUESTS sign-ins (at most ${SIGNIN_MAX_SECONDS}s)"
  local rss_before hwm_before rss_after hwm_after
  rss_before=$(mem_kib VmRSS)
  hwm_before=$(mem_kib VmHWM)
  echo "server before the scenario: VmRSS $rss_before kB, VmHWM $hwm_before kB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  local perf_pid=
  if [ "$PROFILE" = 1 ] && command -v perf >/dev/null 2>&1; then
    # Once the users exist (the setup takes a few seconds, ~10 s more with MFA), for DURATION seconds.
    local delay=$((WARMUP + 10))
    [ "$scenario" = signin-mfa ] && delay=$((WARMUP + 20))
    (sleep "$delay"; exec perf record -q -F 499 -g -p "$SERVER_PID" -o "$WORK/perf-$scenario.data" -- sleep "$DURATION") \
      > "$WORK/perf-$scenario.log" 2>&1 &
    perf_pid=$!
  fi
  "${CLIENT_PIN[@]}" "$BENCH" --scenario "$scenario" --credentials "$CREDS" --users "$USERS" \
    --concurrency "$CONCURRENCY" --warmup "$WARMUP" --duration "$SIGNIN_MAX_SECONDS" --requests "$SIGNIN_REQUESTS" \
    --server-pid "$SERVER_PID" --rss-at "$RSS_AT" --json \
    | tee "$WORK/$scenario.txt"
  rss_after=$(mem_kib VmRSS)
  hwm_after=$(mem_kib VmHWM)
  echo "server after the scenario: VmRSS $rss_after kB, VmHWM $hwm_after kB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$rss_before $rss_after $hwm_before $hwm_after" > "$WORK/mem-$scenario"
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    echo "-- perf: hottest symbols in the server (self time)"
    perf report -i "$WORK/perf-$scenario.data" --no-children --sort symbol --percent-limit 1.5 --stdio 2>/dev/null \
      | grep -E '^ +[0-9.]+%' | cut -c1-140 | sed -E 's/[[:space:]]+$//' | head -25 || true
  fi
}

for s in $SCENARIOS; do
  case "$s" in
    token|user-read|signin|signin-mfa) run_scenario "$s" ;;
    *) echo "unknown scenario $s" >&2; exit 1 ;;
  esac
done

echo "== stopping lanyard (SIGTERM)"
kill -TERM "$SERVER_PID"
STATUS=0
wait "$SERVER_PID" || STATUS=$?
SERVER_PID=
echo "lanyard exited with status $STATUS"
if [ ${#SIGNIN_SCENARIOS[@]} -gt 0 ]; then
  hash_baseline "reused memory, after the scenarios" hash-after --reuse-memory
  hash_baseline "fresh memory per hash, after the scenarios" hash-fresh-after
fi

field() { sed -n 's/^RESULT //p' "$WORK/$1.txt" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
printf '\n== summary (%s; %s CPUs: %s; %s)\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$NCPU" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$DB_DESC"
echo "placement: $PLACEMENT"
echo "load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"
printf '%-36s %12s %9s %9s %9s\n' "" "per second" "p50 ms" "p99 ms" "errors"
printf '%-36s %12.0f\n' "openssl RSA-2048 sign (1 proc)" "$RSA_SIGN"
if [ -f "$WORK/hash.txt" ]; then
  printf '%-36s %12.1f   (before / after the scenarios: %.1f / %.1f)\n' "argon2id hash (1 thread, reused mem)" \
    "$(python3 -c "print(max($(field hash rps), $(field hash-after rps)))")" "$(field hash rps)" "$(field hash-after rps)"
  printf '%-36s %12.1f   (before / after the scenarios: %.1f / %.1f)\n' "argon2id hash (1 thread, fresh mem)" \
    "$(python3 -c "print(max($(field hash-fresh rps), $(field hash-fresh-after rps)))")" "$(field hash-fresh rps)" "$(field hash-fresh-after rps)"
fi
for s in $SCENARIOS; do
  label="lanyard $s"
  case "$s" in signin|signin-mfa) label="lanyard $s (sign-ins)" ;; esac
  printf '%-36s %12.1f %9.2f %9.2f %9d\n' "$label" "$(field "$s" rps)" "$(field "$s" p50_ms)" "$(field "$s" p99_ms)" "$(field "$s" errors)"
done
if [[ " $SCENARIOS " == *" token "* ]] && [[ " $SCENARIOS " == *" user-read "* ]]; then
python3 - "$(field token rps)" "$RSA_SIGN" "$(field user-read rps)" "$(cat "$WORK/cpu-token")" "$(cat "$WORK/cpu-user-read")" "$(getconf CLK_TCK)" "$DURATION" <<'EOF'
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
fi
for s in "${SIGNIN_SCENARIOS[@]}"; do
python3 - "$s" "$WORK/$s.txt" "$WORK/hash.txt" "$WORK/hash-after.txt" "$WORK/hash-fresh.txt" "$WORK/hash-fresh-after.txt" \
  "$SERVER_CORES" $(cat "$WORK/mem-$s") <<'EOF'
import json, sys
def result(path):
    for line in open(path):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
name = sys.argv[1]
si = result(sys.argv[2])
# The faster of the measurements before and after the scenarios.
h = max(result(sys.argv[3]), result(sys.argv[4]), key=lambda r: r["rps"])
hf = max(result(sys.argv[5]), result(sys.argv[6]), key=lambda r: r["rps"])
cores = int(sys.argv[7])
rss_before, rss_after, hwm_before, hwm = (int(x) / 1024 for x in sys.argv[8:12])
# The limit: one argon2id hash per sign-in at the reused-memory rate (how Lanyard hashes); the
# fresh-memory rate (plain API, the limit of earlier runs) for comparison.
limit, limit_fresh = cores * h["rps"], cores * hf["rps"]
rate = si["rps"]
print(f"-- {name}")
print(f"sign-ins: {rate:.1f}/s (p50 {si['p50_ms']:.0f} ms, p99 {si['p99_ms']:.0f} ms, {si['ok']} ok, {si['errors']} errors)")
print(f"physical limit: {cores} server core(s) x {h['rps']:.1f} argon2id hashes/s (reused memory) = {limit:.1f} sign-ins/s; "
      f"reached {100 * rate / limit:.0f}% -> target >= 80% {'met' if rate >= 0.8 * limit else 'NOT met'}")
print(f"  (against the fresh-memory baseline of earlier runs, {limit_fresh:.1f}/s: {100 * rate / limit_fresh:.0f}%)")
cpu = si.get("server_cpu_s")
if cpu:
    per_cpu = si["ok"] / cpu
    print(f"per server CPU-second: {per_cpu:.1f} sign-ins (server used {cpu / si['seconds']:.2f} cores); "
          f"{100 * per_cpu / h['cpu_rps']:.0f}% of {h['cpu_rps']:.1f} hashes per CPU-second")
    hcpu = si.get("server_hash_cpu_s")
    if hcpu:
        # Measured in the same window: robust to the machine's speed drifting between the
        # baseline and the scenario.
        print(f"hashing threads: {100 * hcpu / cpu:.0f}% of the server's CPU; {1000 * hcpu / si['ok']:.1f} ms per sign-in "
              f"(alone: {1000 / h['cpu_rps']:.1f} ms per hash), everything else {1000 * (cpu - hcpu) / si['ok']:.1f} ms")
steps = si.get("step_mean_ms") or {}
if steps:
    print("mean ms per step: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
print(f"server memory: VmRSS {rss_before:.1f} MiB before the scenario, {rss_after:.1f} MiB after; "
      f"VmHWM (peak) {hwm:.1f} MiB after ({hwm_before:.1f} MiB before)")
for m in si.get("memory", []):
    print(f"  {m['at']}: VmRSS {m['vmrss_kib'] / 1024:.1f} MiB, VmHWM {m['vmhwm_kib'] / 1024:.1f} MiB")
EOF
done
