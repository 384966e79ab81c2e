#!/usr/bin/env bash
# schemathesis (PyPI), which tests/tests/e2e/schema.rs runs against the gateway's OpenAPI
# document; pinned to the version the document was checked with. Installs only when missing.
set -euo pipefail
version=4.32.5
log() { printf '\033[1m[schemathesis]\033[0m %s\n' "$*"; }
if st --version 2>/dev/null | grep -q "$version"; then
  exit 0
fi
command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || {
  log "installing pip (apt)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-pip >/dev/null; else sudo apt-get install -y -qq python3-pip >/dev/null; fi
}
log "installing schemathesis $version (pip)"
pip=$(command -v pip3 || command -v pip)
"$pip" install -q "schemathesis==$version" 2>/dev/null || "$pip" install -q --break-system-packages "schemathesis==$version"
# pyenv shims need a rehash before a new command is on the PATH.
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
st --version >/dev/null
