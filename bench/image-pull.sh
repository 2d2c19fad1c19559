#!/usr/bin/env bash
# Pull-and-unpack throughput of a ~300 MB multi-layer image from a local docker-registry:
# berth beside `skopeo copy` + `umoci unpack` and `podman pull`, with the machine's ceiling
# (the same layers inflated and untarred in parallel by gzip and tar) measured in the same run:
# rounds of one run of each, alternating, so that a change of load falls on all of them.
# Targets (issue 16): berth at least 1.3x the ceiling's speed and 3x podman's; no verdict when
# the load average moved by more than 1 during the run.
# Usage: bench/image-pull.sh [rounds]   (as root; needs docker-registry, skopeo, umoci, podman)
#        BENCH_DIR=/mnt/fresh-ext4 bench/image-pull.sh 5
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
# WARMUP rounds run every tool once, untimed, before the load is first read: a pull keeps both
# cores busy, so from an idle machine its own work lifts the 1-minute load average by about 1
# (bench/README.md), which the no-verdict rule would read as another job starting.
WARMUP=${WARMUP:-2}
# BENCH_DIR: the filesystem everything is written to. On an ext4 without a journal (this VM's
# root), every new inode scans past the ones deleted in the last minute: the previous run's
# 20,000 files slow the next run's creation, whoever makes them (see build.sh's section in
# bench/README.md); a journaled ext4, as any ordinary install has, does not do that.
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/berth-bench.XXXXXX")
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# BERTH=path measures that binary instead of the release build; BERTH_BEFORE=path adds a
# second berth to each round (a before/after comparison in one run).
# shellcheck source=bench/lib/release.sh
. bench/lib/release.sh
release_berth

# A registry of our own on a free loopback port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: $REG}
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -fs "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

# The image: five gzip layers of real files (~340 MB unpacked), written as an OCI layout
# by hand (tar | gzip, digests by sha256sum), then pushed with skopeo.
echo "building the test image..." >&2
mkdir -p "$WORK/src/blobs/sha256" "$WORK/layers"
i=0
for d in /usr/share/doc /usr/include /usr/lib/python3 /usr/share/perl /usr/share/i18n; do
  [ -d "$d" ] || continue
  i=$((i + 1))
  tar -C / -cf - "${d#/}" 2>/dev/null | tee >(sha256sum | cut -d' ' -f1 > "$WORK/layers/$i.diffid") \
    | gzip -6 > "$WORK/layers/$i.tar.gz"
done
sleep 1   # let the sha256sum process substitutions finish writing
python3 - "$WORK" <<'PY'
import hashlib, json, os, shutil, sys
work = sys.argv[1]
blobs = f"{work}/src/blobs/sha256"
def put(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{blobs}/{h}", "wb").write(data)
    return {"digest": f"sha256:{h}", "size": len(data)}
layers, diff_ids = [], []
n = len([f for f in os.listdir(f"{work}/layers") if f.endswith(".tar.gz")])
for i in range(1, n + 1):
    path = f"{work}/layers/{i}.tar.gz"
    h = hashlib.sha256(open(path, "rb").read()).hexdigest()
    shutil.move(path, f"{blobs}/{h}")
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{h}", "size": os.path.getsize(f"{blobs}/{h}")})
    diff_ids.append("sha256:" + open(f"{work}/layers/{i}.diffid").read().strip())
config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
c = put(json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c}, "layers": layers}
m = put(json.dumps(manifest).encode())
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
         "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
json.dump(index, open(f"{work}/src/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{work}/src/oci-layout", "w"))
PY
skopeo copy -q oci:"$WORK/src:bench" --dest-tls-verify=false docker://$REG/bench:1
LAYERS=$(python3 - "$WORK/src" <<'PY'
import json, sys
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
m = json.load(open(f"{d}/blobs/" + idx["manifests"][0]["digest"].replace(":", "/")))
print(" ".join(f"{d}/blobs/" + l["digest"].replace(":", "/") for l in m["layers"]))
PY
)
BYTES=$(du -cb $LAYERS | tail -1 | cut -f1)
UNPACKED=$(for l in $LAYERS; do gzip -dc "$l"; done | wc -c)
echo "image: $(echo $LAYERS | wc -w) layers, $((BYTES / 1000000)) MB compressed, $((UNPACKED / 1000000)) MB unpacked" >&2

# shellcheck source=bench/lib/load.sh
. bench/lib/load.sh
now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

run_ceiling() {
  rm -rf "$WORK/ceil"; mkdir -p "$WORK/ceil"; drop_caches
  local t0; t0=$(now); local i=0
  local pids=()
  for l in $LAYERS; do i=$((i + 1)); mkdir "$WORK/ceil/$i"; (gzip -dc "$l" | tar -x -C "$WORK/ceil/$i") & pids+=($!); done
  wait "${pids[@]}"; echo "$(now) - $t0" | bc   # these alone: the registry is a child too
}
run_berth() {
  rm -rf "$WORK/berth"; drop_caches
  local t0; t0=$(now)
  "$BERTH" --root "$WORK/berth" pull -q "$REG/bench:1" >/dev/null
  echo "$(now) - $t0" | bc
}
run_berth_before() {
  rm -rf "$WORK/berth"; drop_caches
  local t0; t0=$(now)
  "$BERTH_BEFORE" --root "$WORK/berth" pull -q "$REG/bench:1" >/dev/null
  echo "$(now) - $t0" | bc
}
run_skopeo_umoci() {
  rm -rf "$WORK/oci" "$WORK/bundle"; drop_caches
  local t0; t0=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$REG/bench:1" "oci:$WORK/oci:bench"
  umoci unpack --image "$WORK/oci:bench" "$WORK/bundle" >/dev/null
  echo "$(now) - $t0" | bc
}
run_podman() {
  rm -rf "$WORK/podman"; drop_caches
  local t0; t0=$(now)
  podman --root "$WORK/podman/root" --runroot "$WORK/podman/run" --storage-driver overlay \
    pull -q --tls-verify=false "$REG/bench:1" >/dev/null
  echo "$(now) - $t0" | bc
}

tools=(ceiling berth ${BERTH_BEFORE:+berth_before} skopeo_umoci podman)
for round in $(seq "$WARMUP"); do
  for tool in "${tools[@]}"; do "run_$tool" >/dev/null; done
  echo "warm-up round $round done" >&2
done
load_start
for round in $(seq "$RUNS"); do
  for tool in "${tools[@]}"; do "run_$tool" >> "$WORK/times-$tool"; done
  echo "round $round: $(for tool in "${tools[@]}"; do printf '%s %.2f s  ' "$tool" "$(tail -1 "$WORK/times-$tool")"; done)" >&2
done
declare -A T
for tool in "${tools[@]}"; do T[$tool]=$(median < "$WORK/times-$tool"); done
rate() { echo "scale=1; $BYTES / 1000000 / ${T[$1]}" | bc; }
echo "medians of $RUNS rounds:"
printf '%-16s %8s %10s\n' TOOL SECONDS "MB/s"
for tool in "${tools[@]}"; do
  printf '%-16s %8.2f %10s\n' "$tool" "${T[$tool]}" "$(rate "$tool")"
done
vs_ceiling=$(echo "scale=2; ${T[ceiling]} / ${T[berth]}" | bc)
vs_podman=$(echo "scale=2; ${T[podman]} / ${T[berth]}" | bc)
echo "berth / ceiling:  ${vs_ceiling}x the speed"
echo "berth / podman:   ${vs_podman}x"
[ -z "${BERTH_BEFORE:-}" ] || echo "berth / berth_before: $(echo "scale=2; ${T[berth_before]} / ${T[berth]}" | bc)x"
echo "podman / ceiling: $(echo "scale=2; ${T[ceiling]} / ${T[podman]}" | bc)x"
if load_steady; then
  echo "targets (issue 16): >= 1.3x the ceiling: $(verdict "$vs_ceiling" ">=" 1.3); >= 3x podman: $(verdict "$vs_podman" ">=" 3)"
fi
