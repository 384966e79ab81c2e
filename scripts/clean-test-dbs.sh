#!/usr/bin/env bash
# Drop the per-test databases earlier test runs left behind (named mqt_*), and the template.
set -euo pipefail
for db in $(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'mqt\_%' OR datname LIKE 'mq\_template\_%'"); do
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
done
