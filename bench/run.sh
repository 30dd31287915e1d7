#!/usr/bin/env bash
# The side-by-side benchmark (docs/BENCHMARKS.md). Builds Release, times start-ups with hyperfine,
# starts the ceiling (a plain ASP.NET Core endpoint), the peer (oidc-provider) and Latchkey on
# SQLite (and on PostgreSQL when Debian's postgresql package is installed) on loopback, drives each
# workload with wrk in interleaved rounds, and prints the tables with every ratio's median.
# Options: ./bench/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/throwaway-postgres.sh

say() { printf '[bench] %s\n' "$*" >&2; }

harness=bench/Latchkey.Bench.Harness/bin/Release/net10.0/latchkey-bench.dll
for arg in "$@"; do
  if [ "$arg" = "--help" ] || [ "$arg" = "-h" ]; then
    dotnet build bench/Latchkey.Bench.Harness/Latchkey.Bench.Harness.csproj -c Release -nologo -v q -clp:NoSummary >&2
    exec dotnet "$harness" --help
  fi
done

# Debian packages: wrk, the load generator for every target; hyperfine, which times start-ups.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v hyperfine >/dev/null || missing+=(hyperfine)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (Debian packages)"
  sudo_cmd=()
  [ "$(id -u)" = "0" ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi
command -v node >/dev/null || { say "Node.js is needed for the peer (oidc-provider); install nodejs and npm."; exit 1; }

if [ ! -d bench/peer/node_modules/oidc-provider ]; then
  say "installing the peer (npm ci in bench/peer)"
  (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# Latchkey as it is released (docs/operations.md, "Release build"): self-contained for this
# machine, its code and the runtime's compiled ahead of time together (ReadyToRun, composite), so
# that a start does not spend its first second in the JIT. Throughput after the warm-up is the
# JIT's tier-1 code either way.
# The same publish as a release's (scripts/release.sh), so every run starts what operators install.
scripts/release.sh --publish-only bench/results/build/latchkey-release --artifacts bench/results/build
dotnet build bench/Latchkey.Bench.Ceiling/Latchkey.Bench.Ceiling.csproj -c Release -nologo -v q -clp:NoSummary
dotnet build bench/Latchkey.Bench.Harness/Latchkey.Bench.Harness.csproj -c Release -nologo -v q -clp:NoSummary

# Latchkey on PostgreSQL too, unless told otherwise or PostgreSQL is not installed. Commits wait
# for the write-ahead log but not for the disk flush (synchronous_commit=off), the same
# durability trade as SQLite's WAL mode with synchronous=NORMAL.
if [ -z "${LATCHKEY_BENCH_POSTGRES:-}" ] && [[ " $* " != *" --no-postgres "* ]]; then
  if postgres_installed; then
    start_throwaway_postgres -c synchronous_commit=off -c shared_buffers=256MB
    export LATCHKEY_BENCH_POSTGRES="$THROWAWAY_POSTGRES"
  else
    say "PostgreSQL is not installed: measuring Latchkey on SQLite only"
  fi
fi

set +e
dotnet "$harness" --root "$PWD" "$@"
status=$?
set -e
exit $status
