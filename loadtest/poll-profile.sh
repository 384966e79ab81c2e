#!/usr/bin/env bash
# Where a status poll's time goes in the gateway: the release build of booking-core, the
# gateway and the worker on ports of their own, 5,000 queued visitors, wrk polling with
# loadtest/status.lua, and one of two looks at the gateway alone:
#   perf (default): `perf record -g -e cpu-clock` (no hardware counters on many machines here)
#     for the middle of a run at 256 connections; self time by symbol and by shared object
#     (the kernel's share is the sockets' work, which any server pays), and the gateway's user
#     and system CPU per poll from /proc over the run.
#   callgrind (CALLGRIND=1): the gateway under `valgrind --tool=callgrind` (16 connections: it
#     runs ~50× slower), instructions counted for 20 s after a 10 s warm-up; instructions per
#     poll, the same whatever else the machine is doing, so a change's effect shows in one
#     run. Inclusive and self counts by function. (SHA-256 runs without the CPU's SHA
#     extensions under valgrind: its share there is far above its native one.)
#   joins (JOINS=1, with perf): the same for joins, wrk with loadtest/join.lua at 64
#     connections (each request a new visitor from its own address), with the CPU per join of
#     Redis and of wrk itself beside the gateway's.
# Usage: [CALLGRIND=1 | JOINS=1] loadtest/poll-profile.sh [SECONDS]   (perf: default 12 s)
# BIN_DIR=dir runs the booking-core, queue-gateway, admission-worker and marquee-loadtest
# binaries found there instead of building the tree's (to compare two builds).
# Writes loadtest/results/poll-profile.txt (or poll-callgrind.txt) and prints its head.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-12}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
bin="${BIN_DIR:-$CARGO_TARGET_DIR/release}"
log() { printf '\033[1m[poll-profile]\033[0m %s\n' "$*" >&2; }
tools="wrk curl perf"
[ -n "${CALLGRIND:-}" ] && tools="wrk curl valgrind callgrind_annotate callgrind_control"
for tool in $tools; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install wrk curl linux-perf valgrind)"; exit 1; }
done
bash scripts/services.sh >&2
[ -n "${BIN_DIR:-}" ] || cargo build --release -q -p booking-core -p queue-gateway -p admission-worker -p marquee-loadtest

work=$(mktemp -d)
psql() { command psql -h 127.0.0.1 -U postgres -d postgres -qAt "$@"; }
psql -c "DROP DATABASE IF EXISTS marquee_pollprof WITH (FORCE)" -c "CREATE DATABASE marquee_pollprof"
redis-cli del wr:pollprof-events >/dev/null
export MARQUEE_ENV=local MARQUEE_CONFIG_DIR="$root/config"
export MARQUEE_DATABASE__URL=postgres://postgres@127.0.0.1:5432/marquee_pollprof
export MARQUEE_ADMISSION__KEYS_DIR="$work/keys"
export MARQUEE_REDIS__EVENTS_KEY="wr:pollprof-events"
export MARQUEE_GATEWAY__LISTEN=127.0.0.1:18280 MARQUEE_GATEWAY__BOOKING_URL=http://127.0.0.1:18281
export MARQUEE_BOOKING__LISTEN=127.0.0.1:18281 MARQUEE_WORKER__LISTEN=127.0.0.1:19302
export MARQUEE_LOG__FILTER=warn
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_url() { for _ in $(seq 1 600); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done; log "$1 never came up"; exit 1; }
"$bin/booking-core" >"$work/booking.log" 2>&1 & pids+=($!); wait_url http://127.0.0.1:18281/readyz
"$bin/queue-gateway" >"$work/gateway.log" 2>&1 & gateway_pid=$!; pids+=($gateway_pid); wait_url http://127.0.0.1:18280/healthz
"$bin/admission-worker" >"$work/worker.log" 2>&1 & pids+=($!); wait_url http://127.0.0.1:19302/readyz

setup=$("$bin/marquee-loadtest" queue-setup --url http://127.0.0.1:18280 --visitors 5000 --tokens-file "$work/tokens")
path=$(echo "$setup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
url="http://127.0.0.1:18280$path"
poll() { TOKENS="$work/tokens" wrk -t"$1" -c"$2" -d"$3s" --latency -s loadtest/status.lua "$url"; }
what=poll conns=256
if [ -n "${JOINS:-}" ]; then
  jpath=$(echo "$setup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_path"])')
  poll() { wrk -t"$1" -c"$(( $2 < 64 ? $2 : 64 ))" -d"$3s" --latency -s loadtest/join.lua "http://127.0.0.1:18280$jpath"; }
  what=join conns=64
fi
mkdir -p loadtest/results
stamp="$(date -u +%FT%TZ), code at $(git rev-parse --short HEAD)"

if [ -n "${CALLGRIND:-}" ]; then
  # The same gateway again, under callgrind, counting nothing until it is warm.
  kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
    "$bin/queue-gateway" >"$work/gateway-cg.log" 2>&1 & gateway_pid=$!; pids+=($gateway_pid)
  wait_url http://127.0.0.1:18280/healthz
  log "warming the gateway under callgrind for 10 s, then counting for 20 s"
  poll 1 16 10 >/dev/null
  callgrind_control -i on "$gateway_pid" >/dev/null
  poll 1 16 20 >"$work/wrk.txt"
  callgrind_control -i off "$gateway_pid" >/dev/null
  callgrind_control -d "$gateway_pid" >/dev/null
  polls=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  dump=$(ls "$work"/cg.out.* | head -n 1)
  total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  # Instructions per poll, share, function (the binary's path left out).
  table() {
    callgrind_annotate --inclusive="$1" "$dump" 2>/dev/null | python3 -c '
import re, sys
polls, n = int(sys.argv[1]), int(sys.argv[2])
shown = 0
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)$", line)
    if not m or "PROGRAM TOTALS" in line or shown >= n:
        continue
    name = re.sub(r"\s*\[/[^]]*\]\s*$", "", m.group(3)).removeprefix("???:")
    ir = int(m.group(1).replace(",", ""))
    print("%8.0f  %5s%%  %s" % (ir / polls, m.group(2), name))
    shown += 1
' "$polls" "$2"
  }
  out=loadtest/results/poll-callgrind.txt
  {
    echo "# status poll under callgrind: $stamp"
    echo "polls counted: $polls; instructions per poll: $((total / polls))"
    echo
    echo "## inclusive (instructions per poll, share, function)"
    table yes 70
    echo
    echo "## self"
    table no 40
  } >"$out"
  head -n 50 "$out"
  exit 0
fi

poll 2 256 3 >/dev/null
stat() { awk '{print $14, $15}' "/proc/$1/stat"; }  # user and system clock ticks
redis_pid=$(redis-cli info server | awk -F: '/^process_id:/ {print $2}' | tr -d '\r')
log "${what}s for ${secs}s, perf on the gateway (pid $gateway_pid) for the middle $((secs - 4))s"
read -r u0 s0 < <(stat "$gateway_pid")
read -r ru0 rs0 < <(stat "$redis_pid")
poll 2 256 "$secs" >"$work/wrk.txt" &
wrk_pid=$!
sleep 0.2
load_pid=$(pgrep -n -x wrk)
read -r wu0 ws0 < <(stat "$load_pid")
sleep 1.8
perf record -q --call-graph "${CALL_GRAPH:-fp}" -e cpu-clock -F "${PERF_HZ:-2000}" -p "$gateway_pid" -o "$work/perf.data" -- sleep $((secs - 4)) 2>/dev/null
read -r wu1 ws1 < <(stat "$load_pid")
wait "$wrk_pid"
read -r u1 s1 < <(stat "$gateway_pid")
read -r ru1 rs1 < <(stat "$redis_pid")
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
polls=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
hz=$(getconf CLK_TCK)
per_poll() { python3 -c "print(f'{$1 / $hz / $polls * 1e6:.1f}')"; }

# perf's table without its comments and padding; reads all of perf's output (no SIGPIPE).
report() {
  perf report -i "$work/perf.data" -g none --no-children --sort "$1" --stdio 2>/dev/null \
    | awk -v n="$2" '!/^#/ && NF && shown < n { sub(/[ -]+$/, ""); print; shown++ }'
}
out=loadtest/results/$what-profile.txt
{
  echo "# $what profile ($conns connections): $stamp"
  echo "${what}s/s: $rps (perf running for part of it); CPU per $what: gateway user $(per_poll $((u1 - u0))) µs, system $(per_poll $((s1 - s0))) µs; Redis $(per_poll $((ru1 - ru0 + rs1 - rs0))) µs; wrk $(per_poll $(( (wu1 - wu0 + ws1 - ws0) * secs / (secs - 2) ))) µs (wrk's read over its first secs − 2 s, scaled to the whole run)"
  echo
  echo "## self time by shared object"
  report dso 12
  echo
  echo "## self time by symbol"
  report symbol 60
} >"$out"
cp "$work/perf.data" "loadtest/results/$what-perf.data"  # for `perf report -i` by hand
head -n 40 "$out"
