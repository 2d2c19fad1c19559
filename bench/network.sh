#!/usr/bin/env bash
# Cost of bridge networking (issue 5). Numbers, not tests: nothing here asserts on a timing.
#  1. berth-net alone: one attach and one detach (veth pair made inside the namespace, address,
#     routes, lease, and for a published port one nf_tables netlink batch) on a bare namespace.
#  2. End to end, when the engine runs containers: `berth run --rm` with --network none and with
#     the default bridge, beside podman's default network, in one hyperfine run with ratios
#     (bench/engine.sh does the image and the peers and prints the bridge rows with the rest;
#     its release berth is rebuilt here first, since engine.sh only builds a missing one).
# Target: bridge networking adds at most 3 ms to berth's start. Run as root after scripts/setup.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
echo "== berth-net attach/detach on a bare namespace (release build, $RUNS runs) =="
RUNS=$RUNS cargo test --release -q -p berth-net --test bench -- --ignored --nocapture 2>/dev/null \
  | grep -E "attach|skipped"
if [ "${ENGINE:-1}" = 1 ] && [ -x bench/engine.sh ]; then
  echo "== end to end: bench/engine.sh (its bridge rows) =="
  cargo build --release -q -p berth
  RUNS=${ENGINE_RUNS:-20} bench/engine.sh
fi
