#!/usr/bin/env bash
# The engine side by side with its peers and its own runtime, in one run, with ratios (issues
# 4, 5 and 16). Numbers, not tests: nothing here asserts on a timing. Run as root after
# scripts/setup.
#
#   bench/engine.sh                     # builds the release berth and berth-runc first, as
#                                       # scripts/install does (bench/lib/release.sh: static)
#                                       # (BERTH=path: that berth; BERTH_RUNC=path: that runtime)
#   RUNS=50 bench/engine.sh             # more rounds
#   BERTH_BEFORE=/tmp/berth-before bench/engine.sh
#                                       # also that berth (an older build) in the same rounds
#                                       # of every group: before/after ratios of run --rm,
#                                       # run -d + rm -f and exec
#
# Three groups of commands (run --rm; run -d + rm -f; exec), each timed in alternating rounds
# (bench/lib/alternate.py: each round runs every command of the group once), so each ratio
# comes from one run under the same load. The load average is read before and after each
# group; when it moved by more than 1 the ratios are printed without a verdict.
#   BENCH_GROUPS=exec bench/engine.sh   # only those groups (of run, rm, exec)
#   BENCH_DIR=/mnt/fresh-ext4 bench/engine.sh
#                                       # every engine's state there (default /tmp)
#   WITH_DOCKER=1 bench/engine.sh       # also docker (installs Debian's docker.io if missing and
#                                       # starts a private dockerd --iptables=false --bridge=none)
#
# Every engine runs the same busybox-static image (made here), with its own private state in a
# temp dir that is removed at the end, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
BENCH_GROUPS=${BENCH_GROUPS:-run rm exec}
WARMUP=${WARMUP:-2}
# An untimed pause before each timed command: what a `run --rm` or `rm -f` finishes behind its
# reply (unmounts, rmdirs, the veth's deletion) would otherwise land on whichever command
# follows it in the round, a peer's as often as berth's own.
GAP_MS=${GAP_MS:-50}
PODMAN_RUNTIME=${PODMAN_RUNTIME:-runc}
# berth and the runtime alone (on the same root) as scripts/install builds them
# (bench/lib/release.sh), unless given: BERTH=path alone takes the berth-runc beside it.
# shellcheck source=bench/lib/release.sh
. bench/lib/release.sh
[ -z "${BERTH:-}" ] || BERTH_RUNC=${BERTH_RUNC:-$(dirname "$BERTH")/berth-runc}
release_berth
release_runc
[ -z "${BERTH_BEFORE:-}" ] || [ -x "$BERTH_BEFORE" ] || { echo "bench: no berth binary at $BERTH_BEFORE" >&2; exit 1; }

# BENCH_DIR: where every engine keeps its state (image-pull.sh's variable). This VM's root is
# an ext4 without a journal, whose inode allocator scans past every inode deleted in the last
# seconds (`recently_deleted`: a third of the monitor's CPU in a run --rm loop here); a fresh
# journaled ext4 there (as an ordinary install has) measures what users see.
work=$(mktemp -d "${BENCH_DIR:-/tmp}/berth-bench-XXXXXX")
# shellcheck source=bench/lib/installed.sh
. bench/lib/installed.sh
as_installed "$work/bin" BERTH BERTH_RUNC BERTH_BEFORE
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
  "$BERTH_RUNC" --root "$work/berth-runc" delete -f pair >/dev/null 2>&1
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
mkdir -p "$bundle"
# root.path the real directory (berth-runc refuses a root reached through a symlink)
(cd "$bundle" && runc spec && sed -i "s/\"terminal\": true/\"terminal\": false/; s/\"sh\"\$/\"true\"/; s#\"path\": \"rootfs\"#\"path\": \"$rootfs\"#" config.json)
# The same bundle running `sleep 1000`, for berth-runc's own `run -d` + `delete -f`: the pair
# `berth run -d` + `rm -f` is held against.
pair_bundle=$work/pair-bundle
mkdir -p "$pair_bundle"
sed 's/"true"$/"sleep", "1000"/' "$bundle/config.json" >"$pair_bundle/config.json"

# --- timings ------------------------------------------------------------------------------
# Alternating runs (bench/lib/alternate.py): every round runs each command of a group once, so
# the load other people put on the machine falls on all alike, and each ratio comes from one
# run. A group during which the load average moved by more than 1 gives no verdict.
declare -A median
steady=1
loads=()
group() { # name, alternate.py arguments...
  local name=$1; shift
  [[ " $BENCH_GROUPS " == *" $name "* ]] || return 0
  python3 bench/lib/alternate.py --rounds "$RUNS" --warmup "$WARMUP" --gap-ms "$GAP_MS" --out "$out/engine-$name.json" "$@" >/dev/null ||
    { echo "bench: group $name failed" >&2; return 0; }
  eval "$(python3 - "$out/engine-$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k, v in d["results"].items():
    if v["median"] is not None:
        print(f"median[{k}]={v['median']:.3f}")
    for f in v["failures"][:1]:
        print(f"echo {json.dumps('bench: ' + k + ': ' + f)} >&2")
print(f"loads+=({json.dumps(str(d['load_before']) + ' -> ' + str(d['load_after']))})")
print("" if d["steady"] else "steady=")
PY
)"
}
pm_cmd="env CONTAINERS_CONF=$work/containers.conf podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --cgroup-manager cgroupfs --events-backend file --runtime $PODMAN_RUNTIME"
ctr_cmd="ctr --address $work/ctrd/containerd.sock --namespace bench"
# Timed in both groups under two names: a median is keyed by its name alone, and each ratio
# must come from the run that timed both of its commands.
runc_bare="runc_bare=$BERTH_RUNC --root $work/berth-runc run -b $bundle bench"

# The containers exec is timed in, started first: each berth binary runs its monitors from a
# read-only view of itself (berth_sys::seal::protected_exe), and a process that makes its view
# removes the views no process uses. With no container of its own running, each of two
# alternating berth binaries (BERTH, BERTH_BEFORE) would find its view gone at every round and
# make it again (a bind mount, a remount, the other's unmount: ~0.35 ms a run here), which
# neither pays on a host that runs one berth. A monitor from each binary keeps both views.
"$BERTH" run -d --name execme --network none bench/busybox sleep 100000 >/dev/null
# Its own container: a monitor is the binary that started it.
[ -n "${BERTH_BEFORE:-}" ] &&
  "$BERTH_BEFORE" run -d --name execme_before --network none bench/busybox sleep 100000 >/dev/null

# run --rm of true, and the runtimes alone on the same root
args=("berth_run=$BERTH run --rm --network none bench/busybox true"
  "berth_run_bridge=$BERTH run --rm bench/busybox true" "$runc_bare"
  "crun_bare=crun --root $work/crun run -b $bundle bench")
[ -n "${podman_ok:-}" ] && args+=("podman_run=$pm_cmd run --rm --network none bench/busybox true"
  "podman_run_bridge=$pm_cmd run --rm bench/busybox true")
[ -n "${ctr_ok:-}" ] && args+=("ctr_run=$ctr_cmd run --rm $ctr_image bench true")
[ -n "${docker_ok:-}" ] && args+=("docker_run=docker -H unix://$work/docker.sock run --rm --network none bench/busybox true")
[ -n "${BERTH_BEFORE:-}" ] && args+=("before_run=$BERTH_BEFORE run --rm --network none bench/busybox true")
group run "${args[@]}"

# run -d, then rm -f of the running container: the pair timed together, and rm -f alone
args=("berth_pair=$BERTH run -d --network none bench/busybox sleep 1000 ;; $BERTH rm -f {}"
  "berth_pair_bridge=$BERTH run -d bench/busybox sleep 1000 ;; $BERTH rm -f {}" "${runc_bare/#runc_bare=/runc_bare_rm=}"
  "runc_pair=$BERTH_RUNC --root $work/berth-runc run -d -b $pair_bundle pair ;; $BERTH_RUNC --root $work/berth-runc delete -f pair"
  "berth_rm=$BERTH rm -f rmme" --prepare "berth_rm=$BERTH run -d --name rmme --network none bench/busybox sleep 1000")
[ -n "${podman_ok:-}" ] && args+=("podman_pair=$pm_cmd run -d --network none bench/busybox sleep 1000 ;; $pm_cmd rm -f -t 0 {}")
[ -n "${ctr_ok:-}" ] && args+=("ctr_rm=sh -c '$ctr_cmd task kill -s KILL rmme; $ctr_cmd task delete -f rmme; $ctr_cmd containers delete rmme'"
  --prepare "ctr_rm=$ctr_cmd run -d $ctr_image rmme sleep 1000")
[ -n "${BERTH_BEFORE:-}" ] && args+=("before_pair=$BERTH_BEFORE run -d --network none bench/busybox sleep 1000 ;; $BERTH_BEFORE rm -f {}")
group rm "${args[@]}"

# exec in a running container (berth's containers started before the run group, above)
args=("berth_exec=$BERTH exec execme true")
[ -n "${BERTH_BEFORE:-}" ] && args+=("berth_before_exec=$BERTH_BEFORE exec execme_before true")
if [ -n "${ctr_ok:-}" ]; then
  c run -d "$ctr_image" execme sleep 100000 >/dev/null
  args+=("ctr_exec=sh -c '$ctr_cmd task exec --exec-id e\$\$ execme true'")
fi
if [ -n "${podman_ok:-}" ]; then
  pm run -d --name execme --network none bench/busybox sleep 100000 >/dev/null
  args+=("podman_exec=$pm_cmd exec execme true")
fi
group exec "${args[@]}"

# --- idle memory of the per-container helper process --------------------------------------
pss() { awk '/^Rss:/{r=$2} /^Pss:/{p=$2} /^Private_Clean:/{pc=$2} /^Private_Dirty:/{pd=$2} END{printf "%.2f %.2f %.2f\n", p/1024, (pc+pd)/1024, r/1024}' "/proc/$1/smaps_rollup"; }
monitor_of() { python3 -c "import json,glob;print([json.load(open(f))['state']['monitor_pid'] for f in glob.glob('$BERTH_ROOT/containers/*/record.json') if json.load(open(f))['name']=='$1'][0])"; }
read -r exec_pss exec_priv exec_rss < <(pss "$(monitor_of execme)")
# Idle monitors, as a host running containers has them: IDLE of them (their code shared, as
# on any host with more than one), each read a while after its start (the monitor trims its
# heap, stack and start-up code a second after the start). The average of their PSS.
IDLE=${IDLE:-10}
for i in $(seq "$IDLE"); do "$BERTH" run -d --name "idle$i" --network none bench/busybox sleep 100000 >/dev/null; done
sleep 2
read -r berth_pss berth_priv berth_rss < <(for i in $(seq "$IDLE"); do pss "$(monitor_of "idle$i")"; done |
  awk '{p+=$1; v+=$2; r+=$3} END{printf "%.2f %.2f %.2f\n", p/NR, v/NR, r/NR}')
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
# A ratio against its target, or no verdict when the load moved during its group.
verdict() { # a, b, target
  local r
  r=$(ratio "$1" "$2")
  if [ "$r" = n/a ]; then echo "n/a"; return; fi
  if [ -z "$steady" ]; then echo "$r (target <= $3x; no verdict: the load moved by more than 1)"; return; fi
  python3 -c "r=${median[$1]}/${median[$2]}; print(f'{r:.2f}x (target <= $3x: ' + ('met' if r <= $3 else 'NOT met') + ')')"
}
echo
echo "machine: $(nproc) cores, $(uname -r); $RUNS alternating rounds, medians; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load average (1 min) before -> after, per group (run, rm, exec): ${loads[*]}"
[ -z "$steady" ] && echo "the load moved by more than 1 during a group: ratios printed, no verdicts"
echo
echo "run --rm true (no network)"
printf '  %-32s %s\n' "berth" "$(ms berth_run)" "berth-runc run (same root)" "$(ms runc_bare)" \
  "crun run (bare runtime)" "$(ms crun_bare)" "podman ($PODMAN_RUNTIME)" "$(ms podman_run)" "ctr" "$(ms ctr_run)" "docker" "$(ms docker_run)"
echo "  berth/berth-runc $(verdict berth_run runc_bare 1.5)"
echo "  berth/podman     $(verdict berth_run podman_run 0.07)"
echo "  berth/crun $(ratio berth_run crun_bare)   berth/ctr $(ratio berth_run ctr_run)   berth/docker $(ratio berth_run docker_run)"
echo
echo "run --rm true (bridge network)"
printf '  %-32s %s\n' "berth" "$(ms berth_run_bridge)" "podman" "$(ms podman_run_bridge)"
[ -n "${median[berth_run_bridge]:-}" ] && [ -n "${median[berth_run]:-}" ] &&
  python3 -c "print(f'  the bridge adds {${median[berth_run_bridge]}-${median[berth_run]}:.1f} ms to berth (target <= 2 ms; same interleaved run)')"
echo "  berth/podman $(ratio berth_run_bridge podman_run_bridge)"
echo
echo "run -d, then rm -f of the running container (timed together)"
printf '  %-32s %s\n' "berth" "$(ms berth_pair)" "berth, bridge" "$(ms berth_pair_bridge)" "podman" "$(ms podman_pair)" \
  "berth-runc run -d + delete -f" "$(ms runc_pair)" "berth-runc run (same root)" "$(ms runc_bare_rm)" \
  "berth rm -f alone" "$(ms berth_rm)" "ctr task kill+delete alone" "$(ms ctr_rm)"
echo "  berth/berth-runc $(verdict berth_pair runc_pair 1.5) (its run -d + delete -f)"
echo "  berth/berth-runc run of true $(ratio berth_pair runc_bare_rm) (two commands against one)"
echo "  berth/podman     $(verdict berth_pair podman_pair 0.07)"
echo "  rm -f alone: berth/ctr $(ratio berth_rm ctr_rm)"
[ -n "${median[berth_pair_bridge]:-}" ] && [ -n "${median[berth_pair]:-}" ] &&
  python3 -c "print(f'  the bridge adds {${median[berth_pair_bridge]}-${median[berth_pair]}:.1f} ms to run -d + rm -f')"
if [ -n "${BERTH_BEFORE:-}" ]; then
  echo
  echo "before ($BERTH_BEFORE) and after ($BERTH), the same rounds"
  printf '  %-32s %s -> %s   after/before %s\n' "run --rm true" "$(ms before_run)" "$(ms berth_run)" "$(ratio berth_run before_run)" \
    "run -d + rm -f" "$(ms before_pair)" "$(ms berth_pair)" "$(ratio berth_pair before_pair)"
  echo "  before/berth-runc: run --rm $(ratio before_run runc_bare), run -d + rm -f $(ratio before_pair runc_pair)"
fi
echo
echo "exec true in a running container"
printf '  %-32s %s\n' "berth" "$(ms berth_exec)" "ctr" "$(ms ctr_exec)" "podman" "$(ms podman_exec)"
[ -n "${BERTH_BEFORE:-}" ] && printf '  %-32s %s   (after/before %s)\n' "berth before ($BERTH_BEFORE)" \
  "$(ms berth_before_exec)" "$(ratio berth_exec berth_before_exec)"
echo "  berth/ctr $(verdict berth_exec ctr_exec 0.1)"
echo
echo "idle helper process per container (PSS / private / RSS, MiB; PSS shares code among"
echo "the processes mapping it: berth's many monitors here, conmon's one)"
printf '  %-32s %s / %s / %s   (target PSS <= 0.4)\n' "berth monitor, idle ($IDLE)" "$berth_pss" "$berth_priv" "$berth_rss"
printf '  %-32s %s / %s / %s\n' "berth monitor after the execs" "$exec_pss" "$exec_priv" "$exec_rss"
printf '  %-32s %s / %s / %s\n' "conmon (podman)" "${conmon_pss:-n/a}" "${conmon_priv:-n/a}" "${conmon_rss:-n/a}"
printf '  %-32s %s / %s / %s\n' "containerd-shim-runc-v2" "${shim_pss:-n/a}" "${shim_priv:-n/a}" "${shim_rss:-n/a}"
echo
echo "JSON of each group in $out/engine-{run,rm,exec}.json"
