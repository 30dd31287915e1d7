#!/usr/bin/env bash
# hyperfine's --prepare for start-until-healthy.sh: waits until the server of the previous sample
# (its pid in the file) has stopped, so that no two samples overlap. Kills it after 30 s.
#   wait-stopped.sh <pid-file>
set -u
pid_file=$1
[ -s "$pid_file" ] || exit 0
pid=$(cat "$pid_file")
# Gone, or a zombie waiting for whoever adopted it to reap it: stopped either way.
running() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
for _ in $(seq 1 3000); do
  running "$pid" || { rm -f "$pid_file"; exit 0; }
  sleep 0.01
done
echo "process $pid did not stop within 30 s of SIGTERM; killing it" >&2
kill -KILL "$pid" 2>/dev/null
rm -f "$pid_file"
exit 0
