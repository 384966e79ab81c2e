#!/usr/bin/env bash
# What the Node-driven tests need: Node.js with npm, Debian's Chromium and Noto fonts, playwright-core
# (tests/browser) and Stripe's library (tests/stripe-compat), pinned by their lockfiles.
# Installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[browser]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Devanagari for the Hindi pages' screenshots (text, not boxes).
[ -d /usr/share/fonts/truetype/noto ] && ls /usr/share/fonts/truetype/noto/NotoSansDevanagari* >/dev/null 2>&1 || missing+=(fonts-noto-core)
if ((${#missing[@]})); then
  log "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  log "installing playwright-core and axe-core (npm)"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
if [ ! -d tests/stripe-compat/node_modules/stripe ]; then
  log "installing Stripe's library for the webhook compatibility test (npm)"
  (cd tests/stripe-compat && npm ci --no-audit --no-fund --silent)
fi
