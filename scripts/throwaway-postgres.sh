# Sourced by test.sh and bench/run.sh: starts a throwaway PostgreSQL cluster (Debian's packages)
# on a free loopback port, removes it on exit, and sets THROWAWAY_POSTGRES to its connection string.
#   start_throwaway_postgres [extra server settings...]   e.g. -c fsync=off

_pg_log() { printf '[postgres] %s\n' "$*" >&2; }

# A loopback port nobody listens on, from the range above the usual services.
_pg_free_port() {
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

# True when Debian's PostgreSQL server binaries are installed.
postgres_installed() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$bindir" ] && [ -x "$bindir/initdb" ]
}

start_throwaway_postgres() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    _pg_log "PostgreSQL is not installed. Install it (sudo apt-get install -y postgresql)."
    return 1
  fi

  PG_DIR=$(mktemp -d /tmp/latchkey-pg.XXXXXX)
  PG_PORT=$(_pg_free_port)

  # PostgreSQL refuses to run as root; as root, run it as the postgres account the package created.
  local run=()
  if [ "$(id -u)" = "0" ]; then
    chown postgres "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  PG_RUN=("${run[@]}")

  _pg_log "starting a throwaway PostgreSQL ($("$bindir/postgres" --version)) on 127.0.0.1:$PG_PORT"
  "${run[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${run[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 $*" \
    >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_BINDIR=$bindir
  trap stop_throwaway_postgres EXIT
  THROWAWAY_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres;Pooling=true"
  export THROWAWAY_POSTGRES
}

stop_throwaway_postgres() {
  "${PG_RUN[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  # What went wrong with the server itself (a crash, a full disk, too many connections) is
  # otherwise lost with its folder, and explains failures that tests see only as 503s.
  local trouble
  trouble=$(grep -E 'PANIC|terminated by signal|all server processes terminated|No space left|out of memory|too many clients|in recovery mode' \
    "$PG_DIR/server.log" 2>/dev/null | tail -n 15 || true)
  if [ -n "$trouble" ]; then
    _pg_log "the server reported trouble during the run:"
    printf '%s\n' "$trouble" | sed 's/^/[postgres]   /' >&2
  fi
  rm -rf "$PG_DIR"
}
