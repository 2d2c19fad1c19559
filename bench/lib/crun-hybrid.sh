# Sourced by the benchmarks that run crun. crun refuses a hybrid cgroup host while the cgroup2
# hierarchy has controllers; mounting a v1 hierarchy for each of them moves it off cgroup2.
# `free_cgroup2_for_crun` does that (saying so); `give_back_cgroup2` undoes it, from cleanup.

crun_mounted_cgroups=()
crun_made_dirs=()
crun_cgroup2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)

free_cgroup2_for_crun() {
  local ctrl dir
  [ -n "$crun_cgroup2" ] && [ "$crun_cgroup2" != /sys/fs/cgroup ] || return 0
  [ -n "$(cat "$crun_cgroup2/cgroup.controllers")" ] || return 0
  for ctrl in $(cat "$crun_cgroup2/cgroup.controllers"); do
    dir=/sys/fs/cgroup/$ctrl
    mountpoint -q "$dir" && continue
    [ -d "$dir" ] || { mkdir "$dir" && crun_made_dirs+=("$dir"); }
    # Mounting a v1 hierarchy moves the controller off cgroup2; the kernel allows it only
    # while no cgroup2 cgroup enables it.
    if mount -t cgroup -o "$ctrl" cgroup "$dir"; then
      crun_mounted_cgroups+=("$dir")
      echo "bench: NOTE: hybrid cgroups: mounted a v1 $ctrl hierarchy at $dir so that cgroup2" \
           "has no controllers (crun refuses hybrid otherwise); undone on exit"
    else
      echo "bench: could not move $ctrl off cgroup2: crun will likely be skipped"
    fi
  done
}

give_back_cgroup2() {
  local dir ctrl freed
  for dir in "${crun_mounted_cgroups[@]}"; do
    ctrl=${dir##*/}
    # The kernel frees a v1 hierarchy at umount only if its root has no children, dying ones
    # included; otherwise the controller stays bound to an invisible hierarchy for good. So
    # remove leftover cgroups until /proc/cgroups counts the root alone. Other programs may
    # have put containers into the hierarchy meanwhile (any engine that joins every mounted
    # controller does): then it is left mounted, with a note, rather than stranded.
    freed=
    for _ in $(seq 150); do
      find "$dir" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
      [ "$(awk -v c="$ctrl" '$1 == c { print $3 }' /proc/cgroups)" = 1 ] && { freed=1; break; }
      sleep 0.2
    done
    if [ -z "$freed" ]; then
      echo "bench: NOTE: left $dir mounted: cgroups other than ours are still in it" \
           "($(find "$dir" -mindepth 1 -type d | head -n 3 | tr '\n' ' ')); unmount it once" \
           "they are gone to give $ctrl back to cgroup2"
      continue
    fi
    umount "$dir" || continue
    # Freeing is asynchronous too: wait for the controller to show on cgroup2 again.
    for _ in $(seq 50); do grep -qw "$ctrl" "$crun_cgroup2/cgroup.controllers" && break; sleep 0.1; done
    echo "bench: unmounted $dir; cgroup2 controllers now: $(cat "$crun_cgroup2/cgroup.controllers")"
  done
  for dir in "${crun_made_dirs[@]}"; do rmdir "$dir" 2>/dev/null; done
}
