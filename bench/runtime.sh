#!/usr/bin/env bash
# The runtime benchmark: berth-runc, crun and runc side by side in one run on the same busybox
# bundle, beside the floor (unshare of the same namespaces + chroot + exec). It prints numbers and
# never asserts on them: timings on a shared machine are evidence, not a test.
#
#   bench/runtime.sh                 # needs root; see bench/README.md for the knobs
#   BERTH_RUNC_BEFORE=old/berth-runc bench/runtime.sh   # and an earlier build, in the same run
#
# Measures, per runtime:
#   run      `<rt> --root R run -b BUNDLE ID` of /bin/true (create, start, wait, delete), hyperfine,
#            then the same in alternation (bench/lib/alternate.py), whose medians the verdicts take
#   spaced   the same with 50 ms of (untimed) sleep before each run
#   delete   `<rt> --root R delete --force ID` of a running `sleep 1000`, hyperfine
#   rss      peak RSS of `<rt> create`, GNU time's %M (ru_maxrss of the runtime and the children
#            it waited for; the container process itself is not counted)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-100}
warmup=${WARMUP:-10}
delete_runs=${DELETE_RUNS:-20}
spaced_runs=${SPACED_RUNS:-40}
rss_runs=${RSS_RUNS:-10}
out=${OUT:-${CARGO_TARGET_DIR:-$repo/target}/bench}

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (runtimes create namespaces, cgroups and mounts)"
for tool in hyperfine runc unshare chroot strace /usr/bin/time; do
  command -v "$tool" >/dev/null || die "needs $tool: run scripts/setup"
done
# busybox-static's binary: the rootfs holds nothing else, so it must be static.
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "needs $busybox (busybox-static): run scripts/setup"

# --- berth-runc: the explicit path, else its release build ------------------------------------
# The release build of berth-runc is the size-optimised `release-runc` profile linked
# static-pie (no dynamic loader, one file mapped) with packed relative relocations (fewer
# pages dirtied and read at start), as scripts/install builds it; see bench/README.md. Built
# here every time: cargo makes it a no-op when nothing changed, and a stale binary would
# measure old code.
if [ -n "${BERTH_RUNC:-}" ]; then
  berth=$BERTH_RUNC
  [ -x "$berth" ] || die "BERTH_RUNC=$berth is not an executable"
else
  echo "bench: building berth-runc (scripts/lib.sh's build_fast_runc: release-runc, static-pie)"
  # shellcheck source=scripts/lib.sh
  . "$repo/scripts/lib.sh"
  # Only the tail of cargo's output: a broken build is reported, not replayed in full.
  berth=$(cd "$repo" && build_fast_runc 2> >(tail -n 5 >&2) | tail -n 1) || true
  [ -x "$berth" ] || die "berth-runc did not build"
fi

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
# shellcheck source=bench/lib/installed.sh
. "$(dirname "$0")/lib/installed.sh"
as_installed "$work/bin" berth BERTH_RUNC_BEFORE
# State roots on a tmpfs, as where runtimes keep them (/run/runc, /run/crun, /run/berth-runc:
# /run is a tmpfs on a normal system, not on every VM): on ext4 every state file's new inode
# pays a scan for recently deleted inodes, which grows over a benchmark loop and measures the
# disk, not the runtime.
state=$(mktemp -d /tmp/berth-bench-state.XXXXXX)
mount -t tmpfs -o size=64m,mode=0700 berth-bench-state "$state"
ids=()               # "<runtime path>|<root>|<id>" of every container this script may leave

# shellcheck source=bench/lib/crun-hybrid.sh
. "$(dirname "$0")/lib/crun-hybrid.sh"
# shellcheck source=bench/lib/load.sh
. "$(dirname "$0")/lib/load.sh"

cleanup() {
  set +e
  for entry in "${ids[@]}"; do
    IFS='|' read -r rt root id <<<"$entry"
    "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1
  done
  give_back_cgroup2
  umount -l "$state" 2>/dev/null
  rm -rf "$work" "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- hybrid cgroups: crun refuses to run while the cgroup2 hierarchy has controllers ---------
free_cgroup2_for_crun

# --- the bundle: busybox rootfs, config from `runc spec` ---------------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs/bin"
cp "$busybox" "$rootfs/bin/busybox"
for applet in true sleep sh; do ln -s busybox "$rootfs/bin/$applet"; done
make_bundle() { # name, args as a JSON array
  mkdir -p "$work/$1"
  (cd "$work/$1" && runc spec)
  # An absolute root path lets both bundles share one rootfs.
  sed -i -e "s|\"path\": \"rootfs\"|\"path\": \"$rootfs\"|" \
         -e 's|"terminal": true|"terminal": false|' \
         -e "/\"args\": \[/,/\]/c\\		\"args\": $2," "$work/$1/config.json"
}
make_bundle true '["/bin/true"]'
make_bundle sleep '["/bin/sleep", "1000"]'

# --- which runtimes work here: one checked run each, and does `run` delete its state? ---------
names=(); paths=(); run_cmds=()
before=()
if [ -n "${BERTH_RUNC_BEFORE:-}" ]; then
  [ -x "$BERTH_RUNC_BEFORE" ] || die "BERTH_RUNC_BEFORE=$BERTH_RUNC_BEFORE is not an executable"
  before=("berth-before|$BERTH_RUNC_BEFORE")
fi
for pair in "berth-runc|$berth" "${before[@]}" "crun|$(command -v crun || true)" "runc|$(command -v runc)"; do
  IFS='|' read -r name rt <<<"$pair"
  if [ -z "$rt" ] || [ ! -x "$rt" ]; then echo "bench: skipped $name: not installed"; continue; fi
  root=$state/$name
  mkdir -p "$root"
  ids+=("$rt|$root|check" "$rt|$root|bench" "$rt|$root|del" "$rt|$root|rss" "$rt|$root|strace")
  if ! err=$(timeout 20 "$rt" --root "$root" run -b "$work/true" check 2>&1 </dev/null); then
    echo "bench: skipped $name: \`run\` of /bin/true failed: $(echo "$err" | tail -n 3)"
    continue
  fi
  cmd="$rt --root $root run -b $work/true bench"
  if "$rt" --root "$root" state check >/dev/null 2>&1; then
    # Each iteration must be create+start+wait+delete; a runtime whose `run` keeps the stopped
    # container gets an explicit delete (and pays for one shell exec, said here).
    echo "bench: NOTE: $name's run leaves a stopped container: timing run + delete under sh -c"
    "$rt" --root "$root" delete --force check
    cmd="sh -c '$rt --root $root run -b $work/true bench; $rt --root $root delete bench'"
  fi
  echo "bench: $name is $rt ($("$rt" --version 2>/dev/null | head -n 1))"
  names+=("$name"); paths+=("$rt"); run_cmds+=("$cmd")
done
[ ${#names[@]} -gt 0 ] || die "no runtime works here"

mkdir -p "$out"
echo "bench: $(nproc) cores, kernel $(uname -r), ${runs} runs after ${warmup} warmup; JSON in $out"

load_start
# --- run of true, all in one hyperfine so they share the machine's state ---------------------
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${run_cmds[$i]}"); done
args+=(-n floor "unshare --fork --pid --mount --uts --ipc --net --cgroup chroot $rootfs /bin/true")
hyperfine -N --style basic --warmup "$warmup" --runs "$runs" \
  --export-json "$out/runtime-run.json" --export-csv "$work/run.csv" "${args[@]}" \
  || die "hyperfine of run failed (rerun with one runtime and --show-output to see why)"

# --- the same in alternation (each command once per round): hyperfine runs each command's runs
# in one block, so load that comes or goes midway falls on some runtimes only; issue 16's
# verdicts take these medians.
alt=()
for i in "${!names[@]}"; do alt+=("${names[$i]}=${run_cmds[$i]}"); done
alt+=("floor=unshare --fork --pid --mount --uts --ipc --net --cgroup chroot $rootfs /bin/true")
echo "bench: run of true in alternation, $runs rounds"
python3 "$(dirname "$0")/lib/alternate.py" --rounds "$runs" --warmup "$warmup" --out "$work/alt.json" "${alt[@]}" \
  || die "the alternating run failed"

# --- the same, 50 ms apart: containers are not started back to back, and a cgroup migration
# right after another is cheap (the kernel keeps its threadgroup rwsem in writer mode for an
# RCU grace period after the last writer), so back-to-back runs hide that cost. The sleep is
# hyperfine's --prepare, not timed.
hyperfine -N --style basic --warmup 3 --runs "$spaced_runs" --prepare "sleep 0.05" \
  --export-json "$out/runtime-run-spaced.json" --export-csv "$work/spaced.csv" "${args[@]}" \
  || die "hyperfine of spaced run failed"

# --- delete --force of a running sleep, one hyperfine per runtime (each has its own prepare) ---
for i in "${!names[@]}"; do
  name=${names[$i]}; rt=${paths[$i]}; root=$state/$name
  start="$rt --root $root create -b $work/sleep del </dev/null >/dev/null 2>&1 && $rt --root $root start del"
  if ! sh -c "$start" || ! "$rt" --root "$root" delete --force del; then
    echo "bench: skipped $name's delete --force: create/start/delete of sleep failed"
    continue
  fi
  hyperfine -N --style basic --warmup 2 --runs "$delete_runs" --prepare "sh -c '$start'" \
    --export-json "$out/runtime-delete-$name.json" --export-csv "$work/delete-$name.csv" \
    -n "$name" "$rt --root $root delete --force del" \
    || echo "bench: $name's delete --force failed during the benchmark"
done

# --- peak RSS of create ------------------------------------------------------------------------
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A rss
for i in "${!names[@]}"; do
  name=${names[$i]}; rt=${paths[$i]}; root=$state/$name
  for _ in $(seq "$rss_runs"); do
    /usr/bin/time -o "$work/rss" -f %M "$rt" --root "$root" create -b "$work/true" rss \
      </dev/null >/dev/null 2>&1 && tail -n 1 "$work/rss"
    "$rt" --root "$root" delete --force rss >/dev/null 2>&1 || true
  done > "$work/rss-$name"
  rss[$name]=$(median < "$work/rss-$name")
done

# --- the table -----------------------------------------------------------------------------------
# hyperfine's CSV: command,mean,stddev,median,user,system,min,max (seconds)
csv_median_ms() { awk -F, -v n="$2" '$1 == n { printf "%.2f", $4 * 1000 }' "$1" 2>/dev/null || true; }
echo
echo "== berth runtime benchmark ($(date -u +%FT%TZ)) =="
printf '%-11s %14s %14s %16s %20s %18s\n' runtime "run true (ms)" "alternating" "spaced run (ms)" "delete --force (ms)" "create RSS (KiB)"
declare -A run_ms spaced_ms alt_ms
for name in floor "${names[@]}"; do
  run_ms[$name]=$(csv_median_ms "$work/run.csv" "$name")
  alt_ms[$name]=$(python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["results"].get(sys.argv[2], {}).get("median"); print("" if m is None else "%.2f" % m)' "$work/alt.json" "$name")
  spaced_ms[$name]=$(csv_median_ms "$work/spaced.csv" "$name")
  del=$(csv_median_ms "$work/delete-$name.csv" "$name"); [ -n "$del" ] || del=-
  printf '%-11s %14s %14s %16s %20s %18s\n' "$name" "${run_ms[$name]:--}" "${alt_ms[$name]:--}" "${spaced_ms[$name]:--}" "$del" "${rss[$name]:--}"
done
echo "(medians; RSS is GNU time %M, the median of $rss_runs creates)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- syscalls of one `run` of true, the container's process included --------------------------
syscalls=-
if strace -f -c -o "$work/strace" "$berth" --root "$state/berth-runc" run -b "$work/true" strace \
  </dev/null >/dev/null 2>&1; then
  syscalls=$(awk '$NF == "total" { print $4 }' "$work/strace")   # % seconds usecs calls [errors]
fi
echo "berth-runc run of true: $syscalls syscalls (strace -f -c)"
if [ -n "${BERTH_RUNC_BEFORE:-}" ] && strace -f -c -o "$work/strace-before" "$BERTH_RUNC_BEFORE" \
  --root "$state/berth-before" run -b "$work/true" strace </dev/null >/dev/null 2>&1; then
  echo "berth-before run of true: $(awk '$NF == "total" { print $4 }' "$work/strace-before") syscalls"
fi

steady=1
load_steady || steady=
if [ -n "${run_ms[berth-runc]:-}" ]; then
  for peer in crun runc; do
    [ -n "${run_ms[$peer]:-}" ] || continue
    echo "berth-runc/$peer run: $(ratio "${run_ms[berth-runc]}" "${run_ms[$peer]}")x, alternating $(ratio "${alt_ms[berth-runc]}" "${alt_ms[$peer]}")x, spaced $(ratio "${spaced_ms[berth-runc]}" "${spaced_ms[$peer]}")x"
  done
  echo "berth-runc/floor run: $(ratio "${run_ms[berth-runc]}" "${run_ms[floor]}")x, alternating $(ratio "${alt_ms[berth-runc]}" "${alt_ms[floor]}")x"
  if [ -n "${alt_ms[berth-before]:-}" ]; then
    echo "berth-runc/berth-before run: $(ratio "${run_ms[berth-runc]}" "${run_ms[berth-before]}")x, alternating $(ratio "${alt_ms[berth-runc]}" "${alt_ms[berth-before]}")x, spaced $(ratio "${spaced_ms[berth-runc]}" "${spaced_ms[berth-before]}")x"
  fi
fi
for peer in crun runc; do
  [ -n "${run_ms[$peer]:-}" ] && echo "$peer/floor run: $(ratio "${run_ms[$peer]}" "${run_ms[floor]}")x"
done
# Issue 16's targets, when the load held still.
if [ -n "$steady" ] && [ -n "${run_ms[berth-runc]:-}" ]; then
  echo "targets (issue 16; run in alternation):"
  if [ -n "${alt_ms[crun]:-}" ]; then
    r=$(ratio "${alt_ms[berth-runc]}" "${alt_ms[crun]}")
    echo "  run <= 0.55x crun: ${r}x, $(verdict "$r" "<=" 0.55)"
    if [ -n "${rss[crun]:-}" ] && [ -n "${rss[berth-runc]:-}" ]; then
      echo "  create RSS below crun's: ${rss[berth-runc]} vs ${rss[crun]} KiB, $(verdict "${rss[berth-runc]}" "<=" "$((${rss[crun]} - 1))")"
    fi
  fi
  r=$(ratio "${alt_ms[berth-runc]}" "${alt_ms[floor]}")
  echo "  run <= 1.6x the floor: ${r}x, $(verdict "$r" "<=" 1.6)"
  [ "$syscalls" = - ] || echo "  run of true < 400 syscalls: $syscalls, $(verdict "$syscalls" "<=" 399)"
fi
exit 0
