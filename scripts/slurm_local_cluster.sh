#!/bin/bash
# A single-node SLURM cluster on this machine, from Debian's packages (slurm-wlm, munge), for
# running the workflow through profiles/slurm for real (tests/pipeline/test_slurm_cluster.py).
#
#   scripts/slurm_local_cluster.sh start DIR   # config, state and logs under DIR; prints SLURM_CONF=...
#   scripts/slurm_local_cluster.sh stop DIR
#
# Needs root (munged, slurmctld and slurmd run as root here) and the packages:
#   apt-get install -y --no-install-recommends slurm-wlm munge
# Accounting is off, so job states come from squeue (MinJobAge keeps finished jobs listed).
set -euo pipefail

action=${1:?usage: $0 start|stop DIR}
dir=$(realpath -m "${2:?usage: $0 start|stop DIR}")
conf=$dir/slurm.conf

stop() {
    for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
        if [[ -f $pidfile ]]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
}

if [[ $action == stop ]]; then
    stop
    exit 0
fi
[[ $action == start ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch squeue; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y slurm-wlm munge" >&2; exit 3; }
done
[[ $(id -u) == 0 ]] || { echo "needs root (munged and the slurm daemons)" >&2; exit 3; }

mkdir -p "$dir"/state "$dir"/spool "$dir"/munge
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$conf" <<EOF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SlurmctldParameters=enable_configless
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

# munge on its default socket: a configless slurmd authenticates before it has any config
mkdir -p /run/munge
munged --force --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
SLURM_CONF=$conf slurmctld
slurmd --conf-server "$host"  # configless: job steps (srun) read slurmd's cached copy, /run/slurm/conf
for _ in $(seq 60); do
    if SLURM_CONF=$conf sinfo -h -o %t 2>/dev/null | grep -qx idle; then
        echo "SLURM_CONF=$conf"
        exit 0
    fi
    sleep 1
done
echo "the node did not become idle; see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1
