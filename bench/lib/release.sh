# Sourced by the benchmarks (from the repository's root): berth and berth-runc built as users get
# them, by scripts/lib.sh's build_fast_berth and build_fast_runc (static, when libseccomp.a is
# there), so that a benchmark measures the binary scripts/install installs, and so that every
# script builds target/release/berth the same way: a mix of builds (static and dynamic) would
# link it again (minutes of fat LTO) each time one followed the other. Built every time: a
# no-op when nothing changed, and a stale binary would measure old code.

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# Sets BERTH to the release berth, built now, unless BERTH is set already; exits when there is
# no such binary. Only the tail of cargo's output: a broken build is reported, not replayed.
release_berth() {
  [ -n "${BERTH:-}" ] || BERTH=$(build_fast_berth 2> >(tail -n 3 >&2) | tail -n 1) || true
  [ -x "${BERTH:-}" ] || { echo "bench: no berth binary at '${BERTH:-}' (BERTH=path)" >&2; exit 1; }
}

# Sets BERTH_RUNC to the release berth-runc, built now, unless BERTH_RUNC is set already.
release_runc() {
  [ -n "${BERTH_RUNC:-}" ] || BERTH_RUNC=$(build_fast_runc 2> >(tail -n 3 >&2) | tail -n 1) || true
  [ -x "${BERTH_RUNC:-}" ] || { echo "bench: no berth-runc at '${BERTH_RUNC:-}' (BERTH_RUNC=path)" >&2; exit 1; }
}
