#!/usr/bin/env bash
# Cost of bridge networking (issue 5). Numbers, not tests: nothing here asserts on a timing.
#  1. berth-net alone: one attach and one detach (veth pair made inside the namespace, address,
#     routes, lease, and for a published port one nf_tables netlink batch) on a bare namespace.
#  2. End to end, when the engine runs containers: `berth run --rm` with --network none and with
#     the default bridge, beside podman's default network, alternating in one run (bench/engine.sh
#     does the image and the peers and prints the bridge rows with the rest, with the load
#     average before and after).
# Target (issue 16): the bridge adds at most 2 ms to `run --rm`, measured in one interleaved run,
# not as a difference of separate runs; the veth's deletion (the kernel's wait) is behind the
# reported exit. Run as root after scripts/setup.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
echo "== berth-net attach/detach on a bare namespace (release build, $RUNS runs) =="
RUNS=$RUNS cargo test --release -q -p berth-net --test bench -- --ignored --nocapture 2>/dev/null \
  | grep -E "attach|skipped"
if [ "${ENGINE:-1}" = 1 ] && [ -x bench/engine.sh ]; then
  echo "== end to end: bench/engine.sh (its bridge rows) =="
  RUNS=${ENGINE_RUNS:-20} bench/engine.sh
fi
