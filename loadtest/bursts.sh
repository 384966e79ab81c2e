#!/usr/bin/env bash
# Does booking-core give back what a burst made it take? Starts the release booking-core on a
# database of its own, then runs BURSTS hot-show bursts (64 clients holding and releasing
# seats of one 10,000-seat show, 20,000 fans, SECONDS each), each followed by CALM seconds of
# the same with 2 clients and 200 fans (long enough for what the burst remembered to pass
# its time), reading its resident memory (VmRSS) every second. Prints one line a second:
# seconds, phase, MiB; then each phase's last reading.
# Usage: loadtest/bursts.sh [SECONDS] [BURSTS] [CALM]   (default: 15 s, 3 bursts, 45 s calm)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-15}
bursts=${2:-3}
calm=${3:-45}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
bin="$CARGO_TARGET_DIR/release"
bash scripts/services.sh >&2
cargo build --release -q -p booking-core -p marquee-loadtest
work=$(mktemp -d)
psql() { command psql -h 127.0.0.1 -U postgres -d postgres -qAt "$@"; }
psql -c "DROP DATABASE IF EXISTS marquee_bursts WITH (FORCE)" -c "CREATE DATABASE marquee_bursts"
redis-cli del wr:bursts-events >/dev/null
export MARQUEE_ENV=local MARQUEE_CONFIG_DIR="$root/config"
export MARQUEE_DATABASE__URL=postgres://postgres@127.0.0.1:5432/marquee_bursts
export MARQUEE_DATABASE__MAX_CONNECTIONS=64
export MARQUEE_ADMISSION__KEYS_DIR="$work/keys"
export MARQUEE_REDIS__EVENTS_KEY="wr:bursts-events"
export MARQUEE_BOOKING__LISTEN=127.0.0.1:18281
export MARQUEE_LOG__FILTER=warn
"$bin/booking-core" >"$work/booking.log" 2>&1 &
pid=$!
sampler=
stop() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap 'stop || true' EXIT
# Ready means this process answering: another one left on the port would answer too.
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || { echo "booking-core did not start:" >&2; tail -n 5 "$work/booking.log" >&2; exit 1; }
  curl -fs http://127.0.0.1:18281/readyz >/dev/null && break
  sleep 0.2
done
echo idle >"$work/phase"
start=$SECONDS
(while kill -0 "$pid" 2>/dev/null && [ "$(cat "$work/phase")" != end ]; do
  printf '%d %s %.1f\n' $((SECONDS - start)) "$(cat "$work/phase")" \
    "$(awk '/^VmRSS/ {print $2 / 1024}' "/proc/$pid/status")"
  sleep 1
done) | tee "$work/readings" &
sampler=$!
sleep "$secs"
for b in $(seq 1 "$bursts"); do
  echo "burst-$b" >"$work/phase"
  "$bin/marquee-loadtest" hot-show --url http://127.0.0.1:18281 --keys-dir "$work/keys" --seconds "$secs" >/dev/null
  echo "calm-after-$b" >"$work/phase"
  "$bin/marquee-loadtest" hot-show --url http://127.0.0.1:18281 --keys-dir "$work/keys" --seconds "$calm" \
    --clients 2 --visitors 200 >/dev/null
done
echo end >"$work/phase"
wait "$sampler" 2>/dev/null || true
sampler=
echo "# each phase's last reading (MiB)"
awk '{ if (!($2 in last)) order[n++] = $2; last[$2] = $3 } END { for (i = 0; i < n; i++) print order[i], last[order[i]] }' "$work/readings"
