#!/bin/sh
# slurm-down.sh — stop the private test cluster started by tests/slurm/slurm-up.sh DIR.
#   sh tests/slurm/slurm-down.sh DIR
# Cancels the cluster's jobs, then stops slurmd, slurmctld and munged by the pids in DIR/run
# (each pid is checked to be that daemon before it is signalled), and finally any slurmstepd
# left by this cluster's slurmd (found by the POA_SLURM_CLUSTER=DIR its environment inherits).
# No other process is touched.  DIR and its logs are kept.  Exit status 0 (also when nothing ran).
set -u
dir=${1:?usage: slurm-down.sh DIR}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)
SLURM_CONF=$dir/etc/slurm.conf
export SLURM_CONF

# pid_of NAME: the pid in DIR/run/NAME.pid if that process is still NAME, else nothing
pid_of() {
    f=$dir/run/$1.pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null)
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    comm=$(cat /proc/$pid/comm 2>/dev/null || true)
    case "$comm" in "$1"*) echo "$pid" ;; esac
}

# stop NAME: TERM, then KILL after 15 s
stop() {
    pid=$(pid_of "$1")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do
        sleep 0.5
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm-down: $1 (pid $pid) ignored SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    echo "slurm-down: stopped $1 (pid $pid)"
}

# Cancel the jobs while slurmctld and slurmd still run, so that their processes are ended by Slurm.
if [ -n "$(pid_of slurmctld)" ] && command -v squeue >/dev/null 2>&1; then
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "$jobs" ]; then
        echo "slurm-down: cancelling jobs $jobs"
        scancel $jobs 2>/dev/null
        i=0
        while [ -n "$(squeue -h -o %A 2>/dev/null)" ] && [ $i -lt 40 ]; do
            sleep 0.5
            i=$((i + 1))
        done
    fi
fi
stop slurmd
stop slurmctld
stop munged

# Job step daemons of this cluster that outlived slurmd (their environment names this cluster).
for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
    tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "POA_SLURM_CLUSTER=$dir" || continue
    echo "slurm-down: killing leftover slurmstepd (pid ${p#/proc/})"
    kill -KILL "${p#/proc/}" 2>/dev/null
done
rm -f "$dir/run/"*.pid
exit 0
