#!/usr/bin/env bash
# N idle containers (default 1000) on this machine: how long they take to start, what their
# monitors cost in memory, and that removing them leaves nothing behind (mounts, cgroups,
# processes, veths, leases). Numbers, not a test; run as root after scripts/setup.
#
#   bench/idle.sh                 # 1000 containers on the default bridge network
#   N=200 NETWORK=none bench/idle.sh
#   N=50 HEALTH=1 SETTLE=20 bench/idle.sh   # each with a 1 s health check, measured after 20 s
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
NETWORK=${NETWORK:-bridge}
PARALLEL=${PARALLEL:-4}
# HEALTH=1: every container probes `true` each second; SETTLE: seconds to wait before the
# memory is read (so that the monitors have run their probes, or trimmed after the start).
HEALTH=${HEALTH:-}
SETTLE=${SETTLE:-0}
health_flags=()
[ -n "$HEALTH" ] && health_flags=(--health-cmd true --health-interval 1s)
# The release berth as users get it (bench/lib/release.sh), unless BERTH names a binary.
# shellcheck source=bench/lib/release.sh
. bench/lib/release.sh
release_berth
work=$(mktemp -d /tmp/berth-idle-XXXXXX)
export BERTH_ROOT=$work/root
cleanup() {
  set +e
  "$BERTH" ps -aq | xargs -r -n 50 "$BERTH" rm -f >/dev/null 2>&1
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc"
cp /bin/busybox "$rootfs/bin/busybox"
for a in sh sleep true; do ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" import "$work/rootfs.tar" idle/busybox >/dev/null

# The ids of this root's containers, kept from while they run (the leases are counted by id:
# the default network's leases are machine-wide, in /run/berth/network, shared with others).
: >"$work/ids"
count_leaks() {
  local mounts cgroups monitors veths leases
  mounts=$(grep -c " $work/root" /proc/mounts || true)
  cgroups=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -path '*/berth/*' -type d 2>/dev/null | wc -l)
  monitors=$(pgrep -af "__monitor" | grep -cF -- "--root $work/root " || true)
  veths=$(ip -o link show type veth 2>/dev/null | grep -c 'master berth' || true)
  leases=$(python3 -c "
import sys; sys.path.insert(0, 'bench/lib')
import importlib; s = importlib.import_module('soak-state')
ids = set(open('$work/ids').read().split())
print(len(s.leases(ids, s.networks('$work/root'))['ours']))")
  echo "mounts=$mounts cgroups=$cgroups monitors=$monitors veths=$veths leases=$leases (of these containers)"
}

echo "before: $(count_leaks)"
mem_before=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
load_before=$(cut -d' ' -f1 /proc/loadavg)
start=$(date +%s.%N)
seq "$N" | xargs -P "$PARALLEL" -I{} "$BERTH" run -d --network "$NETWORK" "${health_flags[@]}" --name idle{} idle/busybox sleep 100000 >/dev/null
end=$(date +%s.%N)
load_after=$(cut -d' ' -f1 /proc/loadavg)
sleep "$SETTLE"
[ -n "$HEALTH" ] && echo "health: $("$BERTH" ps --filter health=healthy -q | wc -l) of $N healthy"
running=$("$BERTH" ps -q | wc -l)
mem_after=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
pss_total=0
priv_total=0
# This root's monitors only: other roots' (another bench, tests) are not ours to count.
"$BERTH" ps -aq --no-trunc >"$work/ids"
for p in $(pgrep -af "__monitor" | grep -Ff "$work/ids" | awk '{print $1}'); do
  read -r pss priv < <(awk '/^Pss:/{p=$2} /^Private_Clean:/{pc=$2} /^Private_Dirty:/{pd=$2} END{print p, pc+pd}' "/proc/$p/smaps_rollup" 2>/dev/null || echo "0 0")
  pss_total=$((pss_total + pss)); priv_total=$((priv_total + priv))
done
echo "started $running of $N containers in $(python3 -c "print(f'{$end-$start:.1f}')") s ($PARALLEL at a time, network $NETWORK);" \
  "load average $load_before -> $load_after; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
python3 -c "
moved = abs($load_after - $load_before) > 1
took = $end - $start
if moved:
    print('  no verdict: the load average moved by more than 1 while they started')
elif $N == 1000:
    print('  1000 started in %.1f s: target <= 20 s %s' % (took, 'met' if took <= 20 else 'NOT met'))
"
echo "memory: MemAvailable fell by $(( (mem_before - mem_after) / 1024 )) MiB;" \
  "monitors: PSS $(( pss_total / 1024 )) MiB in all, $(python3 -c "print(f'{$pss_total/1024/max($running,1):.2f}')") MiB each;" \
  "private $(python3 -c "print(f'{$priv_total/1024/max($running,1):.2f}')") MiB each"
echo "during: $(count_leaks)"
start=$(date +%s.%N)
"$BERTH" ps -aq | xargs -r -P "$PARALLEL" -n 25 "$BERTH" rm -f >/dev/null
end=$(date +%s.%N)
echo "removed all in $(python3 -c "print(f'{$end-$start:.1f}')") s"
# rm -f returns once the containers are gone; their monitors finish the teardown behind it.
for _ in $(seq 300); do
  [ "$(pgrep -af "__monitor" | grep -cF -- "--root $work/root " || true)" = 0 ] && break
  sleep 0.2
done
echo "after: $(count_leaks)   (every count should be back to 'before')"
