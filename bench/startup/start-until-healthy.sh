#!/usr/bin/env bash
# One start-up sample for hyperfine (bench/Latchkey.Bench.Harness/StartupBench.cs): starts a server,
# polls its health URL every 10 ms until it answers 2xx, then asks it to stop (SIGTERM) and returns
# at once, so the time hyperfine takes is start to healthy. The stop finishes outside the timing:
# hyperfine's --prepare runs wait-stopped.sh before the next sample.
#
# The polling uses bash's own /dev/tcp and read, not curl and sleep: a process started every 10 ms
# took a core's worth of time from the starting server and made a plain ASP.NET Core app's start
# look a quarter slower.
#   start-until-healthy.sh <http://127.0.0.1:port/path> <pid-file> <log-file> <command> [arguments...]
set -u
url=$1 pid_file=$2 log_file=$3
shift 3
address=${url#http://}
path=/${address#*/}
address=${address%%/*}
host=${address%:*} port=${address##*:}

"$@" >>"$log_file" 2>&1 &
server=$!
echo "$server" >"$pid_file"

# True when the URL answers 2xx; false at once while nothing listens on the port.
healthy() {
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$address" >&3
  local status=""
  read -r -t 2 _ status _ <&3
  exec 3<&-
  [[ $status == 2* ]]
}

# A pipe that never has anything to read: `read -t` on it is a 10 ms sleep without a process.
exec 4<> <(:)
# Give up after 60 s: a server that does not come up is an error, not a slow sample.
for _ in $(seq 1 6000); do
  if healthy 2>/dev/null; then
    kill -TERM "$server"
    exit 0
  fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "the server exited before answering $url; see $log_file" >&2
    exit 1
  fi
  read -r -t 0.01 -u 4 _ || true
done
echo "the server did not answer $url within 60 s; see $log_file" >&2
kill -KILL "$server" 2>/dev/null
exit 1
