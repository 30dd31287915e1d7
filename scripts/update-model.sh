#!/usr/bin/env bash
# After a change to the EF Core model: a migration for each database (when a name is given), then
# the compiled models that Latchkey starts with (docs/architecture.md, "Storage").
#   scripts/update-model.sh [MigrationName]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet tool restore >/dev/null
for provider in Sqlite Postgres; do
  if [ $# -ge 1 ]; then
    dotnet ef migrations add "$1" --project src/Latchkey --context "${provider}LatchkeyDbContext" \
      --output-dir "Storage/Migrations/$provider" --namespace "Latchkey.Storage.Migrations.$provider"
    # The newest migration's id, which the start-up's up-to-date check compares with (LatestMigrations).
    latest=$(ls "src/Latchkey/Storage/Migrations/$provider" | grep -E '^[0-9]{14}_[A-Za-z0-9]+\.cs$' | sort | tail -n 1)
    sed -i -E "s/(public const string $provider = \")[^\"]*(\";)/\1${latest%.cs}\2/" src/Latchkey/Storage/StorageSetup.cs
  fi
  rm -rf "src/Latchkey/Storage/CompiledModels/$provider"
  dotnet ef dbcontext optimize --project src/Latchkey --context "${provider}LatchkeyDbContext" \
    --output-dir "Storage/CompiledModels/$provider" --namespace "Latchkey.Storage.CompiledModels.$provider"
done
