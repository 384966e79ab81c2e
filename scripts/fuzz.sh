#!/usr/bin/env bash
# The fuzz targets under fuzz/ (cargo fuzz: libFuzzer with coverage instrumentation, no
# sanitizer, on the stable toolchain), each for FUZZ_SECONDS (default 15) from its committed
# corpus in fuzz/corpus/<target>/. A crash, a failed property or a timeout fails the run and
# leaves the input in fuzz/artifacts/<target>/ (`cargo fuzz run -s none <target> <file>`
# replays it). Only marquee-parsers is instrumented, in its own cache
# (~/.cache/marquee/fuzz-target): a few seconds to build when warm.
# Usage: scripts/fuzz.sh [TARGET ...]   (default: every target)
# FUZZ_GROW=1 fuzzes into the committed corpus instead and minimises it afterwards
# (`cargo fuzz cmin`): how the corpora were made (60 s each), and how to grow them.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }
version=0.13.2
seconds="${FUZZ_SECONDS:-15}"
if ! cargo fuzz --version 2>/dev/null | grep -q "$version"; then
  log "installing cargo-fuzz $version (crates.io)"
  cargo install -q --locked --version "$version" cargo-fuzz
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/marquee/fuzz-target}"
cd fuzz
targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(cargo fuzz list)
log "building the targets"
cargo fuzz build -s none
grow="${FUZZ_GROW:-0}"
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus"
  if [ "$grow" = 1 ]; then
    dir="$corpus"
  else
    # A scratch copy: what the run discovers is not written into the committed corpus.
    dir=$(mktemp -d)
    cp -r "$corpus/." "$dir/"
  fi
  log "$t: ${seconds}s from $(ls "$corpus" | wc -l) inputs"
  out=$(mktemp)
  start=$SECONDS
  if ! cargo fuzz run -s none "$t" "$dir" -- -max_total_time="$seconds" -timeout=5 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$out" 2>&1; then
    tail -n 40 "$out"
    log "$t FAILED (input in fuzz/artifacts/$t/)"
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$out" | tr '\n' ' '
  echo "($((SECONDS - start))s)"
  rm -f "$out"
  if [ "$grow" = 1 ]; then
    cargo fuzz cmin -s none "$t" "$corpus" >/dev/null 2>&1
    log "$t: corpus minimised to $(ls "$corpus" | wc -l) inputs"
  else
    rm -rf "$dir"
  fi
done
