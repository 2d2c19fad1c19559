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
  local packages=()
  for name in "$@"; do packages+=(-p "$name"); done
  echo "$0: building $* (release, cargo build --release): the first build takes 15 to 25 minutes on 2 cores, later ones seconds" >&2
  local built
  # JSON messages on stdout (each artifact with its path), diagnostics and progress on stderr.
  built=$(cargo build --release "${packages[@]}" --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p') || return 1
  for name in "$@"; do
    local path
    path=$(printf '%s\n' "$built" | grep "/$name\$" | head -1)
    [ -n "$path" ] || { echo "$0: cargo built no $name" >&2; return 1; }
    BIN_DIR=$(dirname "$path")
  done
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
