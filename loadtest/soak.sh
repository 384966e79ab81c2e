#!/usr/bin/env bash
# The long night: an hour of opening nights, three at a time (started 70 s apart), each its
# own event with three shows, against the whole system as `make up` runs it (release
# build, the Stripe simulator), with every service's memory and open sockets read every 2 s
# and recorded once a minute (the median of the minute's readings, and their peak). The mock Kafka cluster runs as a process of its own (`kafka-mock`) rather than
# inside the events service, so the service's memory is its own, not the broker's log.
# Usage: loadtest/soak.sh [SECONDS]   (default: 3600; not part of `make test`)
# Each night: 1,000 fans over 3 minutes, polls at least 2 s apart, 3,000 admissions a minute,
# a cap of 300 shopping, 2,400 seats (3 shows x 20 rows x 40: more than its fans buy, so a
# night lasts until its last fan has come and gone rather than ending at a sell-out, and the
# three nights together keep a steady stream of about 14 fans a second arriving: a steady
# load this machine keeps up with (four at once built backlogs every few minutes that the
# 2 cores drained later), so a memory that moves is the service's, not the traffic's), holds of 30 s,
# 6 minutes at most, audited afterwards. Writes loadtest/results/soak.{json,md} (the curve, the verdict) and
# loadtest/results/soak-nights/ (each night's report); exits non-zero unless every night's
# audit is clean and each service's memory stayed flat (every sample from half the time on
# within 5 % of the sample at a quarter of it: minute 15 and the last 30 minutes of an hour;
# the Stripe simulator, a stand-in keeping every PaymentIntent, is not judged).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
log() { printf '\033[1m[soak]\033[0m %s\n' "$*" >&2; }
soak_s="${1:-3600}"
sample_s="${SOAK_SAMPLE_S:-60}"
cargo build --release -q -p marquee-loadtest -p marquee-events
bin="$CARGO_TARGET_DIR/release/marquee-loadtest"

# The whole system, as `make up` starts it, on the release build; stopped when this ends.
up_pid=""
kafka_pid=""
stop() {
  [ -n "$up_pid" ] && kill -TERM "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null
  [ -n "$kafka_pid" ] && kill -TERM "$kafka_pid" 2>/dev/null && wait "$kafka_pid" 2>/dev/null
  true
}
trap stop EXIT
if ! curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
  log "starting the mock Kafka cluster (kafka-mock), then the system (PROFILE=release make up)"
  mkdir -p var/log
  rm -f var/kafka-bootstrap
  MARQUEE_ENV=local "$CARGO_TARGET_DIR/release/kafka-mock" >var/log/kafka-mock.log 2>&1 &
  kafka_pid=$!
  until [ -s var/kafka-bootstrap ]; do
    kill -0 "$kafka_pid" 2>/dev/null || { tail -n 20 var/log/kafka-mock.log; exit 1; }
    sleep 0.2
  done
  rm -f var/log/soak-up.log
  MARQUEE_KAFKA__BROKERS=$(cat var/kafka-bootstrap) PROFILE=release bash scripts/up.sh >var/log/soak-up.log 2>&1 &
  up_pid=$!
  end=$((SECONDS + 1800))
  until grep -q "Marquee is up" var/log/soak-up.log 2>/dev/null; do
    kill -0 "$up_pid" 2>/dev/null || { tail -n 30 var/log/soak-up.log; exit 1; }
    ((SECONDS < end)) || { log "the system did not come up"; exit 1; }
    sleep 1
  done
fi

mkdir -p loadtest/results
rm -rf loadtest/results/soak-nights
log "soaking for $soak_s s, sampling every $sample_s s"
"$bin" soak --soak-s "$soak_s" --sample-every-s "$sample_s" --nights-at-once 3 --stagger-s 70 \
  --soak-report loadtest/results/soak.json \
  --fans 1000 --arrival ramp --ramp-s 180 --min-poll-ms 2000 --abandon-after-s 60 \
  --rate-per-minute 3000 --max-active 300 --hold-ttl-s 30 --idle-after-s 30 \
  --shows 3 --rows 20 --seats-per-row 40 --duration-s 360 --max-connections 256
