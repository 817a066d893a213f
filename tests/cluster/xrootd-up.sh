#!/bin/bash
# Debian's XRootD data server on localhost, serving $XRD_ROOT/data as
# root://localhost:$XRD_PORT//eos/... (defaults: /tmp/hepsnake-xrd, port 11094). Anonymous
# access, no Kerberos/GSI. Installs xrootd-server when missing. Stop it with xrootd-down.sh.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PATH="$PATH:/usr/sbin:/sbin"  # the daemons live in sbin
R=${XRD_ROOT:-/tmp/hepsnake-xrd}
PORT=${XRD_PORT:-11094}
[ "$(id -u)" = 0 ] || { echo "xrootd-up.sh: must run as root" >&2; exit 1; }
if XRD_ROOT=$R "$(dirname "$0")/xrootd-down.sh" --check; then
  echo "xrootd already up: pid $(cat "$R/run/xrootd.pid"), port $PORT"
  exit 0
fi
if ! command -v xrootd >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends xrootd-server >/dev/null
fi
mkdir -p "$R/admin" "$R/run" "$R/log" "$R/data/eos"
cat > "$R/xrootd.cfg" <<CONF
xrd.port $PORT
all.export /eos
oss.localroot $R/data
all.adminpath $R/admin
all.pidpath $R/run
CONF
# xrootd refuses to run as root: -R drops to user xrootd, which must own its directories
chown -R xrootd:xrootd "$R"
chmod 0755 "$R"
xrootd -b -R xrootd -c "$R/xrootd.cfg" -l "$R/log/xrootd.log" -s "$R/run/xrootd.pid"
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
(exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null || { tail -20 "$R/log/xrootd.log"; exit 1; }
for _ in $(seq 50); do [ -s "$R/run/xrootd.pid" ] && break; sleep 0.1; done
echo "xrootd up: pid $(cat "$R/run/xrootd.pid"), port $PORT, root://localhost:$PORT//eos = $R/data/eos"
