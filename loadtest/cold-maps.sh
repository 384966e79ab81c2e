#!/usr/bin/env bash
# Cold seat maps at the design's scale, with what each process spends on one: booking-core
# and the gateway started fresh on `marquee_scale` (load it first with `loadtest/catalog.sh`),
# 300 maps to open their connections (not counted), then N maps of tomorrow's shows nobody has
# opened, each once, from 256 readers through the gateway. Prints one line: maps a second,
# p50 and p99, and the CPU per map (ms, from /proc) of booking-core, the gateway, every
# Postgres process and the readers, and Postgres's transactions and blocks read per map.
# Usage: loadtest/cold-maps.sh [N] [BIN_DIR]   (default 6000, the tree's release build)
# To compare two builds, copy each one's booking-core, queue-gateway and marquee-loadtest to
# a folder of its own and alternate: `for i in 1 2 3; do loadtest/cold-maps.sh 6000 /tmp/a;
# loadtest/cold-maps.sh 6000 /tmp/b; done`. Each run starts at a random show, so runs meet
# different shows (a show read once is warm in Postgres's cache, not in booking-core's).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-6000}
bin=${2:-${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}/release}
psql() { command psql -h 127.0.0.1 -U postgres -qAt "$@"; }
[ "$(psql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'marquee_scale'")" = 1 ] \
  || { echo "no marquee_scale database: run loadtest/catalog.sh first" >&2; exit 1; }
work=$(mktemp -d)
export MARQUEE_ENV=local MARQUEE_CONFIG_DIR="$PWD/config"
export MARQUEE_DATABASE__URL=postgres://postgres@127.0.0.1:5432/marquee_scale
export MARQUEE_ADMISSION__KEYS_DIR="$work/keys" MARQUEE_REDIS__EVENTS_KEY="wr:scale-events"
export MARQUEE_GATEWAY__LISTEN=127.0.0.1:18180 MARQUEE_GATEWAY__BOOKING_URL=http://127.0.0.1:18181
export MARQUEE_BOOKING__LISTEN=127.0.0.1:18181 MARQUEE_LOG__FILTER=warn
# One address stands for the 256 readers (as in catalog.sh).
export MARQUEE_GATEWAY__PER_IP_PER_SECOND=1000000 MARQUEE_GATEWAY__PER_IP_BURST=1000000
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_url() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done; echo "$1 never came up" >&2; exit 1; }
"$bin/booking-core" >"$work/booking.log" 2>&1 & booking=$!; pids+=($booking)
wait_url http://127.0.0.1:18181/readyz
"$bin/queue-gateway" >"$work/gateway.log" 2>&1 & gateway=$!; pids+=($gateway)
wait_url http://127.0.0.1:18180/healthz
maps() { "$bin/marquee-loadtest" catalog-read --url http://127.0.0.1:18180 --seconds 120 --cold-seat-maps "$1"; }
maps 300 >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Postgres's backends live as long as the pools' connections, which outlast the run.
pg_ticks() { local p s=0; for p in $(pgrep -x postgres); do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$s"; }
pg_stats() { psql -d marquee_scale -c "SELECT xact_commit || ',' || blks_read FROM pg_stat_database WHERE datname = 'marquee_scale'"; }
s0=$(pg_stats); b0=$(ticks $booking); g0=$(ticks $gateway); p0=$(pg_ticks)
# The readers' user and system seconds, by bash's own `time` (no /usr/bin/time needed).
TIMEFORMAT='%U %S'
{ time maps "$n" >"$work/out"; } 2>"$work/readers"
out=$(cat "$work/out")
b1=$(ticks $booking); g1=$(ticks $gateway); p1=$(pg_ticks); s1=$(pg_stats)
python3 - "$out" "$b0" "$b1" "$g0" "$g1" "$p0" "$p1" "$s0" "$s1" "$(tail -n 1 "$work/readers")" "$(getconf CLK_TCK)" <<'PY'
import json, sys
o = json.loads(sys.argv[1])
b0, b1, g0, g1, p0, p1 = map(int, sys.argv[2:8])
(x0, r0), (x1, r1) = (map(int, s.split(",")) for s in sys.argv[8:10])
user, system = map(float, sys.argv[10].split())
n, tck = o["answers"], int(sys.argv[11])
ms = lambda ticks: ticks * 1000 / tck / n
print(f"{n} cold maps, {o['answers_per_s']:.0f}/s, p50 {o['p50_ms']:.1f} ms, p99 {o['p99_ms']:.1f} ms, "
      f"{o['failures']} failures | CPU ms a map: booking-core {ms(b1 - b0):.3f}, gateway {ms(g1 - g0):.3f}, "
      f"postgres {ms(p1 - p0):.3f}, readers {(user + system) * 1000 / n:.3f} | "
      f"postgres transactions {(x1 - x0) / n:.2f}, blocks read {(r1 - r0) / n:.1f} a map")
PY
