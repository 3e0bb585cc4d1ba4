#!/bin/sh
# slurm-up.sh — start a private single-node Slurm cluster for the tests (make check-slurm).
#   sh tests/slurm/slurm-up.sh DIR
# Everything lives under DIR (normally BUILD/tests/out/slurm-cluster): slurm.conf, the munge key
# and socket, slurmctld's state, slurmd's spool, the pid files and the daemons' logs.  The
# cluster has one node (this machine, 2 CPUs, reached on 127.0.0.1), one partition `poa`
# (default, no time limit, --requeue allowed), free TCP ports found at start, and no accounting.
# munged, slurmctld and slurmd run as root with options that point them at DIR instead of the
# system paths (/run/munge, /var/spool/slurm*, /etc/slurm), so a system Slurm, if any, is not
# touched.  Clients find the cluster through SLURM_CONF: `. DIR/env.sh` sets it.
# Installs Debian's slurm-wlm and munge (tools/install-deps.sh slurm) when they are missing.
# Stop it with tests/slurm/slurm-down.sh DIR (only the processes started here are stopped).
# Exit status: 0 cluster up; 77 this machine cannot run it (not root, packages not
# installable; the reason is printed); 1 the daemons did not come up (their logs are printed).
# Environment: POA_SLURM_CPUS (CPUs of the node, default 2), POA_SLURM_NICE (added to slurmd's
# nice value and so to the jobs', default 0: the jobs run as nice as whoever starts the cluster,
# e.g. `nice make check-slurm`), POA_SLURM_PORT (first TCP port tried, default 16817).
set -eu
dir=${1:?usage: slurm-up.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
top_src=$(cd "$here/../.." && pwd)
cpus=${POA_SLURM_CPUS:-2}
nice_value=${POA_SLURM_NICE:-0}

skip() { echo "slurm-up: SKIPPED: $*"; exit 77; }
die() { echo "slurm-up: ERROR: $*" >&2; exit 1; }

# ------------------------------------------------------------------ packages
[ "$(id -u)" -eq 0 ] || skip "needs root (slurmd runs jobs as their user and munged/slurmd want root)"
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 ||
    ! command -v munged >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1; then
    echo "slurm-up: installing slurm-wlm and munge (tools/install-deps.sh slurm)"
    sh "$top_src/tools/install-deps.sh" slurm || skip "cannot install slurm-wlm/munge (tools/install-deps.sh slurm failed)"
fi
for p in slurmctld slurmd munged mungekey sbatch scontrol sinfo; do
    command -v $p >/dev/null 2>&1 || skip "$p not found after installing slurm-wlm and munge"
done

# ------------------------------------------------------------------ layout
# DIR is emptied: refuse a non-empty folder that is not a test cluster's.
if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] &&
    ! grep -q "^# Private single-node test cluster written by tests/slurm/slurm-up.sh" "$dir/etc/slurm.conf" 2>/dev/null; then
    die "$dir exists and is not a test cluster's folder: give a new or empty folder"
fi
if [ -f "$dir/run/slurmctld.pid" ] || [ -f "$dir/run/munged.pid" ]; then
    sh "$here/slurm-down.sh" "$dir" >/dev/null 2>&1 || true
fi
rm -rf "$dir"
mkdir -p "$dir/etc" "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
dir=$(cd "$dir" && pwd)
chmod 700 "$dir/munge"

# Two free TCP ports on 127.0.0.1 (a listening port accepts a connection; bash's /dev/tcp probes).
port_free() { ! bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
p=${POA_SLURM_PORT:-16817}
while ! port_free $p || ! port_free $((p + 1)); do
    p=$((p + 2))
    [ $p -lt 17817 ] || die "no two free TCP ports between ${POA_SLURM_PORT:-16817} and 17817"
done
ctld_port=$p
slurmd_port=$((p + 1))
host=$(hostname -s)

# ------------------------------------------------------------------ munge
mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=1024 2>/dev/null
chmod 600 "$dir/munge/munge.key"
POA_SLURM_CLUSTER=$dir
export POA_SLURM_CLUSTER
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" ||
    { cat "$dir/log/munged.log" 2>/dev/null; die "munged did not start"; }

# ------------------------------------------------------------------ slurm.conf
cat >"$dir/etc/slurm.conf" <<EOF
# Private single-node test cluster written by tests/slurm/slurm-up.sh (poa).
ClusterName=poa-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in containers: track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# The sbatch scripts name their MPI plugin (srun --mpi=pmix).
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0
# Jobs may be requeued (sbatch --requeue, scontrol requeue); finished jobs stay visible to
# scontrol for 10 minutes (the tests read their exit codes and restart counts).
JobRequeue=1
MinJobAge=600
KillWait=30
InactiveLimit=0
ReturnToService=2
SlurmdTimeout=300
MailProg=/bin/true
SlurmdParameters=config_overrides
NodeName=poa-node NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=poa Nodes=poa-node Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$dir/env.sh" <<EOF
# . this file to talk to the test cluster of tests/slurm/slurm-up.sh
SLURM_CONF=$dir/etc/slurm.conf
export SLURM_CONF
EOF
SLURM_CONF=$dir/etc/slurm.conf
export SLURM_CONF

# ------------------------------------------------------------------ daemons
slurmctld -f "$SLURM_CONF" -c || { cat "$dir/log/slurmctld.log" 2>/dev/null; die "slurmctld did not start"; }
nice -n "$nice_value" slurmd -f "$SLURM_CONF" -N poa-node ||
    { cat "$dir/log/slurmd.log" 2>/dev/null; die "slurmd did not start"; }

# Wait (30 s at most) for the node to be idle.
i=0
state=
while [ $i -lt 60 ]; do
    state=$(sinfo -h -n poa-node -o %T 2>/dev/null || true)
    case "$state" in idle*) break ;; esac
    sleep 0.5
    i=$((i + 1))
done
case "$state" in
idle*) ;;
*)
    for f in slurmctld slurmd munged; do echo "---- $dir/log/$f.log"; tail -30 "$dir/log/$f.log" 2>/dev/null; done
    die "node poa-node is '$state' after 30 s, not idle"
    ;;
esac
echo "slurm-up: cluster up (slurmctld port $ctld_port, node poa-node with $cpus CPUs, partition poa); . $dir/env.sh"
