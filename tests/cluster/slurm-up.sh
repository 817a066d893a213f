#!/bin/bash
# A one-node SLURM 22.05 cluster on Debian 12, as root, without systemd: munged, MariaDB,
# slurmdbd (so that `sacct`, the slurm executor plugin's default status command, works as on a
# real site), slurmctld and slurmd. Partitions debug (default), standard and gpu (one fake
# GPU), named like profiles/slurm. Installs the Debian packages when they are missing.
# Stop it with tests/cluster/slurm-down.sh. Used by .ci/run; facts and pitfalls behind each
# setting: tests/cluster/README.md.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PATH="$PATH:/usr/sbin:/sbin"  # the daemons live in sbin
[ "$(id -u)" = 0 ] || { echo "slurm-up.sh: must run as root" >&2; exit 1; }
here=$(dirname "$0")
if "$here/slurm-down.sh" --check; then
  echo "slurm already up: $(sinfo -h -o '%P %T' | tr '\n' ' ')"
  exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null \
  || ! command -v mariadbd >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server >/dev/null
fi

H=$(hostname -s)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
mkdir -p /var/log/slurm /var/spool/slurmctld /var/spool/slurmd /run/munge

# munge: as user munge, with /run/munge owned by it (no systemd tmpfiles here)
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key /run/munge && chmod 0600 /etc/munge/munge.key
runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null

# NodeName = hostname -s, addresses given so no DNS is needed; proctrack/linuxproc and
# task/none need no cgroup setup; RealMemory below what slurmd -C reports (else the node
# drains) and above the largest --mem of the profile. jobacct_gather/linux with
# OverMemoryKill: a job above its --mem is killed by SLURM (OUT_OF_MEMORY), as on a real site.
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$((MEM - 1000)) Gres=gpu:1 State=UNKNOWN
PartitionName=debug    Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=standard Nodes=ALL MaxTime=INFINITE State=UP
PartitionName=gpu      Nodes=ALL MaxTime=INFINITE State=UP
CONF
# a GPU without File= is dropped by slurmd and drains the node: /dev/null stands in
echo "NodeName=$H Name=gpu File=/dev/null" > /etc/slurm/gres.conf

# accounting: MariaDB (localhost only) and slurmdbd
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
/usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid \
  >/var/log/slurm/mariadb.log 2>&1 &
for _ in $(seq 150); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf
slurmdbd
for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/6819) 2>/dev/null && break; sleep 0.2; done

# controller and node daemon (restart both together: slurmctld alone leaves the node unk)
slurmctld
slurmd
for _ in $(seq 150); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2; done
sinfo -h -o %T | grep -qx idle || { sinfo; tail -20 /var/log/slurm/*.log; exit 1; }
srun -t 1 hostname >/dev/null
echo "slurm up: $(sinfo -h -o '%P %T' | tr '\n' ' ')"
