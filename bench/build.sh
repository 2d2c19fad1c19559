#!/usr/bin/env bash
# berth build beside `buildah bud --layers` and `podman build`, in one run, with ratios (issue 14).
# Numbers, not tests: nothing here asserts on a timing. Run as root after scripts/setup.
#
#   bench/build.sh                  # builds the release berth first (BERTH=path: that binary)
#   RUNS=5 bench/build.sh           # samples per case (default 3)
#   CONTEXT_MB=50 FILES=3000 bench/build.sh
#   BENCH_DIR=/mnt/fresh bench/build.sh   # the stores on another filesystem (default /tmp)
#
# One multi-stage Dockerfile (three stages: one RUN writes FILES files, one RUN counts a
# CONTEXT_MB MB COPY of random data, the last copies from both, copies a small source tree and
# RUNs over it), built three ways by each builder, each with its own private store in a temp dir
# removed at the end:
#   cold       every cache and the built images removed before each run (--prepare, untimed);
#              the base image stays: nothing is pulled
#   no change  the same build again, everything cached
#   one file   one source file's content changed before each run: its COPY and what follows
# Every RUN has --network none (the builders' network set-up is not what is measured), and
# buildah and podman use runc and the overlay driver. berth compresses its new layers (gzip, its
# default) as it stores them; buildah and podman keep theirs uncompressed until a push.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CONTEXT_MB=${CONTEXT_MB:-50}
FILES=${FILES:-3000}
# The release berth as users get it (bench/lib/release.sh), unless BERTH names a binary.
# shellcheck source=bench/lib/release.sh
. bench/lib/release.sh
release_berth
for tool in hyperfine buildah podman; do
  command -v "$tool" >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done

work=$(mktemp -d "${BENCH_DIR:-/tmp}/berth-bench-build-XXXXXX")
out=${OUT:-target/bench}
mkdir -p "$out"
cleanup() {
  set +e
  bh rm -a >/dev/null 2>&1
  pm rm -af >/dev/null 2>&1
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

export BERTH_ROOT=$work/berth
bh() { buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver overlay "$@"; }
pm() { CONTAINERS_CONF=$work/containers.conf podman --root "$work/podman" --runroot "$work/podman-run" \
  --tmpdir "$work/podman-tmp" --storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
  --runtime runc "$@"; }
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nlock_type = "file"\n' \
  >"$work/containers.conf"

# --- the base image, in every store ------------------------------------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
"$BERTH" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
"$BERTH" save -o "$work/image.tar" bench/busybox:latest
# The base image into buildah's and podman's stores (as docker.io/bench/busybox:latest).
bh pull -q "docker-archive:$work/image.tar" >/dev/null
pm load -q -i "$work/image.tar" >/dev/null

# --- the context -------------------------------------------------------------------------------
ctx=$work/ctx
mkdir -p "$ctx/data" "$ctx/src"
for i in $(seq "$CONTEXT_MB"); do head -c 1048576 /dev/urandom >"$ctx/data/blob$i"; done
for i in $(seq 200); do printf 'source file %s\n' "$i" >"$ctx/src/file$i.txt"; done
cat >"$ctx/Dockerfile" <<EOF
FROM bench/busybox AS gen
RUN mkdir /gen && cd /gen && i=0 && while [ \$i -lt $FILES ]; do echo "file \$i" > f\$i; i=\$((i+1)); done

FROM bench/busybox AS assets
COPY data/ /assets/
RUN ls /assets | wc -l > /assets.count

FROM bench/busybox
COPY --from=gen /gen /app/gen
COPY --from=assets /assets.count /app/assets.count
COPY src/ /app/src/
RUN cat /app/src/* | wc -l > /app/src.lines
CMD ["sh"]
EOF

berth_build="$BERTH build -q --network none -t bench/out $ctx"
buildah_build="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver overlay bud --layers -q --network none --runtime /usr/sbin/runc --pull-never -t bench/out $ctx"
podman_build="env CONTAINERS_CONF=$work/containers.conf podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime runc build --layers -q --network none --pull=never -t bench/out $ctx"
# Cold: caches and images gone, the base image back (untimed).
berth_cold="$BERTH rmi -f bench/out >/dev/null 2>&1; $BERTH builder prune -f >/dev/null; rm -rf $BERTH_ROOT/build/context"
buildah_cold="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver overlay rmi -a -f >/dev/null 2>&1; buildah --root $work/buildah --runroot $work/buildah-run --storage-driver overlay pull -q docker-archive:$work/image.tar >/dev/null"
podman_cold="env CONTAINERS_CONF=$work/containers.conf podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file rmi -a -f >/dev/null 2>&1; env CONTAINERS_CONF=$work/containers.conf podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file load -q -i $work/image.tar >/dev/null"
touch_one="date +%s%N >> $ctx/src/file7.txt"

# --- timings -----------------------------------------------------------------------------------
declare -A median
measure() { # name, prepare (or ""), command
  local name=$1 prep=$2 cmd=$3
  local args=(--runs "$RUNS" --export-json "$out/build-$name.json")
  [ -n "$prep" ] && args+=(--prepare "$prep")
  hyperfine "${args[@]}" "$cmd" >"$out/build-$name.log" 2>&1 ||
    { echo "bench: $name failed (see $out/build-$name.log)" >&2; return 0; }
  median[$name]=$(python3 -c "import json;print(json.load(open('$out/build-$name.json'))['results'][0]['median'])")
}

for b in berth buildah podman; do
  build=${b}_build cold=${b}_cold
  measure "${b}_cold" "${!cold}" "${!build}"
  sh -c "${!build}" >/dev/null 2>&1 || true
  measure "${b}_nochange" "" "${!build}"
  measure "${b}_onefile" "$touch_one" "${!build}"
done

# --- report ------------------------------------------------------------------------------------
s() { [ -n "${median[$1]:-}" ] && printf '%7.2f s' "${median[$1]}" || printf '%9s' "failed"; }
ratio() { [ -n "${median[$1]:-}" ] && [ -n "${median[$2]:-}" ] && python3 -c "print(f'{${median[$1]}/${median[$2]}:.2f}x')" || echo "n/a"; }
echo
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs each, medians"
echo "stores on: $(df -T "$work" | awk 'NR==2{print $2 " on " $1 ", " $6 " used"}')"
echo "context: $CONTEXT_MB MB of random data + 200 small files; the first stage's RUN writes $FILES files"
echo
printf '%-12s %11s %11s %11s   %-14s %s\n' "" berth buildah podman "berth/buildah" "target"
printf '%-12s %11s %11s %11s   %-14s %s\n' "cold" "$(s berth_cold)" "$(s buildah_cold)" "$(s podman_cold)" "$(ratio berth_cold buildah_cold)" "<= 0.5x"
printf '%-12s %11s %11s %11s   %-14s %s\n' "no change" "$(s berth_nochange)" "$(s buildah_nochange)" "$(s podman_nochange)" "$(ratio berth_nochange buildah_nochange)" "<= 0.1x"
printf '%-12s %11s %11s %11s   %-14s %s\n' "one file" "$(s berth_onefile)" "$(s buildah_onefile)" "$(s podman_onefile)" "$(ratio berth_onefile buildah_onefile)" "<= 0.3x"
echo
echo "hyperfine JSON in $out/build-*.json"
