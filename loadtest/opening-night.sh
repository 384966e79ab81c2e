#!/usr/bin/env bash
# Opening nights at several sizes against the whole system as `make up` runs it (release
# build, embedded Kafka, the Stripe simulator), each audited, then a scaling table.
# Usage: loadtest/opening-night.sh [FANS ...]   (default: 1000 10000 100000)
# Every run: fans arrive over 10 s (a crowd: the queue forms at every size), polls at least
# 5 s apart (the event's minimum), no proof of work, 3,000 admissions a minute, a cap of 500
# shopping, seats 10 % of the fans (2 shows of 25-seat rows), 15 minutes at most. While each
# runs, `top` is sampled every 10 s into loadtest/results/opening-night-<N>.top. Reports: loadtest/results/opening-night-<N>.{json,html};
# the table: loadtest/results/opening-night-scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
log() { printf '\033[1m[opening-night]\033[0m %s\n' "$*" >&2; }
sizes=("$@")
((${#sizes[@]})) || sizes=(1000 10000 100000)
cargo build --release -q -p marquee-loadtest
bin="$CARGO_TARGET_DIR/release/marquee-loadtest"

# The whole system, as `make up` starts it, on the release build; stopped when this ends.
up_pid=""
if ! curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
  log "starting the system (PROFILE=release make up)"
  mkdir -p var/log
  rm -f var/log/opening-night-up.log
  PROFILE=release bash scripts/up.sh >var/log/opening-night-up.log 2>&1 &
  up_pid=$!
  trap '[ -n "$up_pid" ] && kill -TERM "$up_pid" 2>/dev/null; wait "$up_pid" 2>/dev/null || true' EXIT
  end=$((SECONDS + 900))
  until grep -q "Marquee is up" var/log/opening-night-up.log 2>/dev/null; do
    kill -0 "$up_pid" 2>/dev/null || { tail -n 30 var/log/opening-night-up.log; exit 1; }
    ((SECONDS < end)) || { log "the system did not come up"; exit 1; }
    sleep 1
  done
fi

mkdir -p loadtest/results
reports=()
for n in "${sizes[@]}"; do
  rows=$(( n / 500 > 1 ? n / 500 : 1 ))
  out="loadtest/results/opening-night-$n.json"
  log "$n fans, 2 shows x $rows rows x 25 seats"
  (while sleep 10; do top -b -n 1 -w 200 | head -n 16; done) >"loadtest/results/opening-night-$n.top" &
  top_pid=$!
  "$bin" opening-night --fans "$n" --arrival ramp --ramp-s 10 --min-poll-ms 5000 \
    --abandon-after-s 60 --rate-per-minute 3000 --max-active 500 --hold-ttl-s 30 \
    --idle-after-s 30 --shows 2 --rows "$rows" --seats-per-row 25 --duration-s 900 \
    --max-connections 2048 --report "$out" | tee "loadtest/results/opening-night-$n.txt"
  kill "$top_pid" 2>/dev/null || true
  reports+=("$out")
done
"$bin" scaling-table "${reports[@]}" | tee loadtest/results/opening-night-scaling.md
