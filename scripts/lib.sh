# Sourced by scripts/install, scripts/demo and the benchmarks (from the repository's root):
# finding berth's binaries, built here or given.

# Sets BIN_DIR to a directory holding the binaries named ("berth", "berth-runc"):
# $BERTH_BIN_DIR when set (binaries built already, target/debug for one), else the release
# builds users should run (build_fast_berth, build_fast_runc), built now if they are not yet,
# wherever cargo puts them (CARGO_TARGET_DIR, a .cargo/config.toml): cargo says where, so this
# never guesses.
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
  echo "$0: building $* (release, static): the first build takes 15 to 25 minutes on 2 cores, later ones seconds" >&2
  # Each as users should run it (below); cargo's JSON messages on stdout (each artifact with its
  # path), diagnostics and progress on stderr.
  local paths=() path
  for name in "$@"; do
    case $name in
      berth) path=$(build_fast_berth) ;;
      berth-runc) path=$(build_fast_runc) ;;
      *) echo "$0: built_binaries: no build for $name" >&2; return 1 ;;
    esac || return 1
    path=$(printf '%s\n' "$path" | grep "/$name\$" | head -1)
    [ -n "$path" ] || { echo "$0: cargo built no $name" >&2; return 1; }
    paths+=("$path")
  done
  BIN_DIR=$(dirname "${paths[0]}")
  [ ${#paths[@]} -eq 1 ] || {
    # Two profiles' directories (release, release-runc): links to both in one, beside them.
    BIN_DIR=$(dirname "$BIN_DIR")/installable
    mkdir -p "$BIN_DIR"
    for path in "${paths[@]}"; do ln -sfn "$path" "$BIN_DIR/$(basename "$path")"; done
  }
}

# Builds berth as users should run it, and prints its path: the release profile, linked fully
# static and position-dependent when libseccomp's static library is there and the machine
# resolves host names with files and dns alone (below), else dynamically.
# Each container starts this binary twice (the command, then its monitor): without the dynamic
# loader and the shared libraries to map and relocate, each start is ~0.5 ms shorter
# (bench/README.md's engine section, "static berth"). crt-static alone would make a static-pie,
# which the release build's -no-pie (crates/berth/build.rs) turns into a binary that crashes at
# its start: relocation-model=static makes its code position-dependent to match.
# A static glibc resolves host names with its own files and dns; any other hosts source in
# /etc/nsswitch.conf (mdns, myhostname, resolve, ...) it dlopens, and systemd's NSS modules
# crash a static process (nss_systemd does: systemd issue 11970). berth reads users and groups
# from the files itself; for host names, a machine that names other sources gets the dynamic
# build.
build_fast_berth() {
  local sources source
  sources=$(sed -n 's/^hosts:[[:space:]]*//p' /etc/nsswitch.conf 2>/dev/null | sed 's/\[[^]]*\]//g')
  for source in $sources; do
    case $source in
      files | dns) ;;
      *)
        build_static berth release "/etc/nsswitch.conf's hosts: $source (a static glibc would dlopen it)"
        return
        ;;
    esac
  done
  # Linked by scripts/link-text-order: the code a container's start runs laid out together.
  build_static berth release "" -C relocation-model=static \
    -C linker="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/link-text-order"
}

# Builds berth-runc as users should run it, and prints its path: the size-optimised
# `release-runc` profile, linked static-pie with packed relative relocations when libseccomp's
# static library is there (no dynamic loader or shared libraries to map at each of its starts:
# bench/README.md's runtime section has the measurements), else dynamically.
build_fast_runc() {
  # Linked by scripts/link-text-order as well: the code its commands run laid out together.
  build_static berth-runc release-runc "" -C link-arg=-Wl,-z,pack-relative-relocs \
    -C linker="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/link-text-order"
}

# build_static NAME PROFILE WHY_NOT RUSTC_FLAG...: builds package NAME's binary NAME with cargo's
# PROFILE and prints its path; linked statically (crt-static and the flags given, libseccomp's
# static library) when libseccomp.a is there and WHY_NOT is empty, else dynamically with a
# warning that says why. The same environment and flags every time for the same binary:
# cargo's fingerprints then make a second build a no-op, where a mix (LIBSECCOMP_LINK_TYPE set
# or not, the flags or none) would rebuild libseccomp-sys and what depends on it, and link
# again (minutes with fat LTO). The variables are local to this function: they do not reach
# the caller's later cargo commands.
build_static() {
  local name=$1 profile=$2 why_not=$3 seccomp_a flags=()
  shift 3
  seccomp_a=$(cc -print-file-name=libseccomp.a 2>/dev/null || true)
  [ -f "$seccomp_a" ] || why_not=${why_not:-no libseccomp.a (libseccomp-dev)}
  if [ -z "$why_not" ]; then
    local -x LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH
    LIBSECCOMP_LIB_PATH=$(dirname "$seccomp_a")
    flags=(-- -C target-feature=+crt-static "$@")
  else
    echo "$0: $why_not: $name linked dynamically, a slower start" >&2
  fi
  cargo rustc --profile "$profile" -p "$name" --bin "$name" \
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
