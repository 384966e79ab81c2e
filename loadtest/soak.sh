#!/usr/bin/env bash
# The long night: an hour of opening nights, two at a time, each its own event with three
# shows, against the whole system as `make up` runs it (release build, embedded Kafka, the
# Stripe simulator), with every service's memory and open sockets read once a minute.
# Usage: loadtest/soak.sh [SECONDS]   (default: 3600; not part of `make test`)
# Each night: 1,500 fans over 30 s, polls at least 2 s apart, 3,000 admissions a minute, a
# cap of 300 shopping, 450 seats (3 shows x 6 rows x 25), holds of 30 s, 5 minutes at most,
# audited afterwards. Writes loadtest/results/soak.{json,md} (the curve, the verdict) and
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
cargo build --release -q -p marquee-loadtest
bin="$CARGO_TARGET_DIR/release/marquee-loadtest"

# The whole system, as `make up` starts it, on the release build; stopped when this ends.
up_pid=""
if ! curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
  log "starting the system (PROFILE=release make up)"
  mkdir -p var/log
  PROFILE=release bash scripts/up.sh >var/log/soak-up.log 2>&1 &
  up_pid=$!
  trap '[ -n "$up_pid" ] && kill -TERM "$up_pid" 2>/dev/null; wait "$up_pid" 2>/dev/null || true' EXIT
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
"$bin" soak --soak-s "$soak_s" --sample-every-s "$sample_s" --nights-at-once 2 \
  --soak-report loadtest/results/soak.json \
  --fans 1500 --arrival ramp --ramp-s 30 --min-poll-ms 2000 --abandon-after-s 60 \
  --rate-per-minute 3000 --max-active 300 --hold-ttl-s 30 --idle-after-s 30 \
  --shows 3 --rows 6 --seats-per-row 25 --duration-s 300 --max-connections 1024
