#!/usr/bin/env bash
# The Docker Engine API service (issue 12) beside podman's, in one run, with ratios: the docker
# CLI's `docker run --rm busybox true` through `berth system service` and through `podman
# system service`, the engines' own `berth run --rm` and `podman run --rm` beside them, and
# the docker CLI's own start (`docker version` against berth's service). Then CLIENTS docker
# clients at once, each `docker run --rm`, against berth's service: the runs that failed and
# what they left (bench/lib/soak-state.py: containers, mounts, cgroups, veths, processes, the
# service's fds; and the service's children, zombies included). Numbers, not tests: nothing
# here asserts on a timing. Run as root after scripts/setup; needs the docker CLI (client).
#
#   bench/api.sh                        # builds the release berth first (BERTH=path: that binary)
#   RUNS=50 CLIENTS=50 bench/api.sh
#   NETWORK=bridge bench/api.sh         # the default bridge instead of --network none
#
# Exits 1 if a run of the concurrent part failed or anything of its own was left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
CLIENTS=${CLIENTS:-50}
NETWORK=${NETWORK:-none}
PODMAN_RUNTIME=${PODMAN_RUNTIME:-runc}
# The release berth as users get it (bench/lib/release.sh), unless BERTH names a binary.
# shellcheck source=bench/lib/release.sh
. bench/lib/release.sh
release_berth
for tool in hyperfine docker curl; do
  command -v "$tool" >/dev/null || { echo "bench: needs $tool (scripts/setup)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/berth-bench-api-XXXXXX)
out=${OUT:-target/bench}
mkdir -p "$out" "$work/cid" "$work/failed"
pids_to_kill=()
export BERTH_ROOT=$work/berth
# A private client config for the docker CLI (podman reads it too, for credentials).
export DOCKER_CONFIG=$work/docker-config
mkdir -p "$DOCKER_CONFIG" && echo '{}' >"$DOCKER_CONFIG/config.json"
pm_args=(--root "$work/podman" --runroot "$work/podman-run" --tmpdir "$work/podman-tmp"
  --cgroup-manager cgroupfs --events-backend file --runtime "$PODMAN_RUNTIME")
pm() { CONTAINERS_CONF=$work/containers.conf podman "${pm_args[@]}" "$@"; }

cleanup() {
  set +e
  "$BERTH" rm -f $("$BERTH" ps -aq 2>/dev/null) >/dev/null 2>&1
  [ -n "${podman_ok:-}" ] && pm rm -af >/dev/null 2>&1
  for p in "${pids_to_kill[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# --- one image for both ---------------------------------------------------------------------
# shellcheck source=bench/lib/busybox.sh
. bench/lib/busybox.sh
busybox_image_tar "$work"
"$BERTH" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
"$BERTH" save -o "$work/image.tar" bench/busybox:latest

# --- the services -----------------------------------------------------------------------------
ping() { curl -sf --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }
"$BERTH" system service --time 0 "unix://$work/berth.sock" >"$work/berth-service.log" 2>&1 &
berth_service=$!
pids_to_kill+=("$berth_service")
for _ in $(seq 100); do ping "$work/berth.sock" && break; sleep 0.1; done
ping "$work/berth.sock" || { echo "bench: berth's service did not answer:" >&2; cat "$work/berth-service.log" >&2; exit 1; }

# podman: rlimits lowered (root here lacks CAP_SYS_RESOURCE: podman's defaults fail), as engine.sh
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nlock_type = "file"\n' >"$work/containers.conf"
if command -v podman >/dev/null && pm load -i "$work/image.tar" >/dev/null 2>&1 &&
   pm run --rm --network "$NETWORK" bench/busybox true >/dev/null 2>&1; then
  # podman itself in the background (not the function, whose subshell $! would name).
  CONTAINERS_CONF=$work/containers.conf podman "${pm_args[@]}" system service --time 0 \
    "unix://$work/podman.sock" >"$work/podman-service.log" 2>&1 &
  pids_to_kill+=($!)
  for _ in $(seq 100); do ping "$work/podman.sock" && break; sleep 0.1; done
  # The image under the name podman gave it, as the docker CLI will ask for it.
  if docker -H "unix://$work/podman.sock" run --rm --network "$NETWORK" bench/busybox true >/dev/null 2>&1; then
    podman_ok=1
  else
    echo "bench: podman's service skipped (see $work/podman-service.log)" >&2
  fi
else
  echo "bench: podman skipped (it could not run the image here)" >&2
fi

# --- timings ------------------------------------------------------------------------------
declare -A median
measure() { # name, command
  local name=$1; shift
  hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$out/api-$name.json" "$@" >/dev/null 2>&1 ||
    { echo "bench: $name failed" >&2; return 0; }
  median[$name]=$(python3 -c "import json;print(json.load(open('$out/api-$name.json'))['results'][0]['median']*1000)")
}
net="--network $NETWORK"
measure berth_api "docker -H unix://$work/berth.sock run --rm $net bench/busybox true"
measure berth_cli "$BERTH run --rm $net bench/busybox true"
measure docker_version "docker -H unix://$work/berth.sock version"
measure ping "curl -sf --unix-socket $work/berth.sock http://d/_ping"
if [ -n "${podman_ok:-}" ]; then
  measure podman_api "docker -H unix://$work/podman.sock run --rm $net bench/busybox true"
  measure podman_cli "env CONTAINERS_CONF=$work/containers.conf podman ${pm_args[*]} run --rm $net bench/busybox true"
fi

# --- CLIENTS at once ------------------------------------------------------------------------
# One container first, so what is made once (the bridge, berth's nftables table) is in the
# "before" state.
docker -H "unix://$work/berth.sock" run --rm $net bench/busybox true
state() { python3 bench/lib/soak-state.py "$BERTH_ROOT" "$work/cid"; }
children() { { ps --ppid "$berth_service" --no-headers || true; } | wc -l; }
state >"$work/before.json"
children_before=$(children)
run_one() {
  local n=$1 err
  if ! err=$(docker -H "unix://$work/berth.sock" run --rm $net --cidfile "$work/cid/$n" bench/busybox true 2>&1 >/dev/null); then
    echo "exit $?: ${err%%$'\n'*}" >"$work/failed/$n"
  fi
}
export -f run_one
export work net
started=$(date +%s%N)
seq 1 "$CLIENTS" | xargs -P "$CLIENTS" -I{} bash -c 'run_one c{}' || true
burst_ms=$((($(date +%s%N) - started) / 1000000))
# run --rm answers once the container is gone; stragglers get a bounded while, polled.
for _ in $(seq 300); do
  python3 bench/lib/soak-state.py --pending "$BERTH_ROOT" "$work/cid" && break
  sleep 0.2
done
state >"$work/after.json"
children_after=$(children)
left_ps=$("$BERTH" ps -aq | wc -l)
failed=$(find "$work/failed" -type f | wc -l)

# --- report -------------------------------------------------------------------------------
ratio() { [ -n "${median[$1]:-}" ] && [ -n "${median[$2]:-}" ] && python3 -c "print(f'{${median[$1]}/${median[$2]}:.2f}x')" || echo "n/a"; }
over() { [ -n "${median[$1]:-}" ] && [ -n "${median[$2]:-}" ] && python3 -c "print(f'{${median[$1]}-${median[$2]}:+.1f} ms')" || echo "n/a"; }
ms() { [ -n "${median[$1]:-}" ] && printf '%8.1f ms' "${median[$1]}" || printf '%11s' "skipped"; }
echo
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs each, medians; --network $NETWORK"
echo
echo "docker run --rm true"
printf '  %-40s %s\n' "through berth system service" "$(ms berth_api)" \
  "through podman system service" "$(ms podman_api)" \
  "berth run --rm (no service)" "$(ms berth_cli)" \
  "podman run --rm (no service)" "$(ms podman_cli)" \
  "docker version (the CLI's own cost)" "$(ms docker_version)" \
  "curl _ping (a request's cost)" "$(ms ping)"
echo "  berth's service/podman's $(ratio berth_api podman_api) (target <= 0.2x)"
echo "  berth's service over berth run --rm: $(over berth_api berth_cli) (target <= 10 ms)"
echo
echo "$CLIENTS docker run --rm at once through berth's service: $burst_ms ms, $failed failed"
if [ "$failed" -gt 0 ]; then
  echo "failures (count, message):"
  cat "$work"/failed/* | sort | uniq -c | sort -rn | head -20
fi
echo "containers left in berth ps -a: $left_ps; the service's children: $children_before before, $children_after after"
leaked=0
python3 bench/lib/soak-state.py --compare "$work/before.json" "$work/after.json" || leaked=1
[ "$left_ps" -eq 0 ] && [ "$children_after" -le "$children_before" ] || leaked=1
echo
echo "hyperfine JSON in $out/api-*.json"
[ "$failed" -eq 0 ] && [ "$leaked" -eq 0 ]
