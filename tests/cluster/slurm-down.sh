#!/bin/bash
# Stop what slurm-up.sh started, by the pid files the daemons wrote, checking each process's
# name so that a stale pid file never kills an unrelated process.
# --check: stop nothing; exit 0 if slurmctld runs, 1 if not.
daemons="slurmd:/run/slurmd.pid slurmctld:/run/slurmctld.pid slurmdbd:/run/slurmdbd.pid
  mariadbd:/run/mysqld/mysqld.pid munged:/run/munge/munged.pid"
running() {  # running NAME PIDFILE: the pid, if that file names a live process called NAME
  local p
  [ -s "$2" ] && p=$(cat "$2") && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && echo "$p"
}
if [ "${1:-}" = --check ]; then
  running slurmctld /run/slurmctld.pid >/dev/null
  exit
fi
for pair in $daemons; do
  name=${pair%%:*} file=${pair#*:}
  p=$(running "$name" "$file") || { rm -f "$file"; continue; }
  kill "$p"
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  rm -f "$file"
done
echo "slurm down"
