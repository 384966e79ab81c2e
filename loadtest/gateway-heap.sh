#!/usr/bin/env bash
# What the gateway's heap holds through a soak. The gateway is built with the system's
# allocator (`--features system-alloc`: heaptrack watches malloc, not jemalloc) and run under
# heaptrack, the rest of the system as `make up` runs it on the release build, and
# `loadtest/soak.sh SECONDS` plays its nights against it. At the end the gateway is killed
# with SIGKILL, so what heaptrack calls leaked is what was live at that moment. The report
# (loadtest/results/gateway-heap/report.txt) gives the live heap minute by minute (the least,
# mean and most of heaptrack's snapshots in each minute: the least is what stays between
# requests), the biggest consumers at the peak with their call stacks, and what was live at
# the end. The soak's own verdict is not the point here: under heaptrack the gateway is
# slower, and its resident memory is glibc's, not jemalloc's.
# Usage: loadtest/gateway-heap.sh [SECONDS]   (default: 2400; needs heaptrack from Debian)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marquee/target}"
log() { printf '\033[1m[gateway-heap]\033[0m %s\n' "$*" >&2; }
secs="${1:-2400}"
command -v heaptrack >/dev/null || { log "heaptrack not found (apt-get install heaptrack)"; exit 1; }
out="$PWD/loadtest/results/gateway-heap"
rm -rf "$out"
mkdir -p "$out" var/log
cargo build --release -q -p queue-gateway --features system-alloc
# up.sh builds the gateway again without the feature; this copy is the one that runs.
cp "$CARGO_TARGET_DIR/release/queue-gateway" "$out/queue-gateway"

up_pid=""
stop() {
  pkill -KILL -f "^$out/queue-gateway" 2>/dev/null || true
  [ -n "$up_pid" ] && kill -TERM "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null
  true
}
trap stop EXIT
log "starting the system with the gateway under heaptrack (PROFILE=release make up)"
UP_GATEWAY_CMD="heaptrack -o $out/gateway $out/queue-gateway" PROFILE=release \
  bash scripts/up.sh >var/log/gateway-heap-up.log 2>&1 &
up_pid=$!
until grep -q "Marquee is up" var/log/gateway-heap-up.log 2>/dev/null; do
  kill -0 "$up_pid" 2>/dev/null || { tail -n 30 var/log/gateway-heap-up.log; exit 1; }
  sleep 1
done
bash loadtest/soak.sh "$secs" || log "the soak's verdict (not judged here): exit $?"
stop
up_pid=""
# heaptrack writes its file once the gateway is gone.
until ls "$out"/gateway*.zst >/dev/null 2>&1 && ! pgrep -f heaptrack_interpret >/dev/null; do
  sleep 1
done
data=$(ls "$out"/gateway*.zst | head -n 1)
log "reading $data"
{
  echo "# The gateway's live heap, minute by minute (MiB): least, mean, most of the snapshots"
  heaptrack_print -f "$data" -M "$out/massif.out" --massif-threshold 2 >/dev/null
  grep -E '^(time|mem_heap_B)=' "$out/massif.out" | paste - - | tr '=\t' '  ' |
    awk '{ m = int($2 / 60); v = $4 / 1048576; s[m] += v; n[m]++
           if (!(m in lo) || v < lo[m]) lo[m] = v; if (v > hi[m]) hi[m] = v }
         END { for (m in n) printf "%3d  %6.2f  %6.2f  %6.2f\n", m, lo[m], s[m] / n[m], hi[m] }' |
    sort -n
  echo
  echo "# At the peak, and live at the end"
  heaptrack_print -f "$data" -p -a 0 -T 0 -l -n 8 --merge-backtraces 0 | sed -n '/PEAK MEMORY/,$p'
  heaptrack_print -f "$data" -p 0 -a 0 -T 0 -l 0 | tail -n 6
} >"$out/report.txt"
rm -f "$out/massif.out"
log "report: $out/report.txt"
