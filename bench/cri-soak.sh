#!/usr/bin/env bash
# The CRI soak (issue 11): PODS pod lifecycles in a row (default 1000) through containerd's CRI
# with the berth handler (berth-runc): a sandbox with its own network, two containers (one with
# its own pid namespace, one sharing the pod's), started, stopped, removed, the sandbox stopped
# and removed. Counts the failures, then what was left: processes, mounts, cgroups, runtime
# state directories, network namespaces. Not part of the test suite (minutes to hours).
#
#   bench/cri-soak.sh                  # needs root; PODS=100 for a shorter one
#   HANDLER=runc bench/cri-soak.sh     # the same soak under runc, the reference
#   BERTH_RUNTIME_UNDER_TEST=/path/to/berth-runc bench/cri-soak.sh   # another build
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "cri-soak: run as root" >&2; exit 1; }
echo "cri-soak: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$repo"
BERTH_CRI_SOAK=${PODS:-1000} BERTH_CRI_HANDLER=${HANDLER:-berth} \
  cargo test -p berth-harness --test cri -- --ignored --exact soak --nocapture 2>&1 \
  | grep --line-buffered -E '^(soak|[0-9]+ pods|pod [0-9]+: FAILED|test result)|panicked' || true
echo "cri-soak: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
