#!/usr/bin/env bash
# Soak (issue 10): `berth run --rm` on the default bridge network, many times in a row and then
# many at once, counting the runs that fail and what the machine holds afterwards that it did
# not hold before. Not a CI test (the full counts take a long while). Run as root after
# scripts/setup; the release berth is built first, as bench/engine.sh does.
#
#   bench/soak.sh                                      # 10000 in a row, then 1000 with 20 at once
#   SEQUENTIAL=200 PARALLEL=100 JOBS=20 bench/soak.sh  # a quick run
#   BERTH=path bench/soak.sh                           # that binary, not a fresh release build
#   NETWORK=soaknet bench/soak.sh                      # a user network (made here) with its DNS
#                                                      # server, instead of the default bridge
#
# What it counts, before and after (bench/lib/soak-state.py): mounts of its data root and of
# /run/berth; cgroups berth/<id> of its containers in every hierarchy (each v1 controller,
# unified, or the cgroup2 root); network links (its containers' veths, every vberth* link);
# berth's nftables rules and set and map elements; IPAM leases (its containers', all); files
# under the data root's containers/, its runtime state directory and /run/berth; berth
# processes left, and the open fds of berth's long-lived processes (DNS servers) and of any
# berth process left. Its own containers are told apart from the rest of the machine's by the
# ids their --cidfile gave, so other engineers' containers running meanwhile do not count; the
# machine-wide totals are printed beside them.
# Exits 1 if a run failed or anything of its own was left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
SEQUENTIAL=${SEQUENTIAL:-10000}
PARALLEL=${PARALLEL:-1000}
JOBS=${JOBS:-20}
NETWORK=${NETWORK:-}
# The release berth as users get it (bench/lib/release.sh), unless BERTH names a binary. The
# DNS server of user networks is a berth command, so berth is all it takes.
# shellcheck source=bench/lib/release.sh
. bench/lib/release.sh
release_berth

work=$(mktemp -d /tmp/berth-soak-XXXXXX)
export BERTH_ROOT=$work/root
cleanup() {
  set +e
  "$BERTH" rm -f $("$BERTH" ps -aq 2>/dev/null) >/dev/null 2>&1
  [ -n "$NETWORK" ] && "$BERTH" network rm "$NETWORK" >/dev/null 2>&1
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$work/cid" "$work/failed"
cp /bin/busybox "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh" && ln -s busybox "$rootfs/bin/true"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" import "$work/rootfs.tar" soak/busybox:latest >/dev/null
net=()
if [ -n "$NETWORK" ]; then
  "$BERTH" network create "$NETWORK" >/dev/null
  net=(--network "$NETWORK")
fi
# One container first, so the network, its bridge (and DNS server) and berth's nftables table
# exist in the "before" state: they are made once, not per container.
"$BERTH" run --rm "${net[@]}" --cidfile "$work/cid/first" soak/busybox true

# run --rm returns once the container is gone from every listing; its monitor finishes the
# teardown behind it: give that a bounded while, polled, before taking a state.
settle() {
  for _ in $(seq 300); do
    python3 bench/lib/soak-state.py --pending "$BERTH_ROOT" "$work/cid" && break
    sleep 0.2
  done
}
state() { python3 bench/lib/soak-state.py "$BERTH_ROOT" "$work/cid"; }
settle
state >"$work/before.json"

net_flag=${NETWORK:+--network=$NETWORK}
# One run: its id goes to cid/<n>; a failure leaves its exit code and first line in failed/<n>.
run_one() {
  local n=$1 err
  if ! err=$("$BERTH" run --rm $net_flag --cidfile "$work/cid/$n" soak/busybox true 2>&1 >/dev/null); then
    echo "exit $?: ${err%%$'\n'*}" >"$work/failed/$n"
  fi
}

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
started=$(date +%s%N)
for i in $(seq 1 "$SEQUENTIAL"); do
  run_one "s$i" || true
done
sequential_ms=$(ms_since "$started")

export -f run_one
export BERTH work net_flag
started=$(date +%s%N)
seq 1 "$PARALLEL" | xargs -P "$JOBS" -I{} bash -c 'run_one p{}' || true
parallel_ms=$(ms_since "$started")

settle
state >"$work/after.json"

failed_seq=$(find "$work/failed" -name 's*' | wc -l)
failed_par=$(find "$work/failed" -name 'p*' | wc -l)
echo
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
per_run() { [ "$2" -gt 0 ] && echo "$(($1 / $2)) ms a run" || echo "-"; }
echo "network: ${NETWORK:-bridge (the default)}"
echo "sequential: $SEQUENTIAL runs in $((sequential_ms / 1000)) s ($(per_run "$sequential_ms" "$SEQUENTIAL")), $failed_seq failed"
echo "parallel:   $PARALLEL runs, $JOBS at once, in $((parallel_ms / 1000)) s ($(per_run "$parallel_ms" "$PARALLEL")), $failed_par failed"
if [ $((failed_seq + failed_par)) -gt 0 ]; then
  echo "failures (count, message):"
  cat "$work"/failed/* | sort | uniq -c | sort -rn | head -20
fi
echo
leaked=0
python3 bench/lib/soak-state.py --compare "$work/before.json" "$work/after.json" || leaked=1
[ $((failed_seq + failed_par)) -eq 0 ] && [ $leaked -eq 0 ]
