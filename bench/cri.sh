#!/usr/bin/env bash
# The Kubernetes-path benchmark (issue 11): pod start (RunPodSandbox + CreateContainer +
# StartContainer) and teardown (StopContainer + RemoveContainer + StopPodSandbox +
# RemovePodSandbox) through containerd's CRI, with berth-runc and runc as the io.containerd.runc.v2
# shim's binary, interleaved in one containerd (berth pod, runc pod, berth pod, ...). It prints
# numbers and never asserts on them: timings on a shared machine are evidence, not a test.
#
#   bench/cri.sh                 # needs root; ROUNDS=40 for more pods per runtime (default 20)
#   BERTH_RUNC=/path bench/cri.sh  # another berth-runc than the release build
#
# The measurement is tests/cri.rs's ignored `bench` (the CRI test's own client and containerd
# setup); each pod has its own network namespace through CNI, as a kubelet's pod has.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-20}
die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (containerd, namespaces, cgroups, mounts)"
for tool in containerd ctr containerd-shim-runc-v2 runc protoc; do
  command -v "$tool" >/dev/null || die "needs $tool: run scripts/setup"
done

# berth-runc as bench/runtime.sh builds it (release-runc profile, static-pie), unless given.
if [ -n "${BERTH_RUNC:-}" ]; then
  berth=$BERTH_RUNC
else
  berth=${CARGO_TARGET_DIR:-$repo/target}/release-runc/berth-runc
  seccomp_a=$(gcc -print-file-name=libseccomp.a 2>/dev/null || true)
  [ -f "$seccomp_a" ] || die "needs libseccomp.a (libseccomp-dev) to link berth-runc statically"
  echo "bench: building berth-runc (cargo rustc --profile release-runc, static-pie)"
  (cd "$repo" && LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=$(dirname "$seccomp_a") \
     cargo rustc --profile release-runc -p berth-runc --bin berth-runc -- \
       -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs 2>&1 | tail -n 5)
fi
[ -x "$berth" ] || die "no berth-runc at $berth"

echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(cd "$repo" && BERTH_RUNTIME_UNDER_TEST=$berth BERTH_CRI_BENCH=$rounds \
  cargo test -q -p berth-harness --test cri -- --ignored --exact bench --nocapture 2>&1) \
  || { echo "$out" | tail -n 30; die "the measurement failed"; }
echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Median and mean of a column per handler, then berth's medians over runc's.
echo "$out" | grep '^BENCH ' | awk -v rounds="$rounds" '
  function median(list, n,   sorted, i, j, t) {
    for (i = 1; i <= n; i++) sorted[i] = list[i]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && sorted[j-1] > sorted[j]; j--) {
      t = sorted[j]; sorted[j] = sorted[j-1]; sorted[j-1] = t }
    return (n % 2) ? sorted[(n+1)/2] : (sorted[n/2] + sorted[n/2+1]) / 2
  }
  { n[$2]++; start[$2, n[$2]] = $3; down[$2, n[$2]] = $4; sum_s[$2] += $3; sum_d[$2] += $4 }
  END {
    printf "%-6s %5s %14s %14s %16s %16s\n", "", "pods", "start median", "start mean", "teardown median", "teardown mean"
    for (h in n) {
      for (i = 1; i <= n[h]; i++) { s[i] = start[h, i]; d[i] = down[h, i] }
      ms[h] = median(s, n[h]); md[h] = median(d, n[h])
      printf "%-6s %5d %11.1f ms %11.1f ms %13.1f ms %13.1f ms\n", h, n[h], ms[h], sum_s[h] / n[h], md[h], sum_d[h] / n[h]
    }
    if (ms["runc"] > 0 && md["runc"] > 0)
      printf "berth/runc: start %.2fx, teardown %.2fx (medians; target <= 0.7x)\n", ms["berth"] / ms["runc"], md["berth"] / md["runc"]
  }'
