#!/usr/bin/env bash
# What a hold costs the database, against what a pgbench -N transaction costs it: the hot show
# (64 clients holding 2–4 seats of one 10,000-seat show, then releasing them) and pgbench -N
# (64 clients, 2 threads), alternating, each from a checkpoint, with Postgres's own counters
# read around each run: commits (pg_stat_database.xact_commit), WAL records, bytes, writes
# and flushes (pg_stat_wal), and the CPU time of every Postgres process and of booking-core
# (from /proc) and of the load generator and pgbench themselves (bash's own `time`; the
# generator's includes its setup, ~0.1 s). Per hold and per pgbench transaction, so it says
# whether a hold is bounded by commits (WAL flushes) or by work per statement (CPU).
# Usage: loadtest/hold-cost.sh [SECONDS] [PAIRS]   (default: 15 s runs, 3 pairs)
#   BATCH_MAXES="1 64"  in each pair, a hot show for each `[booking] hold_batch_max` (1: every
#                       hold and release alone; default: the configured value only); `64x1`
#                       also sets `hold_batches_per_show` (here 1)
#   CLIENTS=8           the hot show's clients (default 64; pgbench keeps 64)
#   BIN_DIR=dir         run the booking-core and marquee-loadtest binaries found there instead
#                       of building the tree's (to compare two builds, each in a folder of its own)
# Writes loadtest/results/hold-cost.md and prints it (with each hot show's hold latency).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-15}
pairs=${2:-3}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
bin="${BIN_DIR:-$CARGO_TARGET_DIR/release}"
log() { printf '\033[1m[hold-cost]\033[0m %s\n' "$*" >&2; }
command -v pgbench >/dev/null || { log "missing pgbench (apt-get install postgresql-contrib)"; exit 1; }
bash scripts/services.sh >&2
[ -n "${BIN_DIR:-}" ] || cargo build --release -q -p booking-core -p marquee-loadtest

work=$(mktemp -d)
psql() { command psql -h 127.0.0.1 -U postgres -d postgres -qAt "$@"; }
psql -c "DROP DATABASE IF EXISTS marquee_holdcost WITH (FORCE)" -c "CREATE DATABASE marquee_holdcost"
psql -c "DROP DATABASE IF EXISTS marquee_pgbench WITH (FORCE)" -c "CREATE DATABASE marquee_pgbench"
redis-cli del wr:holdcost-events >/dev/null
export MARQUEE_ENV=local MARQUEE_CONFIG_DIR="$root/config"
export MARQUEE_DATABASE__URL=postgres://postgres@127.0.0.1:5432/marquee_holdcost
export MARQUEE_DATABASE__MAX_CONNECTIONS=64
export MARQUEE_ADMISSION__KEYS_DIR="$work/keys"
export MARQUEE_REDIS__EVENTS_KEY="wr:holdcost-events"
export MARQUEE_BOOKING__LISTEN=127.0.0.1:18181
export MARQUEE_LOG__FILTER=warn
booking_pid=
cleanup() { [ -n "$booking_pid" ] && kill "$booking_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_url() { for _ in $(seq 1 150); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done; log "$1 never came up"; exit 1; }
start_booking() { "$bin/booking-core" >>"$work/booking.log" 2>&1 & booking_pid=$!; wait_url http://127.0.0.1:18181/readyz; }
stop_booking() { kill "$booking_pid"; wait "$booking_pid" 2>/dev/null || true; booking_pid=; }

# Clock ticks (utime + stime) of the processes named $1, or of pid $2.
ticks_of() {
  if [ -n "${2:-}" ]; then
    awk '{print $14 + $15}' "/proc/$2/stat" 2>/dev/null || echo 0
  else
    local t=0
    for p in $(pgrep -x "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    echo "$t"
  fi
}
# Postgres's CPU: the postmaster's children come and go (pgbench's backends end with it), so
# the exited children's time is read from the postmaster's cumulative fields (cutime, cstime)
# as well as the living ones'.
pg_ticks() {
  local master
  master=$(pgrep -o -x postgres || pgrep -o postgres)
  local own=0
  for p in $(pgrep -P "$master"); do own=$((own + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo $((own + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$master/stat")))
}
# commits, WAL records, WAL bytes, WAL writes, WAL flushes
pg_counters() {
  psql -F' ' -c "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'),
                        wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal"
}
hz=$(getconf CLK_TCK)
# The user and system seconds of what `time` runs, summed (the load generators' own CPU).
TIMEFORMAT='%U %S'
cpu_s() { awk '{print $1 + $2}' "$1"; }
clients=${CLIENTS:-64}
maxes=${BATCH_MAXES:-default}

pgbench -i -q -s 10 -h 127.0.0.1 -U postgres marquee_pgbench >/dev/null 2>&1
rows=()
for pair in $(seq 1 "$pairs"); do
  log "pair $pair: pgbench -N, then the hot show, ${secs}s each"
  psql -c CHECKPOINT
  read -r c0 r0 b0 w0 s0 <<<"$(pg_counters marquee_pgbench)"
  p0=$(pg_ticks)
  { time pgbench -N -c 64 -j 2 -T "$secs" -h 127.0.0.1 -U postgres marquee_pgbench >"$work/pgbench.out" 2>/dev/null; } 2>"$work/client.cpu"
  tps=$(awk '/^tps/ && !seen {print $3; seen = 1}' "$work/pgbench.out")
  p1=$(pg_ticks)
  read -r c1 r1 b1 w1 s1 <<<"$(pg_counters marquee_pgbench)"
  rows+=("pgbench $pair $tps $((c1 - c0)) $((r1 - r0)) $((b1 - b0)) $((w1 - w0)) $((s1 - s0)) $((p1 - p0)) 0 $(cpu_s "$work/client.cpu") - - -")

  for max in $maxes; do
    unset MARQUEE_BOOKING__HOLD_BATCH_MAX MARQUEE_BOOKING__HOLD_BATCHES_PER_SHOW
    if [ "$max" != default ]; then export MARQUEE_BOOKING__HOLD_BATCH_MAX=${max%x*}; fi
    case $max in *x*) export MARQUEE_BOOKING__HOLD_BATCHES_PER_SHOW=${max#*x} ;; esac
    start_booking
    psql -c CHECKPOINT
    read -r c0 r0 b0 w0 s0 <<<"$(pg_counters marquee_holdcost)"
    p0=$(pg_ticks); k0=$(ticks_of booking-core "$booking_pid")
    { time "$bin/marquee-loadtest" hot-show --url http://127.0.0.1:18181 --keys-dir "$work/keys" --seconds "$secs" --clients "$clients" >"$work/hot.out"; } 2>"$work/client.cpu"
    hot=$(cat "$work/hot.out")
    p1=$(pg_ticks); k1=$(ticks_of booking-core "$booking_pid")
    read -r c1 r1 b1 w1 s1 <<<"$(pg_counters marquee_holdcost)"
    read -r hps p50 p99 doubles <<<"$(echo "$hot" | python3 -c 'import json,sys; r = json.load(sys.stdin); print(r["holds_per_s"], r["p50_ms"], r["p99_ms"], "{}/{}".format(r["double_holds"], r["errors"]))')"
    rows+=("hot:$max $pair $hps $((c1 - c0)) $((r1 - r0)) $((b1 - b0)) $((w1 - w0)) $((s1 - s0)) $((p1 - p0)) $((k1 - k0)) $(cpu_s "$work/client.cpu") $p50 $p99 $doubles")
    stop_booking
  done
done

mkdir -p loadtest/results
python3 - "$secs" "$hz" "${rows[@]}" <<'EOF' | tee loadtest/results/hold-cost.md
import sys
secs, hz = float(sys.argv[1]), float(sys.argv[2])
print("| run | pair | per second | ratio to the pair's pgbench | commits per unit | WAL records per unit | WAL bytes per unit | WAL flushes per unit | units per WAL flush | Postgres CPU ms per unit | booking-core CPU ms per unit | load generator CPU ms per unit | Postgres CPU busy (of 2 cores) | hold p50 / p99 ms | double holds / errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
pgbench = {}
for row in sys.argv[3:]:
    kind, pair, rate, commits, recs, wbytes, writes, syncs, pg, bc, client, p50, p99, doubles = row.split()
    rate = float(rate)
    units = rate * secs
    if kind == "pgbench":
        pgbench[pair] = rate
        name, ratio, lat = "pgbench -N transaction", "—", "—"
    else:
        batch = kind.split(":")[1]
        size, _, runners = batch.partition("x")
        how = ("as configured" if batch == "default" else "each alone" if size == "1"
               else f"batches of ≤ {size}" + (f", {runners} at once" if runners else ""))
        name = f"hot-show hold (and its release), {how}"
        ratio = f"{rate / pgbench[pair]:.2f}" if pgbench.get(pair) else "—"
        lat = f"{float(p50):.1f} / {float(p99):.1f}"
    per = lambda x: float(x) / units if units else 0.0
    print(f"| {name} | {pair} | {rate:.0f} | {ratio} | {per(commits):.2f} | {per(recs):.1f} | {per(wbytes):.0f} | "
          f"{per(syncs):.3f} | {units / float(syncs) if float(syncs) else 0:.1f} | "
          f"{per(pg) / hz * 1000:.3f} | {per(bc) / hz * 1000:.3f} | {per(client) * 1000:.3f} | "
          f"{float(pg) / hz / secs:.2f} | {lat} | {doubles} |")
EOF
