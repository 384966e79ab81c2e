#!/usr/bin/env bash
# `make up`: the whole demo on this machine. Starts PostgreSQL and Redis (installing them
# where absent), builds the services, starts them with the demo configuration, loads demo
# data and prints where to go. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
export MARQUEE_ENV="${MARQUEE_ENV:-local}"
export MARQUEE_CONFIG_DIR="${MARQUEE_CONFIG_DIR:-$root/config}"
export MARQUEE_ADMISSION__KEYS_DIR="${MARQUEE_ADMISSION__KEYS_DIR:-$root/var/keys}"
profile="${PROFILE:-dev}"
bin_dir="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")"

log() { printf '\033[1m[up]\033[0m %s\n' "$*"; }
command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }

bash scripts/services.sh
log "building the services (profile $profile; the first build takes a few minutes)"
cargo build --profile "$profile" --bins -p booking-core -p queue-gateway -p admission-worker -p stripe-sim -p marquee-events

# Refuse to start over a running system: its health checks would answer for ours.
for port in 8080 8081 9102 9103 12111; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "port $port is already in use (is another make up running?); stop it first"
    exit 1
  fi
done

mkdir -p var/log var/mail var/keys
pids=()
stop() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    log "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  exit 0
}
trap stop INT TERM EXIT

wait_ready() { # wait_ready NAME URL PID
  local end=$((SECONDS + 60))
  until curl -fsS "$2" >/dev/null 2>&1; do
    kill -0 "$3" 2>/dev/null || { log "$1 exited; see var/log/$1.log"; tail -n 20 "var/log/$1.log"; exit 1; }
    ((SECONDS < end)) || { log "$1 not ready after 60s; see var/log/$1.log"; exit 1; }
    sleep 0.2
  done
}

# UP_GATEWAY_CMD, when set, is the command that runs the gateway instead of the build's binary
# (loadtest/gateway-heap.sh runs it under heaptrack).
start() { # start NAME READY_URL
  if [ "$1" = queue-gateway ] && [ -n "${UP_GATEWAY_CMD:-}" ]; then
    $UP_GATEWAY_CMD >"var/log/$1.log" 2>&1 &
  else
    "$bin_dir/$1" >"var/log/$1.log" 2>&1 &
  fi
  pids+=($!)
  wait_ready "$1" "$2" "$!"
  log "$1 ready"
}

# The Stripe simulator first (booking-core talks to it; it sends webhooks to the gateway),
# then booking-core: it migrates the database and creates the demo admission key that the
# gateway then signs with.
# (Its defaults: webhooks to the gateway, signed with the demo secret whsec_demo_marquee.)
start stripe-sim http://127.0.0.1:12111/healthz
start booking-core http://127.0.0.1:8081/readyz
start queue-gateway http://127.0.0.1:8080/healthz
start admission-worker http://127.0.0.1:9102/readyz
# The events service owns the embedded Kafka (its address goes to var/kafka-bootstrap),
# publishes the outbox and emails tickets to var/mail/.
start marquee-events http://127.0.0.1:9103/readyz

"$bin_dir/seed-demo" --url http://127.0.0.1:8080

cat <<MSG

  Marquee is up (logs in var/log/).
    Waiting room   http://127.0.0.1:8080/e/opening-night
    Pre-queue      http://127.0.0.1:8080/e/midnight-premiere
    Catalog        http://127.0.0.1:8080/v1/movies
    Operator API   http://127.0.0.1:8080/admin/v1/events   (Authorization: Bearer demo-operator-token)
    Metrics        http://127.0.0.1:8080/metrics  http://127.0.0.1:8081/metrics  http://127.0.0.1:9102/metrics
    Events         http://127.0.0.1:9103/metrics   Kafka: embedded mock cluster (var/kafka-bootstrap); ticket emails: var/mail/*.eml
    Stripe (sim)   http://127.0.0.1:12111   test cards: pm_card_visa, pm_card_chargeDeclined, pm_card_authenticationRequired

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
log "a service exited; stopping the rest"
