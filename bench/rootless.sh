#!/usr/bin/env bash
# Rootless berth (issue 15) beside rootless podman and rootful berth, in one run, with ratios:
# `run --rm --network none busybox true` by a throwaway user (its own /etc/subuid and
# /etc/subgid range, made here and removed after) through berth and through podman, and by
# root through berth. Targets: rootless berth at most 0.2x rootless podman, at most 2x rootful
# berth. Numbers, not tests: nothing here asserts on a timing. Run as root after scripts/setup.
#
#   bench/rootless.sh                   # builds the release berth first (BERTH=path: that binary)
#   RUNS=50 bench/rootless.sh
#   NETWORK=default bench/rootless.sh   # the default network (slirp4netns) for the rootless runs
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
NETWORK=${NETWORK:-none}
PODMAN_RUNTIME=${PODMAN_RUNTIME:-crun}
# The release berth as users get it (bench/lib/release.sh), unless BERTH names a binary.
# shellcheck source=bench/lib/release.sh
. bench/lib/release.sh
release_berth
for tool in hyperfine useradd runuser newuidmap python3; do
  command -v "$tool" >/dev/null || { echo "bench: needs $tool (scripts/setup)" >&2; exit 1; }
done

user=brbench$$
work=$(mktemp -d /tmp/berth-bench-rootless-XXXXXX)
chmod 0755 "$work"
home=$work/home
out=${OUT:-target/bench}
mkdir -p "$out"
# The binary where the user can run it, whatever the target directory's permissions.
cp "$BERTH" "$work/berth" && chmod 0755 "$work/berth"

cleanup() {
  set +e
  for pid in $(ps -o pid= -u "$user" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  userdel -r -f "$user" >/dev/null 2>&1
  "$BERTH" --root "$work/root-berth" rm -f $("$BERTH" --root "$work/root-berth" ps -aq 2>/dev/null) >/dev/null 2>&1
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

useradd -m -d "$home" -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
start=$((1200000000 + ($$ % 1000) * 65536))
usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$user"
uid=$(id -u "$user")
as_user() {
  runuser -u "$user" -- env -i HOME="$home" PATH=/usr/bin:/bin XDG_RUNTIME_DIR="$home/run" "$@"
}
as_user mkdir -p -m 0700 "$home/run"

# --- one image for all ------------------------------------------------------------------------
# shellcheck source=bench/lib/busybox.sh
. bench/lib/busybox.sh
busybox_image_tar "$work"
chmod 0644 "$work/rootfs.tar"
as_user "$work/berth" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
"$BERTH" --root "$work/root-berth" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
net=(--network "$NETWORK")
[ "$NETWORK" = default ] && net=()

podman_ok=
pm_user() {
  as_user podman --root "$home/podman" --runroot "$home/run/podman" --cgroup-manager cgroupfs \
    --events-backend file --runtime "$PODMAN_RUNTIME" "$@"
}
if command -v podman >/dev/null && pm_user import "$work/rootfs.tar" bench/busybox:latest >/dev/null 2>&1 &&
  pm_user run --rm "${net[@]}" bench/busybox:latest true >/dev/null 2>&1; then
  podman_ok=1
else
  echo "bench: rootless podman skipped (it could not run the image here)" >&2
fi

declare -A median
measure() {
  local name=$1
  shift
  hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$out/rootless-$name.json" "$*" >/dev/null 2>&1 ||
    { echo "bench: $name failed" >&2; return 0; }
  median[$name]=$(python3 -c "import json;print(json.load(open('$out/rootless-$name.json'))['results'][0]['median']*1000)")
}
# hyperfine -N runs the command line without a shell: runuser and env carry the user's side.
user_cmd="runuser -u $user -- env -i HOME=$home PATH=/usr/bin:/bin XDG_RUNTIME_DIR=$home/run"
measure berth-rootless "$user_cmd $work/berth run --rm ${net[*]} bench/busybox:latest true"
[ -n "$podman_ok" ] && measure podman-rootless "$user_cmd podman --root $home/podman --runroot $home/run/podman --cgroup-manager cgroupfs --events-backend file --runtime $PODMAN_RUNTIME run --rm ${net[*]} bench/busybox:latest true"
measure berth-root "$BERTH --root $work/root-berth run --rm --network none bench/busybox:latest true"
# runuser's own cost, which the two rootless lines carry.
measure runuser "$user_cmd true"

ratio() { [ -n "${median[$1]:-}" ] && [ -n "${median[$2]:-}" ] && python3 -c "print(f'{${median[$1]}/${median[$2]}:.2f}x')" || echo "n/a"; }
ms() { [ -n "${median[$1]:-}" ] && printf '%8.1f ms' "${median[$1]}" || printf '%11s' n/a; }
echo "rootless run --rm true (network: $NETWORK; $RUNS runs, medians; user $user, uid $uid)"
printf '  %-32s %s\n' "berth, rootless" "$(ms berth-rootless)"
printf '  %-32s %s\n' "podman ($PODMAN_RUNTIME), rootless" "$(ms podman-rootless)"
printf '  %-32s %s\n' "berth, root" "$(ms berth-root)"
printf '  %-32s %s\n' "runuser alone (in both rootless)" "$(ms runuser)"
echo "ratios:"
printf '  %-32s %s (target <= 0.2x)\n' "berth / podman, rootless" "$(ratio berth-rootless podman-rootless)"
printf '  %-32s %s (target <= 2x)\n' "berth rootless / berth root" "$(ratio berth-rootless berth-root)"
