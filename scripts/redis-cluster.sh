#!/usr/bin/env bash
# A three-master Redis Cluster on 127.0.0.1:7101-7103 for the tests that check the waiting
# room's keys and scripts on a real cluster (every key of an event shares its hash tag).
# Starts it when it is not already running; nothing is kept on disk.
set -euo pipefail
log() { printf '\033[1m[cluster]\033[0m %s\n' "$*"; }
ports=(7101 7102 7103)
ok() { redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
if ok; then
  log "Redis Cluster on 127.0.0.1:${ports[0]}-${ports[2]} is ready"
  exit 0
fi
command -v redis-server >/dev/null || { log "redis-server is missing (bash scripts/services.sh installs it)"; exit 1; }
for port in "${ports[@]}"; do
  dir=/tmp/marquee-redis-cluster/$port
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    rm -rf "$dir" && mkdir -p "$dir"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
      --cluster-config-file "$dir/nodes.conf" --save '' --appendonly no \
      --dir "$dir" --logfile "$dir/redis.log"
  fi
done
for _ in $(seq 1 50); do
  all=1
  for port in "${ports[@]}"; do redis-cli -p "$port" ping >/dev/null 2>&1 || all=0; done
  [ "$all" = 1 ] && break
  sleep 0.1
done
if ! redis-cli -p "${ports[0]}" cluster info | grep -q '^cluster_slots_assigned:16384'; then
  log "creating the cluster"
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 0 --cluster-yes >/dev/null
fi
for _ in $(seq 1 100); do
  if ok; then
    log "Redis Cluster on 127.0.0.1:${ports[0]}-${ports[2]} is ready"
    exit 0
  fi
  sleep 0.1
done
log "the cluster did not become ready"
exit 1
