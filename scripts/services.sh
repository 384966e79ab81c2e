#!/usr/bin/env bash
# Make PostgreSQL and Redis answer on their default loopback ports, as Marquee's demo and
# tests expect: install them with apt where absent, start them where stopped, give the
# `postgres` role password-less access on loopback, and create the `marquee` database.
# Safe to run again: each step checks first.
set -euo pipefail

log() { printf '\033[1m[services]\033[0m %s\n' "$*"; }
deadline_wait() { # deadline_wait SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then log "gave up waiting for $what after ${secs}s"; return 1; fi
    sleep 0.2
  done
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql postgresql-client)
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing+=(redis-server redis-tools)
if ((${#missing[@]})); then
  log "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! pg_up; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || { log "PostgreSQL is installed but has no cluster under /etc/postgresql"; exit 1; }
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || as_root pg_ctlcluster "$version" main start
  deadline_wait 30 PostgreSQL pg_up
fi

# Debian's default asks for a password on 127.0.0.1; the demo and tests connect as
# `postgres` without one, so trust loopback (local development only).
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
  log "giving the postgres role password-less access on loopback"
  hba=$(as_root su postgres -c "psql -Atqc 'SHOW hba_file'")
  as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba" \
    || printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | as_root tee -a "$hba" >/dev/null
  as_root su postgres -c "psql -Atqc 'SELECT pg_reload_conf()'" >/dev/null
  deadline_wait 10 "PostgreSQL access" psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1'
fi

if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'marquee'")" != 1 ]; then
  log "creating database marquee"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE marquee'
fi

if ! redis_up; then
  log "starting Redis"
  mkdir -p /tmp/marquee-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --dir /tmp/marquee-redis --logfile /tmp/marquee-redis/redis.log
  deadline_wait 15 Redis redis_up
fi

log "PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are ready"
