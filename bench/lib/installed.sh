# Sourced by the benchmarks that time starts of berth and berth-runc (engine.sh, runtime.sh).
#
#   as_installed DIR VAR...   # copies the binary each VAR names into DIR, and sets VAR to it
#
# Every binary is measured as installed (written by cp, as scripts/install writes it) and all
# on the same footing. Where a binary's page cache came from changes what each start costs:
# written by the linker (lld writes through a mapping) or read back by the faults of its execs,
# the file is cached in single pages; written by cp (or read by large reads), in large folios
# on a kernel whose filesystem has them (ext4 here, kernel 6.18). Each text page fault then maps
# more, and `run --rm` of the same build took 14 CLI and 40 monitor-and-init text faults
# instead of 23 and 58: 3% of its time. A before build copied aside and an after build timed
# where the linker left it read as a 3% regression that was not there (bench/README.md, "tenth
# pass").
as_installed() {
  local dir=$1 var path
  shift
  for var in "$@"; do
    path=${!var:-}
    [ -n "$path" ] || continue
    mkdir -p "$dir/$var"
    cp "$path" "$dir/$var/" || return
    printf -v "$var" '%s' "$dir/$var/$(basename "$path")"
  done
}
