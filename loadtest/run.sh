#!/usr/bin/env bash
# Marquee's benchmarks, each next to its baseline measured in the same run on this machine:
#   hot show holds/s        vs  pgbench -N -c 64 -j 2 (same Postgres; 3 alternating pairs)
#   seat map reads/s        vs  a bare hyper server answering a body of the same size (wrk, 256 connections)
#   status polls/s (200s)   vs  the same bare hyper server (wrk, 256 connections; 3 alternating pairs),
#                               with Redis commands per poll and CPU per request (from /proc)
#   status polls/s, the whole system as `PROFILE=release make up` runs it (2,000 queued
#                               visitors, 64 connections; 3 alternating pairs) vs a bare hyper
#                               server answering as many bytes
#   joins/s                 vs  redis-benchmark ZADD (64 clients; 3 alternating pairs), with
#                               the gateway's and Redis's CPU and the Redis commands per join
#   Redis bytes per waiting visitor at 1,000,000 queued (goal ≤ 200)
#   catalog searches over 350,000 shows vs the same bare hyper server, and cold seat maps
#                               (loadtest/catalog.sh, appended to the results)
# Usage: loadtest/run.sh [SECONDS]   (default 30: three pairs of 15 s for the hot show and pgbench,
#                                    15 s for wrk runs)
# Writes loadtest/results/latest.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-30}
wrk_secs=$(( secs / 2 ))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
bin="$CARGO_TARGET_DIR/release"
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
for tool in wrk pgbench redis-benchmark curl; do
  command -v $tool >/dev/null || { log "missing $tool (apt-get install wrk postgresql-contrib redis-tools curl)"; exit 1; }
done
bash scripts/services.sh >&2
log "building release binaries"
cargo build --release -q -p booking-core -p queue-gateway -p admission-worker -p marquee-loadtest

work=$(mktemp -d)
raw=loadtest/results/raw-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$raw"
keep() { tee "$raw/$1"; }  # every raw result is kept, whatever happens later
psql() { command psql -h 127.0.0.1 -U postgres -d postgres -qAt "$@"; }
psql -c "DROP DATABASE IF EXISTS marquee_bench WITH (FORCE)" -c "CREATE DATABASE marquee_bench"
psql -c "DROP DATABASE IF EXISTS marquee_pgbench WITH (FORCE)" -c "CREATE DATABASE marquee_pgbench"
# Earlier runs' benchmark events would still be refreshed by the gateway and ticked by the
# worker, adding their Redis commands to this run's count: start from none.
redis-cli del wr:bench-events >/dev/null
redis-cli --scan --pattern 'wr:{bench-*' | xargs -r -n 500 redis-cli del >/dev/null
export MARQUEE_ENV=local MARQUEE_CONFIG_DIR="$root/config"
export MARQUEE_DATABASE__URL=postgres://postgres@127.0.0.1:5432/marquee_bench
export MARQUEE_DATABASE__MAX_CONNECTIONS=64
export MARQUEE_ADMISSION__KEYS_DIR="$work/keys"
export MARQUEE_REDIS__EVENTS_KEY="wr:bench-events"
export MARQUEE_GATEWAY__LISTEN=127.0.0.1:18080 MARQUEE_GATEWAY__BOOKING_URL=http://127.0.0.1:18081
export MARQUEE_BOOKING__LISTEN=127.0.0.1:18081 MARQUEE_WORKER__LISTEN=127.0.0.1:19102
export MARQUEE_LOG__FILTER=warn
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_url() { for _ in $(seq 1 150); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done; log "$1 never came up"; exit 1; }
# booking-core restarts before each pgbench run: its pool keeps up to 64 connections open after
# a hot show, and with pgbench's 64 that is more than Postgres's 100.
booking_pid=
start_booking() { "$bin/booking-core" >>"$work/booking.log" 2>&1 & booking_pid=$!; pids+=($booking_pid); wait_url http://127.0.0.1:18081/readyz; }
stop_booking() { kill "$booking_pid"; wait "$booking_pid" 2>/dev/null || true; }
start_booking
"$bin/queue-gateway" >"$work/gateway.log" 2>&1 & gateway_pid=$!; pids+=($gateway_pid); wait_url http://127.0.0.1:18080/healthz
"$bin/admission-worker" >"$work/worker.log" 2>&1 & worker_pid=$!; pids+=($worker_pid); wait_url http://127.0.0.1:19102/readyz

# wrk prints Requests/sec, the latency distribution and any non-2xx count.
wrk_run() { # wrk_run URL [wrk args…]
  local url=$1; shift
  wrk -t2 -c256 -d"${wrk_secs}s" --latency "$@" "$url"
}
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1 == "99%" {print $2}'; }
non2xx() { awk '/Non-2xx/ {print $5} END {print 0}' | head -n 1; }
redis_cmds() { redis-cli info stats | awk -F: '/total_commands_processed/ {print $2}' | tr -d '\r'; }
# Clock ticks (user + system) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
seatmap_queries() { curl -fs http://127.0.0.1:18081/metrics | awk '/^marquee_seatmap_queries_total/ {print $2}'; }

# status_pairs TOKENS CONNECTIONS PATH BARE_PORT BARE_PID GATEWAY_PORT GATEWAY_PID TAG: status
# polls from the visitors in TOKENS, three alternating pairs (bare, then gateway), each run
# half as long: on a shared machine one pair can land in a noisy moment; the summary gives
# the median pair and the range. Both servers warm (connections, page faults) before anything
# is counted. Prints each pair as "bare rps,gateway rps,p99,non-2xx,Redis commands,bare
# ticks,gateway ticks".
status_pairs() {
  local tokens=$1 conns=$2 path=$3 bare_port=$4 bare_pid=$5 gw_port=$6 gw_pid=$7 tag=$8
  local secs=$(( (wrk_secs + 1) / 2 )) port pair b0 b1 c0 c1 g0 g1 bare status
  for port in "$bare_port" "$gw_port"; do
    TOKENS="$tokens" wrk -t2 -c"$conns" -d3s -s loadtest/status.lua "http://127.0.0.1:$port$path" >/dev/null
  done
  for pair in 1 2 3; do
    b0=$(ticks "$bare_pid")
    bare=$(TOKENS="$tokens" wrk -t2 -c"$conns" -d"${secs}s" --latency -s loadtest/status.lua "http://127.0.0.1:$bare_port$path" | keep "wrk-${tag}bare-status-$pair.txt")
    b1=$(ticks "$bare_pid")
    c0=$(redis_cmds); g0=$(ticks "$gw_pid")
    status=$(TOKENS="$tokens" wrk -t2 -c"$conns" -d"${secs}s" --latency -s loadtest/status.lua "http://127.0.0.1:$gw_port$path" | keep "wrk-${tag}status-$pair.txt")
    c1=$(redis_cmds); g1=$(ticks "$gw_pid")
    echo "$(echo "$bare" | rps),$(echo "$status" | rps),$(echo "$status" | p99),$(echo "$status" | non2xx),$((c1 - c0)),$((b1 - b0)),$((g1 - g0))"
  done
}

log "hot show vs pgbench -N -c 64 -j 2: three alternating pairs of $(( (secs + 1) / 2 ))s each"
pgbench -i -q -s 10 -h 127.0.0.1 -U postgres marquee_pgbench >/dev/null 2>&1
# As for status polls: three alternating pairs (pgbench, then the hot show, each from a
# checkpoint so neither pays for the other's dirty pages), the median pair reported.
half=$(( (secs + 1) / 2 ))
hots=()
for pair in 1 2 3; do
  stop_booking
  psql -c CHECKPOINT
  tps=$(pgbench -N -c 64 -j 2 -T "$half" -h 127.0.0.1 -U postgres marquee_pgbench 2>/dev/null | keep "pgbench-$pair.txt" | awk '/^tps/ && !seen {print $3; seen = 1}')
  start_booking
  psql -c CHECKPOINT
  hot=$("$bin/marquee-loadtest" hot-show --url http://127.0.0.1:18081 --keys-dir "$work/keys" --seconds "$half" | keep "hot-show-$pair.json")
  hots+=("$(python3 -c 'import json,sys; h=json.loads(sys.argv[2]); h["pg_tps"]=float(sys.argv[1]); print(json.dumps(h, separators=(",", ":")))' "$tps" "$hot")")
done

log "seat map: 256 readers"
setup=$("$bin/marquee-loadtest" seatmap-setup --url http://127.0.0.1:18081 --rows 15 --per-row 20)
path=$(echo "$setup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
size=$(curl -fs "http://127.0.0.1:18081$path" | wc -c)
"$bin/marquee-loadtest" bare --listen 127.0.0.1:18090 --body-bytes "$size" 2>/dev/null & pids+=($!); sleep 0.3
bare_map=$(wrk_run "http://127.0.0.1:18090$path" | keep wrk-bare-seatmap.txt)
q0=$(seatmap_queries)
map=$(wrk_run "http://127.0.0.1:18081$path" | keep wrk-seatmap.txt)
q1=$(seatmap_queries)

log "status polls: 5,000 queued visitors, 256 connections"
# The hot show's and the seat map's events are done with: taken off the worker's list, so
# their ticks (a dozen Redis commands each, four times a second) are not counted as the polls'.
redis-cli del wr:bench-events >/dev/null
qsetup=$("$bin/marquee-loadtest" queue-setup --url http://127.0.0.1:18080 --visitors 5000 --tokens-file "$work/tokens")
spath=$(echo "$qsetup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
jpath=$(echo "$qsetup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_path"])')
ssize=$(curl -fs -H "Authorization: Bearer $(head -n 1 "$work/tokens")" "http://127.0.0.1:18080$spath" | wc -c)
"$bin/marquee-loadtest" bare --listen 127.0.0.1:18091 --body-bytes "$ssize" 2>/dev/null & bare_status_pid=$!; pids+=($bare_status_pid); sleep 0.3
pairs=$(status_pairs "$work/tokens" 256 "$spath" 18091 "$bare_status_pid" 18080 "$gateway_pid" "")

log "joins vs redis-benchmark ZADD: three alternating pairs"
# As for the other goals, three alternating pairs (ZADD, then joins for half of SECONDS), the
# median pair reported; with the CPU per join of the gateway and of Redis (from /proc) and the
# Redis commands per join, so the summary says which side bounds it.
redis_pid=$(redis-cli info server | awk -F: '/^process_id:/ {print $2}' | tr -d '\r')
join_pairs=()
for pair in 1 2 3; do
  zadd=$(redis-benchmark -t zadd -n 300000 -c 64 --csv 2>/dev/null | keep "redis-benchmark-zadd-$pair.txt" | awk -F'"' '$2 == "ZADD" {print $4}')
  c0=$(redis_cmds); g0=$(ticks "$gateway_pid"); r0=$(ticks "$redis_pid")
  join=$(wrk -t2 -c64 -d"${half}s" -s loadtest/join.lua "http://127.0.0.1:18080$jpath" | keep "wrk-join-$pair.txt")
  c1=$(redis_cmds); g1=$(ticks "$gateway_pid"); r1=$(ticks "$redis_pid")
  join_pairs+=("$zadd,$(echo "$join" | rps),$(echo "$join" | non2xx),$((c1 - c0)),$((g1 - g0)),$((r1 - r0))")
done

log "Redis memory per waiting visitor, 1,000,000 queued"
mem=$("$bin/marquee-loadtest" queue-memory --visitors 1000000 | keep queue-memory.json)

log "status polls on the whole system (PROFILE=release make up): 2,000 queued visitors, 64 connections"
# This harness's own services stop first: their worker still ticks this run's benchmark
# events on the same Redis, which would count against the whole system's polls.
kill "$booking_pid" "$gateway_pid" "$worker_pid" 2>/dev/null || true
wait "$booking_pid" "$gateway_pid" "$worker_pid" 2>/dev/null || true
# The gateway `make up` starts, on the release build, with the demo configuration (no live
# message, no trace export), against a bare hyper server answering as many bytes.
if curl -fs http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
  log "a system already answers on 8080: measuring it as it runs"
else
  # Its own configuration, not this harness's (the MARQUEE_… variables above point elsewhere).
  (for v in $(compgen -e | grep '^MARQUEE_'); do unset "$v"; done
   PROFILE=release exec bash scripts/up.sh) >"$work/up.log" 2>&1 & pids+=($!)
  up_end=$((SECONDS + 900))
  until grep -q "Marquee is up" "$work/up.log" 2>/dev/null; do
    kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 30 "$work/up.log"; exit 1; }
    ((SECONDS < up_end)) || { log "make up did not come up"; exit 1; }
    sleep 1
  done
fi
up_gateway_pid=$(ss -Hltnp 'sport = :8080' | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
# The whole system keeps its events in its own database between `make up`s, and its worker
# ticks every open one four times a second: earlier runs' benchmark events would add their
# ticks' Redis commands to this run's count (three of them had doubled it). Closed, each is
# retired at its next tick (its one admitted fan's slot lapsed long ago); this run's own is
# closed when the measurement ends.
up_admin() { # up_admin METHOD PATH [BODY]
  curl -fs -X "$1" -H "authorization: Bearer demo-operator-token" -H "content-type: application/json" \
    ${3:+-d "$3"} "http://127.0.0.1:8081$2"
}
close_bench_events() {
  for e in $(up_admin GET /admin/v1/events | python3 -c 'import json,sys; print(" ".join(e["id"] for e in json.load(sys.stdin)["events"] if e["id"].startswith("bench-q-") and e.get("state") != "closed"))'); do
    up_admin PATCH "/admin/v1/events/$e" '{"state":"closed"}' >/dev/null
  done
}
close_bench_events
usetup=$("$bin/marquee-loadtest" queue-setup --url http://127.0.0.1:8080 --visitors 2000 --tokens-file "$work/up-tokens")
upath=$(echo "$usetup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
usize=$(curl -fs -H "Authorization: Bearer $(head -n 1 "$work/up-tokens")" "http://127.0.0.1:8080$upath" | wc -c)
"$bin/marquee-loadtest" bare --listen 127.0.0.1:18092 --body-bytes "$usize" 2>/dev/null & bare_up_pid=$!; pids+=($bare_up_pid); sleep 0.3
up_pairs=$(status_pairs "$work/up-tokens" 64 "$upath" 18092 "$bare_up_pid" 8080 "$up_gateway_pid" "up-")
close_bench_events

echo "q0=$q0 q1=$q1 status pairs (bare rps, gateway rps, p99, non-2xx, Redis commands, bare ticks, gateway ticks): $(echo $pairs) make up pairs: $(echo $up_pairs) join pairs (ZADD/s, joins/s, non-2xx, Redis commands, gateway ticks, Redis ticks): ${join_pairs[*]} wrk_secs=$wrk_secs" | keep counters.txt >/dev/null

map_ttl_ms=${MARQUEE_BOOKING__SEATMAP_CACHE_TTL_MS:-$(awk -F' *= *' '/^seatmap_cache_ttl_ms/ {print $2}' config/base.toml)}
python3 - "${hots[*]}" "$(echo "$bare_map" | rps)" "$(echo "$map" | rps)" "$(echo "$map" | p99)" "$q0" "$q1" \
  "$(echo $pairs)" $(( (wrk_secs + 1) / 2 )) \
  "${join_pairs[*]}" "$half" "$mem" "$wrk_secs" "$size" "$ssize" \
  "$(echo $up_pairs)" "$usize" "$(getconf CLK_TCK)" "$map_ttl_ms" <<'PY' | tee loadtest/results/latest.md
import json, sys, datetime, os
a = sys.argv[1:]
hots = sorted((json.loads(h) for h in a[0].split()), key=lambda h: h["holds_per_s"] / h["pg_tps"])
hot = hots[len(hots) // 2]
pg_tps = hot["pg_tps"]
hot_ratios = ", ".join(f"{h['holds_per_s'] / h['pg_tps']:.2f}" for h in hots)
hot_doubles = sum(h["double_holds"] for h in hots)
hot_errors = sum(h["errors"] for h in hots)
bare_map, map_rps, map_p99, q0, q1 = float(a[1]), float(a[2]), a[3], float(a[4]), float(a[5])
pair_secs = float(a[7])
join_raw, join_secs, mem, wsecs, size, ssize = a[8], float(a[9]), json.loads(a[10]), float(a[11]), a[12], a[13]
up_raw, usize, hz, map_ttl_s = a[14], a[15], float(a[16]), float(a[17]) / 1000
# Each status pair: only 200s count, over the bare server's requests in the same pair; CPU
# per request from each server's /proc ticks over its run.
def status_pairs(raw):
    pairs = []
    for p in raw.split():
        bare, rps, p99, non2xx, cmds, bare_ticks, gw_ticks = p.split(",")
        polls = float(rps) * pair_secs
        bare_reqs = float(bare) * pair_secs
        ok = (polls - int(non2xx)) / pair_secs
        pairs.append({"bare": float(bare), "ok": ok, "p99": p99, "cmds": int(cmds), "polls": polls,
                      "ratio": ok / float(bare),
                      "bare_us": int(bare_ticks) / hz * 1e6 / max(bare_reqs, 1),
                      "gw_us": int(gw_ticks) / hz * 1e6 / max(polls, 1)})
    pairs.sort(key=lambda p: p["ratio"])
    mid = pairs[len(pairs) // 2]
    cmds = sum(p["cmds"] for p in pairs) / max(sum(p["polls"] for p in pairs), 1)
    gw_us = sum(p["gw_us"] for p in pairs) / len(pairs)
    bare_us = sum(p["bare_us"] for p in pairs) / len(pairs)
    return mid, cmds, ", ".join(f"{p['ratio']:.2f}" for p in pairs), gw_us, bare_us
mid, cmds_per_poll, ratios, gw_us, bare_us = status_pairs(a[6])
up_mid, up_cmds, up_ratios, up_gw_us, up_bare_us = status_pairs(up_raw)
# The goals (issue 16's), each written once: in the table's goal column and in its verdict.
HOT, MAP_P99_MS, POLLS, CMDS, CPU, JOINS, BYTES = 1.0, 200, 0.80, 0.01, 1.5, 0.4, 200
polls_goal = f"≥ {POLLS:.2f}; ≤ {CMDS} commands/poll; CPU ≤ {CPU} × bare"
print(f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores.\n")
print("| benchmark | Marquee | baseline (same run) | ratio | goal |")
print("| --- | --- | --- | --- | --- |")
print(f"| hot show: holds/s (64 clients, 10,000 seats, hold 2–4 then release; median of 3 alternating pairs) | {hot['holds_per_s']:.0f} holds/s, p50 {hot['p50_ms']:.1f} ms, p99 {hot['p99_ms']:.1f} ms; {hot_doubles} double holds, {hot_errors} errors in all pairs | pgbench -N: {pg_tps:.0f} tps | {hot['holds_per_s']/pg_tps:.2f} (pairs: {hot_ratios}) | ≥ {HOT}, 0 double holds |")
print(f"| seat map: reads/s (256 connections, {size} B body) | {map_rps:.0f} req/s, p99 {map_p99}, {(q1-q0)/wsecs:.1f} DB queries/s | bare hyper: {bare_map:.0f} req/s | {map_rps/bare_map:.2f} | p99 < {MAP_P99_MS} ms; ≤ {1 / map_ttl_s:.0f} queries/s (TTL {map_ttl_s * 1000:.0f} ms) |")
print(f"| status polls: 200s/s (5,000 queued visitors, 256 connections; median of 3 alternating pairs) | {mid['ok']:.0f} req/s, p99 {mid['p99']}, {cmds_per_poll:.4f} Redis commands/poll, {gw_us:.1f} µs CPU/poll | bare hyper ({ssize} B): {mid['bare']:.0f} req/s, {bare_us:.1f} µs CPU/request | {mid['ratio']:.2f} (pairs: {ratios}); CPU {gw_us / max(bare_us, 1e-9):.2f} × bare | {polls_goal} |")
print(f"| status polls, the whole system (`PROFILE=release make up`; 2,000 queued visitors, 64 connections; median of 3 alternating pairs) | {up_mid['ok']:.0f} req/s, p99 {up_mid['p99']}, {up_cmds:.4f} Redis commands/poll, {up_gw_us:.1f} µs CPU/poll | bare hyper ({usize} B): {up_mid['bare']:.0f} req/s, {up_bare_us:.1f} µs CPU/request | {up_mid['ratio']:.2f} (pairs: {up_ratios}); CPU {up_gw_us / max(up_bare_us, 1e-9):.2f} × bare | {polls_goal} |")
# Each join pair: ZADD/s, joins/s, non-2xx, Redis commands, gateway ticks, Redis ticks.
joins = []
for p in join_raw.split():
    zadd, rps, non2xx, cmds, gw_ticks, redis_ticks = p.split(",")
    n = max(float(rps) * join_secs, 1)
    joins.append({"zadd": float(zadd), "rps": float(rps), "non2xx": int(non2xx), "ratio": float(rps) / float(zadd),
                  "cmds": int(cmds) / n, "gw_us": int(gw_ticks) / hz * 1e6 / n, "redis_us": int(redis_ticks) / hz * 1e6 / n})
joins.sort(key=lambda j: j["ratio"])
join = joins[len(joins) // 2]
join_ratios = ", ".join(f"{j['ratio']:.2f}" for j in joins)
join_non2xx = sum(j["non2xx"] for j in joins)
print(f"| joins/s (64 connections, `always` mode, no access codes; median of 3 alternating pairs) | {join['rps']:.0f} joins/s ({join_non2xx} non-2xx in all pairs); per join {join['cmds']:.1f} Redis commands, gateway CPU {join['gw_us']:.0f} µs, Redis CPU {join['redis_us']:.0f} µs | redis-benchmark ZADD: {join['zadd']:.0f} ops/s | {join['ratio']:.2f} (pairs: {join_ratios}) | ≥ {JOINS} |")
print(f"| Redis memory per waiting visitor (1,000,000 queued, last-seen included) | {mem['bytes_per_visitor']:.0f} bytes | — | — | ≤ {BYTES} bytes |")
# wrk's latencies read "900.00us", "14.00ms" or "1.20s".
def ms(text):
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float("inf")
goals = [
    ("hot show", hot["holds_per_s"] / pg_tps >= HOT and hot_doubles == 0),
    # One query per lifetime, and the run's first.
    ("seat map", ms(map_p99) < MAP_P99_MS and q1 - q0 <= wsecs / map_ttl_s + 1),
    ("status polls", mid["ratio"] >= POLLS and cmds_per_poll <= CMDS and gw_us <= CPU * bare_us),
    ("status polls, the whole system",
     up_mid["ratio"] >= POLLS and up_cmds <= CMDS and up_gw_us <= CPU * up_bare_us),
    ("joins", join["ratio"] >= JOINS),
    ("Redis memory per waiting visitor", mem["bytes_per_visitor"] <= BYTES),
]
missed = [name for name, met in goals if not met]
print(f"\nThis table's goals {'met' if not missed else 'NOT met: ' + ', '.join(missed)}.")
PY

log "the catalog at the design's scale (loadtest/catalog.sh)"
{ echo; RAW_DIR="$raw" bash loadtest/catalog.sh "$secs"; } | tee -a loadtest/results/latest.md
