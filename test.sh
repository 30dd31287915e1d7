#!/usr/bin/env bash
# Runs every test. Storage tests run on SQLite and on PostgreSQL: when LATCHKEY_TEST_POSTGRES
# is not set, a throwaway PostgreSQL cluster (Debian's packages) is started on a free loopback
# port for the duration of the run and removed afterwards. Extra arguments go to `dotnet test`.
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '[test.sh] %s\n' "$*" >&2; }

# A loopback port nobody listens on, from the range above the usual services.
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo 55432
}

start_throwaway_postgres() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    log "PostgreSQL is not installed. Install it (sudo apt-get install -y postgresql) or set LATCHKEY_TEST_POSTGRES."
    exit 1
  fi

  PG_DIR=$(mktemp -d /tmp/latchkey-pg.XXXXXX)
  PG_PORT=$(free_port)

  # PostgreSQL refuses to run as root; as root, run it as the postgres account the package created.
  local run=()
  if [ "$(id -u)" = "0" ]; then
    chown postgres "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  PG_RUN=("${run[@]}")

  log "starting a throwaway PostgreSQL ($("$bindir/postgres" --version)) on 127.0.0.1:$PG_PORT"
  "${run[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
  "${run[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    >/dev/null || { cat "$PG_DIR/server.log" >&2; exit 1; }
  PG_BINDIR=$bindir
  trap stop_throwaway_postgres EXIT
  export LATCHKEY_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres;Pooling=true"
}

stop_throwaway_postgres() {
  "${PG_RUN[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}

if [ -z "${LATCHKEY_TEST_POSTGRES:-}" ]; then
  start_throwaway_postgres
else
  log "using the PostgreSQL server in LATCHKEY_TEST_POSTGRES"
fi

dotnet test Latchkey.slnx --logger "console;verbosity=normal" "$@"
