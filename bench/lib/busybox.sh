# Sourced by the benchmarks: the one image every engine runs, busybox-static with its applet
# links, root in /etc/passwd and /etc/group.
#
#   busybox_image_tar DIR    # makes DIR/rootfs and DIR/rootfs.tar (a tar of the rootfs)

busybox_image_tar() {
  local dir=$1 rootfs=$1/rootfs a
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -cf "$dir/rootfs.tar" .
}
