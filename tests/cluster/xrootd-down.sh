#!/bin/bash
# Stop the XRootD server xrootd-up.sh started under $XRD_ROOT (default /tmp/hepsnake-xrd), by
# its pid file, checking the process name. --check: stop nothing; exit 0 if it runs.
R=${XRD_ROOT:-/tmp/hepsnake-xrd}
f=$R/run/xrootd.pid
p=$( [ -s "$f" ] && cat "$f") && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = xrootd ] || p=
if [ "${1:-}" = --check ]; then
  [ -n "$p" ]
  exit
fi
if [ -n "$p" ]; then
  kill "$p"
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$f"
echo "xrootd down"
