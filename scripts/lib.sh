# Sourced by scripts/install and scripts/demo (from the repository's root): finding berth's
# binaries, built here or given.

# Sets BIN_DIR to a directory holding the binaries named ("berth", "berth-runc"):
# $BERTH_BIN_DIR when set (binaries built already, target/debug for one), else cargo's release
# build, built now if it is not yet, wherever cargo puts it (CARGO_TARGET_DIR, a
# .cargo/config.toml): cargo says where, so this never guesses.
built_binaries() {
  local name
  if [ -n "${BERTH_BIN_DIR:-}" ]; then
    for name in "$@"; do
      [ -x "$BERTH_BIN_DIR/$name" ] || { echo "$0: BERTH_BIN_DIR: no executable $BERTH_BIN_DIR/$name" >&2; return 1; }
    done
    BIN_DIR=$(cd "$BERTH_BIN_DIR" && pwd)
    return
  fi
  build_prerequisites || return 1
  local packages=() name runc=
  for name in "$@"; do
    # berth-runc has a build of its own (below), the one bench/runtime.sh measures.
    if [ "$name" = berth-runc ]; then runc=1; else packages+=(-p "$name"); fi
  done
  echo "$0: building $* (release, cargo build --release): the first build takes 15 to 25 minutes on 2 cores, later ones seconds" >&2
  local built=
  # JSON messages on stdout (each artifact with its path), diagnostics and progress on stderr.
  if [ ${#packages[@]} -gt 0 ]; then
    built=$(cargo build --release "${packages[@]}" --message-format=json-render-diagnostics |
      sed -n 's/.*"executable":"\([^"]*\)".*/\1/p') || return 1
  fi
  if [ -n "$runc" ]; then
    built+=$'\n'$(build_fast_runc) || return 1
  fi
  local paths=() path
  for name in "$@"; do
    path=$(printf '%s\n' "$built" | grep "/$name\$" | head -1)
    [ -n "$path" ] || { echo "$0: cargo built no $name" >&2; return 1; }
    paths+=("$path")
  done
  BIN_DIR=$(dirname "${paths[0]}")
  [ -z "$runc" ] || [ ${#paths[@]} -eq 1 ] || {
    # Two profiles' directories (release, release-runc): links to both in one, beside them.
    BIN_DIR=$(dirname "$BIN_DIR")/installable
    mkdir -p "$BIN_DIR"
    for path in "${paths[@]}"; do ln -sfn "$path" "$BIN_DIR/$(basename "$path")"; done
  }
}

# Builds berth-runc as users should run it, and prints its path: the size-optimised
# `release-runc` profile, linked static-pie with packed relative relocations when libseccomp's
# static library is there (no dynamic loader or shared libraries to map at each of its starts:
# bench/README.md's runtime section has the measurements), else dynamically.
build_fast_runc() {
  local seccomp_a flags=()
  seccomp_a=$(cc -print-file-name=libseccomp.a 2>/dev/null || true)
  if [ -f "$seccomp_a" ]; then
    export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH
    LIBSECCOMP_LIB_PATH=$(dirname "$seccomp_a")
    flags=(-- -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs)
  else
    echo "$0: no libseccomp.a (libseccomp-dev): berth-runc linked dynamically, a slower start" >&2
  fi
  cargo rustc --profile release-runc -p berth-runc --bin berth-runc \
    --message-format=json-render-diagnostics "${flags[@]}" |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
}

# What the build needs beyond Rust, checked before minutes of compiling rather than after:
# a C compiler (ring's, zstd's and the exec trampoline's C and assembly) and libseccomp's
# development files (the runtime links libseccomp).
build_prerequisites() {
  if ! command -v cargo >/dev/null; then
    echo "$0: needs Rust's cargo (rustup.rs; rust-version in Cargo.toml is the oldest that builds berth)" >&2
    return 1
  fi
  if ! command -v cc >/dev/null; then
    echo "$0: needs a C compiler: apt-get install build-essential (or set BERTH_BIN_DIR to built binaries)" >&2
    return 1
  fi
  if ! echo 'int main(void) { return 0; }' | cc -x c - -lseccomp -o /dev/null 2>/dev/null; then
    echo "$0: needs libseccomp's development files: apt-get install libseccomp-dev" >&2
    return 1
  fi
}
