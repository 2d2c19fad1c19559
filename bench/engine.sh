#!/usr/bin/env bash
# The engine side by side with its peers, in one run, with ratios (issue 4; bridge numbers for
# issue 5). Numbers, not tests: nothing here asserts on a timing. Run as root after scripts/setup.
#
#   bench/engine.sh                     # builds the release berth first (BERTH=path: that binary)
#   RUNS=50 bench/engine.sh             # more samples
#   WITH_DOCKER=1 bench/engine.sh       # also docker (installs Debian's docker.io if missing and
#                                       # starts a private dockerd --iptables=false --bridge=none)
#
# Every engine runs the same busybox-static image (made here), with its own private state in a
# temp dir that is removed at the end, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PODMAN_RUNTIME=${PODMAN_RUNTIME:-runc}
if [ -z "${BERTH:-}" ]; then
  # Built every time (a no-op when nothing changed): a stale binary measures old code.
  BERTH=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
  cargo build --release -p berth 2>&1 | tail -n 3 >&2
fi
[ -x "$BERTH" ] || { echo "bench: no berth binary at $BERTH" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (scripts/setup)" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-bench-XXXXXX)
out=${OUT:-target/bench}
mkdir -p "$out"
pids_to_kill=()
# shellcheck source=bench/lib/crun-hybrid.sh
. bench/lib/crun-hybrid.sh

cleanup() {
  set +e
  BERTH_ROOT=$work/berth "$BERTH" rm -f $(BERTH_ROOT=$work/berth "$BERTH" ps -aq 2>/dev/null) >/dev/null 2>&1
  [ -n "${podman_ok:-}" ] && pm rm -af >/dev/null 2>&1
  [ -n "${ctr_ok:-}" ] && { for t in $(c task ls -q 2>/dev/null); do c task kill -s KILL "$t"; c task delete -f "$t"; done; for t in $(c containers ls -q 2>/dev/null); do c containers delete "$t"; done; } >/dev/null 2>&1
  [ -n "${docker_ok:-}" ] && d rm -f $(d ps -aq) >/dev/null 2>&1
  for p in "${pids_to_kill[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  give_back_cgroup2
  rm -rf "$work"
}
trap cleanup EXIT

# --- one image for everyone -------------------------------------------------------------
# shellcheck source=bench/lib/busybox.sh
. bench/lib/busybox.sh
busybox_image_tar "$work"
rootfs=$work/rootfs
export BERTH_ROOT=$work/berth
"$BERTH" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
"$BERTH" save -o "$work/image.tar" bench/busybox:latest

pm() { CONTAINERS_CONF=$work/containers.conf podman --root "$work/podman" --runroot "$work/podman-run" \
  --tmpdir "$work/podman-tmp" --cgroup-manager cgroupfs --events-backend file --runtime "$PODMAN_RUNTIME" "$@"; }
c() { ctr --address "$work/ctrd/containerd.sock" --namespace bench "$@"; }
d() { docker -H "unix://$work/docker.sock" "$@"; }

# podman: rlimits lowered (root here lacks CAP_SYS_RESOURCE: podman's defaults fail)
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nlock_type = "file"\n' >"$work/containers.conf"
if pm load -i "$work/image.tar" >/dev/null 2>&1 && pm run --rm --network none bench/busybox true >/dev/null 2>&1; then
  podman_ok=1
else
  echo "bench: podman skipped (it could not run the image here)" >&2
fi

# containerd: a private daemon
mkdir -p "$work/ctrd"
cat >"$work/ctrd/config.toml" <<EOF
version = 2
root = "$work/ctrd/root"
state = "$work/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctrd/containerd.sock"
[ttrpc]
  address = "$work/ctrd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/ctrd/opt"
EOF
containerd --config "$work/ctrd/config.toml" >"$work/ctrd/log" 2>&1 &
pids_to_kill+=($!)
for _ in $(seq 50); do c version >/dev/null 2>&1 && break; sleep 0.1; done
if c images import --base-name bench/busybox "$work/image.tar" >/dev/null 2>&1 &&
   c run --rm docker.io/bench/busybox:latest probe true >/dev/null 2>&1; then
  ctr_ok=1; ctr_image=docker.io/bench/busybox:latest
else
  echo "bench: ctr skipped (see $work/ctrd/log)" >&2
fi

if [ -n "${WITH_DOCKER:-}" ]; then
  command -v dockerd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
  dockerd --iptables=false --bridge=none --data-root "$work/docker" --exec-root "$work/docker-exec" \
    --pidfile "$work/docker.pid" -H "unix://$work/docker.sock" >"$work/docker.log" 2>&1 &
  pids_to_kill+=($!)
  for _ in $(seq 100); do d version >/dev/null 2>&1 && break; sleep 0.1; done
  if d load -i "$work/image.tar" >/dev/null 2>&1; then docker_ok=1; fi
fi

# crun/runc bare: the same root and namespaces, no engine (crun needs cgroup2 free on hybrid)
free_cgroup2_for_crun
bundle=$work/bundle
mkdir -p "$bundle" && ln -s "$rootfs" "$bundle/rootfs"
(cd "$bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/' config.json)

# --- timings ------------------------------------------------------------------------------
declare -A median
measure() { # name, command...
  local name=$1; shift
  hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$out/engine-$name.json" "$@" >/dev/null 2>&1 ||
    { echo "bench: $name failed" >&2; return 0; }
  median[$name]=$(python3 -c "import json,sys;print(json.load(open('$out/engine-$name.json'))['results'][0]['median']*1000)")
}
measure_prep() { # name, prepare, command
  local name=$1 prep=$2; shift 2
  hyperfine -N --runs "$RUNS" --warmup 1 --prepare "$prep" --export-json "$out/engine-$name.json" "$@" >/dev/null 2>&1 ||
    { echo "bench: $name failed" >&2; return 0; }
  median[$name]=$(python3 -c "import json;print(json.load(open('$out/engine-$name.json'))['results'][0]['median']*1000)")
}

measure berth_run "$BERTH run --rm --network none bench/busybox true"
measure berth_run_bridge "$BERTH run --rm bench/busybox true"
measure crun_bare "crun --root $work/crun run -b $bundle bench"
[ -n "${podman_ok:-}" ] && measure podman_run "env CONTAINERS_CONF=$work/containers.conf podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --cgroup-manager cgroupfs --events-backend file --runtime $PODMAN_RUNTIME run --rm --network none bench/busybox true"
[ -n "${podman_ok:-}" ] && measure podman_run_bridge "env CONTAINERS_CONF=$work/containers.conf podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --cgroup-manager cgroupfs --events-backend file --runtime $PODMAN_RUNTIME run --rm bench/busybox true"
[ -n "${ctr_ok:-}" ] && measure ctr_run "ctr --address $work/ctrd/containerd.sock --namespace bench run --rm $ctr_image bench true"
[ -n "${docker_ok:-}" ] && measure docker_run "docker -H unix://$work/docker.sock run --rm --network none bench/busybox true"

# run -d, then rm -f of a running container
measure_prep berth_rm "$BERTH run -d --name rmme --network none bench/busybox sleep 1000" "$BERTH rm -f rmme"
[ -n "${ctr_ok:-}" ] && measure_prep ctr_rm "ctr --address $work/ctrd/containerd.sock --namespace bench run -d $ctr_image rmme sleep 1000" \
  "sh -c 'ctr --address $work/ctrd/containerd.sock --namespace bench task kill -s KILL rmme; ctr --address $work/ctrd/containerd.sock --namespace bench task delete -f rmme; ctr --address $work/ctrd/containerd.sock --namespace bench containers delete rmme'"
measure berth_run_d "sh -c '$BERTH run -d --network none bench/busybox sleep 1000 >/dev/null'"
measure berth_run_d_bridge "sh -c '$BERTH run -d bench/busybox sleep 1000 >/dev/null'"

# exec in a running container
"$BERTH" run -d --name execme --network none bench/busybox sleep 100000 >/dev/null
measure berth_exec "$BERTH exec execme true"
if [ -n "${ctr_ok:-}" ]; then
  c run -d "$ctr_image" execme sleep 100000 >/dev/null
  n=0
  measure ctr_exec "sh -c 'ctr --address $work/ctrd/containerd.sock --namespace bench task exec --exec-id e\$\$ execme true'"
fi
if [ -n "${podman_ok:-}" ]; then
  pm run -d --name execme --network none bench/busybox sleep 100000 >/dev/null
  measure podman_exec "env CONTAINERS_CONF=$work/containers.conf podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --cgroup-manager cgroupfs --events-backend file --runtime $PODMAN_RUNTIME exec execme true"
fi

# --- idle memory of the per-container helper process --------------------------------------
pss() { awk '/^Rss:/{r=$2} /^Pss:/{p=$2} /^Private_Clean:/{pc=$2} /^Private_Dirty:/{pd=$2} END{printf "%.2f %.2f %.2f\n", p/1024, (pc+pd)/1024, r/1024}' "/proc/$1/smaps_rollup"; }
monitor_pid=$(python3 -c "import json,glob;print([json.load(open(f))['state']['monitor_pid'] for f in glob.glob('$BERTH_ROOT/containers/*/record.json') if json.load(open(f))['name']=='execme'][0])")
read -r berth_pss berth_priv berth_rss < <(pss "$monitor_pid")
if [ -n "${podman_ok:-}" ]; then
  conmon_pid=$(pgrep -f "conmon.*$work/podman" | head -1 || true)
  [ -n "$conmon_pid" ] && read -r conmon_pss conmon_priv conmon_rss < <(pss "$conmon_pid")
fi
if [ -n "${ctr_ok:-}" ]; then
  shim_pid=$(pgrep -f "containerd-shim-runc-v2.*-namespace bench" | head -1 || true)
  [ -n "$shim_pid" ] && read -r shim_pss shim_priv shim_rss < <(pss "$shim_pid")
fi

# --- report -------------------------------------------------------------------------------
ratio() { [ -n "${median[$1]:-}" ] && [ -n "${median[$2]:-}" ] && python3 -c "print(f'{${median[$1]}/${median[$2]}:.2f}x')" || echo "n/a"; }
ms() { [ -n "${median[$1]:-}" ] && printf '%8.1f ms' "${median[$1]}" || printf '%11s' "skipped"; }
echo
echo "machine: $(nproc) cores, $(uname -r); $RUNS runs each, medians"
echo
printf '%-34s %s\n' "run --rm true (no network)" ""
printf '  %-32s %s\n' "berth" "$(ms berth_run)" "crun run (bare runtime)" "$(ms crun_bare)" \
  "podman ($PODMAN_RUNTIME)" "$(ms podman_run)" "ctr" "$(ms ctr_run)" "docker" "$(ms docker_run)"
echo "  berth/podman $(ratio berth_run podman_run) (target <= 0.10x)   berth/crun $(ratio berth_run crun_bare) (target <= 2x)"
echo "  berth/ctr $(ratio berth_run ctr_run)   berth/docker $(ratio berth_run docker_run)"
echo
printf '%-34s\n' "run --rm true (bridge network)"
printf '  %-32s %s\n' "berth" "$(ms berth_run_bridge)" "podman" "$(ms podman_run_bridge)"
[ -n "${median[berth_run_bridge]:-}" ] && [ -n "${median[berth_run]:-}" ] &&
  python3 -c "print(f'  the bridge adds {${median[berth_run_bridge]}-${median[berth_run]}:.1f} ms to berth (target <= 3 ms)')"
echo "  berth/podman $(ratio berth_run_bridge podman_run_bridge)"
[ -n "${median[berth_run_d_bridge]:-}" ] && [ -n "${median[berth_run_d]:-}" ] &&
  python3 -c "print(f'  start only (run -d): the bridge adds {${median[berth_run_d_bridge]}-${median[berth_run_d]}:.1f} ms')"
echo
printf '  %-32s %s\n' "berth run -d" "$(ms berth_run_d)"
printf '  %-32s %s   vs ctr %s: %s (target <= 0.3x)\n' "berth rm -f (running)" "$(ms berth_rm)" "$(ms ctr_rm)" "$(ratio berth_rm ctr_rm)"
printf '  %-32s %s   vs ctr %s: %s (target <= 0.3x); podman %s\n' "berth exec true" "$(ms berth_exec)" "$(ms ctr_exec)" "$(ratio berth_exec ctr_exec)" "$(ms podman_exec)"
echo
echo "idle helper process per container (PSS / private / RSS, MiB; PSS shares code among"
echo "the processes mapping it: berth's many monitors here, conmon's one)"
printf '  %-32s %s / %s / %s\n' "berth monitor" "$berth_pss" "$berth_priv" "$berth_rss"
printf '  %-32s %s / %s / %s\n' "conmon (podman)" "${conmon_pss:-n/a}" "${conmon_priv:-n/a}" "${conmon_rss:-n/a}"
printf '  %-32s %s / %s / %s\n' "containerd-shim-runc-v2" "${shim_pss:-n/a}" "${shim_priv:-n/a}" "${shim_rss:-n/a}"
echo
echo "hyperfine JSON in $out/engine-*.json"
