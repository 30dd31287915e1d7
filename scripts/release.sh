#!/usr/bin/env bash
# A self-contained Latchkey release for this machine's platform (docs/operations.md, "Installing a
# release"): the server compiled ahead of time with the .NET runtime (ReadyToRun, composite), the
# systemd unit, an example settings file and the docs, as dist/latchkey-<version>-<rid>.tar.gz.
#   scripts/release.sh                       # the tarball
#   scripts/release.sh --publish-only DIR    # only the published server, into DIR (bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

publish_only=""
artifacts="dist/build"
while [ $# -gt 0 ]; do
  case "$1" in
    --publish-only) publish_only="$2"; shift 2 ;;
    --artifacts) artifacts="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "release.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

rid=$(dotnet --info | awk -F': *' '/^ *RID:/ { print $2; exit }')
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
out=${publish_only:-dist/latchkey-$version-$rid}

echo "[release] publishing Latchkey $version for $rid (self-contained, composite ReadyToRun: about two minutes)"
rm -rf "$out"
# Its own intermediate files (--artifacts-path), apart from the framework-dependent builds in obj/.
dotnet publish src/Latchkey/Latchkey.csproj -c Release -r "$rid" --self-contained true \
  -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true \
  --artifacts-path "$artifacts" -o "$out" -nologo -v q -clp:NoSummary
[ -n "$publish_only" ] && exit 0

cp packaging/latchkey.service packaging/latchkey.env.example README.md "$out/"
cp -r docs "$out/docs"
tar -C "$(dirname "$out")" -czf "$out.tar.gz" "$(basename "$out")"
echo "[release] $out.tar.gz ($(du -h "$out.tar.gz" | cut -f1)); install it as docs/operations.md says"
