#!/usr/bin/env bash
# Start a single-node SLURM (22.05, Debian 12) on localhost for the `slurm` tests; no systemd needed.
# Stop it with .ci/slurm-down.sh (by PID). Needs root. Takes ~15 s from a bare machine.
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    # not slurm-wlm: its recommends pull in ~43 packages
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi

# munge: runs as the munge user and needs /run/munge owned by it
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; \
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key; }
if ! { [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
    runuser -u munge -- /usr/sbin/munged
fi

# slurm.conf: the node line as slurmd measures it (a larger RealMemory leaves the node unusable)
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
node=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]*/NodeName=localhost/')
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
defmem=$(( mem / cpus / 2 ))  # a job without --mem takes part of the node, not all of it
cat >/etc/slurm/slurm.conf <<CONF
# written by gpuproc .ci/slurm-up.sh: single-node test cluster
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MpiDefault=none
ReturnToService=2
$node
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld        # both detach and hold no pipe of the caller
slurmd -N localhost

for _ in $(seq 60); do
    state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
    if [ "$state" = idle ]; then
        echo "slurm up: $(sinfo -h -o '%P %D %T %c CPUs %m MB')"
        exit 0
    fi
    sleep 0.5
done
echo "slurm did not come up (node state: ${state:-none}); see /var/log/slurm/" >&2
exit 1
