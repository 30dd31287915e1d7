#!/usr/bin/env bash
# Runs every test. Storage tests run on SQLite and on PostgreSQL: when LATCHKEY_TEST_POSTGRES
# is not set, a throwaway PostgreSQL cluster (Debian's packages) is started on a free loopback
# port for the duration of the run and removed afterwards. Extra arguments go to `dotnet test`.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/throwaway-postgres.sh

if [ -z "${LATCHKEY_TEST_POSTGRES:-}" ]; then
  # Tests need no durability: skip the disk flushes.
  start_throwaway_postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  export LATCHKEY_TEST_POSTGRES="$THROWAWAY_POSTGRES"
else
  printf '[test.sh] using the PostgreSQL server in LATCHKEY_TEST_POSTGRES\n' >&2
fi

# The upstream identity provider of the external sign-in tests (oidc-provider, pinned by its lock file).
if [ ! -d tests/oidc-peer/node_modules/oidc-provider ]; then
  if command -v npm >/dev/null; then
    (cd tests/oidc-peer && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  else
    printf '[test.sh] npm is missing: the external sign-in tests need Node.js (sudo apt-get install nodejs npm)\n' >&2
  fi
fi

dotnet test Latchkey.slnx --logger "console;verbosity=normal" "$@"
