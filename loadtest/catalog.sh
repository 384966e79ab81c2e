#!/usr/bin/env bash
# The catalog at the design's scale (issue 16): 5,000 theaters in 200 cities, 50,000 shows a
# day for a week (350,000 shows) in a database of its own (`marquee_scale`, kept between runs:
# the loader adds only what is missing, so a second run loads in seconds), then fans'
# searches (`GET /v1/movies?city=&date=&genre=`, 256 readers, a city always, a date four
# times in five, a genre one time in three; taking gzip, as browsers do) through the gateway,
# in three alternating pairs with a bare hyper server answering as many bytes (as they came
# over the wire, gzipped), and the seat maps of shows nobody has
# opened yet. Seats are made in bulk for tomorrow's 50,000 shows (`SEAT_DAYS`, default 1; 150
# each): searches never read seats, and the cold seat maps are tomorrow's.
# Usage: loadtest/catalog.sh [SECONDS]   (default 30: 3 pairs of 5 s + 5 s; then 2,000 cold seat maps)
# BIN_DIR=dir runs the booking-core, queue-gateway and marquee-loadtest binaries found there
# instead of building the tree's (to compare two builds, each copied to a folder of its own).
# Writes loadtest/results/catalog.md (and raw outputs beside run.sh's) and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-30}
half=$(( (secs / 3 + 1) / 2 ))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
bin="${BIN_DIR:-$CARGO_TARGET_DIR/release}"
log() { printf '\033[1m[catalog]\033[0m %s\n' "$*" >&2; }
bash scripts/services.sh >&2
[ -n "${BIN_DIR:-}" ] || cargo build --release -q -p booking-core -p queue-gateway -p marquee-loadtest
raw=${RAW_DIR:-loadtest/results/raw-catalog-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$raw"
keep() { tee "$raw/$1"; }
psql() { command psql -h 127.0.0.1 -U postgres -d postgres -qAt "$@"; }
[ "$(psql -c "SELECT 1 FROM pg_database WHERE datname = 'marquee_scale'")" = 1 ] || psql -c "CREATE DATABASE marquee_scale"

work=$(mktemp -d)
export MARQUEE_ENV=local MARQUEE_CONFIG_DIR="$root/config"
export MARQUEE_DATABASE__URL=postgres://postgres@127.0.0.1:5432/marquee_scale
export MARQUEE_ADMISSION__KEYS_DIR="$work/keys"
export MARQUEE_REDIS__EVENTS_KEY="wr:scale-events"
export MARQUEE_GATEWAY__LISTEN=127.0.0.1:18180 MARQUEE_GATEWAY__BOOKING_URL=http://127.0.0.1:18181
export MARQUEE_BOOKING__LISTEN=127.0.0.1:18181
export MARQUEE_LOG__FILTER=warn
# The 256 readers stand for many fans but come from one address: a fan's per-address limit
# (local: 1,000 a second) would refuse most of them once the gateway answers faster than that.
export MARQUEE_GATEWAY__PER_IP_PER_SECOND=1000000 MARQUEE_GATEWAY__PER_IP_BURST=1000000
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_url() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done; log "$1 never came up"; exit 1; }
# booking-core first: it migrates the database the loader writes into.
"$bin/booking-core" >"$work/booking.log" 2>&1 & booking_pid=$!; pids+=($booking_pid)
wait_url http://127.0.0.1:18181/readyz
log "loading the catalog (what is already there is kept)"
load=$("$bin/marquee-loadtest" catalog-load --database-url "$MARQUEE_DATABASE__URL" --seat-days "${SEAT_DAYS:-1}" | keep catalog-load.json)
"$bin/queue-gateway" >"$work/gateway.log" 2>&1 & gateway_pid=$!; pids+=($gateway_pid)
wait_url http://127.0.0.1:18180/healthz
# booking-core's memory (MiB): before any search, once the first search has read the listing
# of every upcoming show (timed: it waits for that read), and at the end (with its peak); the
# gateway's at the end (with its peak: what passing 256 readers' answers through costs it).
rss() { awk -v k="$1:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/${2:-$booking_pid}/status"; }
rss_idle=$(rss VmRSS)
first_s=$(curl -fs -o /dev/null -w '%{time_total}' 'http://127.0.0.1:18180/v1/movies?city=scale+city+000')
rss_listed=$(rss VmRSS)
queries() { curl -fs http://127.0.0.1:18181/metrics | awk '/^marquee_catalog_queries_total/ {print $2}'; }
read_run() { "$bin/marquee-loadtest" catalog-read --url "$1" --seconds "$2" "${@:3}"; }

# The bare server answers the gateway's mean answer, measured by a short run first.
size=$(read_run http://127.0.0.1:18180 2 --readers 16 | python3 -c 'import json,sys; print(json.load(sys.stdin)["mean_bytes"])')
"$bin/marquee-loadtest" bare --listen 127.0.0.1:18190 --body-bytes "$size" 2>/dev/null & pids+=($!); sleep 0.3
log "searches: 3 alternating pairs of ${half}s, 256 readers (bare server answering $size B, then the gateway)"
pairs=()
for pair in 1 2 3; do
  bare=$(read_run http://127.0.0.1:18190 "$half" | keep "bare-$pair.json")
  q0=$(queries)
  gw=$(read_run http://127.0.0.1:18180 "$half" | keep "search-$pair.json")
  q1=$(queries)
  pairs+=("$(python3 -c 'import json,sys; print(json.dumps({"bare": json.loads(sys.argv[1]), "gw": json.loads(sys.argv[2]), "queries": int(float(sys.argv[4])) - int(float(sys.argv[3]))}, separators=(",", ":")))' "$bare" "$gw" "$q0" "$q1")")
done
log "cold seat maps: 2,000 of tomorrow's shows nobody has opened, 256 readers"
cold=$(read_run http://127.0.0.1:18180 60 --cold-seat-maps 2000 | keep cold-seat-maps.json)
memory=$(printf '{"idle":%s,"listed":%s,"end":%s,"peak":%s,"first_search_s":%s,"gateway_end":%s,"gateway_peak":%s}' "$rss_idle" "$rss_listed" "$(rss VmRSS)" "$(rss VmHWM)" "$first_s" "$(rss VmRSS "$gateway_pid")" "$(rss VmHWM "$gateway_pid")")
ttl_ms=${MARQUEE_BOOKING__CATALOG_CACHE_TTL_MS:-$(awk -F' *= *' '/^catalog_cache_ttl_ms/ {print $2}' config/base.toml)}

python3 - "$load" "$cold" "$half" "$ttl_ms" "$memory" "${pairs[@]}" <<'PY' | tee loadtest/results/catalog.md
import json, sys, math, datetime
load, cold, half, ttl_ms = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
memory = json.loads(sys.argv[5])
pairs = [json.loads(p) for p in sys.argv[6:]]
# The goals (issue 16's), each written once: in the table's goal column and in its verdict.
RATIO, P99_MS = 0.5, 200
for p in pairs:
    p["ratio"] = p["gw"]["answers_per_s"] / p["bare"]["answers_per_s"]
    # At most one query per distinct search per lifetime: a run of `half` seconds spans at
    # most ceil(half / ttl) + 1 lifetimes of each search.
    p["query_bound"] = p["gw"]["distinct_paths"] * (math.ceil(half * 1000 / ttl_ms) + 1)
ordered = sorted(pairs, key=lambda p: p["ratio"])
mid = ordered[len(ordered) // 2]
g = mid["gw"]
ratios = ", ".join(f"{p['ratio']:.2f}" for p in pairs)
p99s = ", ".join(f"{p['gw']['p99_ms']:.0f}" for p in pairs)
print(f"Catalog at scale, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC "
      f"(loaded this run: {load['shows_added']} shows, {load['seats_added']} seats in {load['seconds']} s)\n")
print("| benchmark | Marquee | baseline (same run) | ratio | goal |")
print("|---|---:|---:|---:|---|")
print(f"| search `/v1/movies` through the gateway (256 readers; median of 3 alternating pairs of {half:.0f} s) "
      f"| {g['answers_per_s']:.0f} answers/s, p50 {g['p50_ms']:.1f} ms, p99 {g['p99_ms']:.1f} ms, {g['failures']} failures; "
      f"{g.get('gzipped', 0)} of {g['answers']} answers gzipped (mean {g['mean_bytes']} B as sent); "
      f"{mid['queries']} database queries for {g['distinct_paths']} distinct searches (bound {mid['query_bound']}) "
      f"| bare hyper ({mid['bare']['mean_bytes']} B): {mid['bare']['answers_per_s']:.0f} answers/s "
      f"| {mid['ratio']:.2f} (pairs: {ratios}; p99s: {p99s} ms) "
      f"| ≥ {RATIO}; p99 < {P99_MS} ms; ≤ 1 query per search per lifetime |")
print(f"| cold seat map (a show nobody opened; 256 readers, each of {cold['answers']} shows once) "
      f"| p50 {cold['p50_ms']:.1f} ms, p99 {cold['p99_ms']:.1f} ms, {cold['failures']} failures | | | p99 < {P99_MS} ms |")
print(f"| memory (VmRSS) | booking-core before any search {memory['idle']} MiB; after the first search "
      f"(which read the listing of every upcoming show, {memory['first_search_s'] * 1000:.0f} ms) {memory['listed']} MiB; "
      f"at the end {memory['end']} MiB, peak {memory['peak']} MiB; the gateway's at the end "
      f"{memory['gateway_end']} MiB, peak {memory['gateway_peak']} MiB | | | |")
worst = max(p["queries"] - p["query_bound"] for p in pairs)
ok = (mid["ratio"] >= RATIO and g["p99_ms"] < P99_MS and cold["p99_ms"] < P99_MS and worst <= 0
      and all(p["gw"]["failures"] == 0 for p in pairs) and cold["failures"] == 0)
print(f"\nThe catalog's goals {'met' if ok else 'NOT met'}.")
PY
