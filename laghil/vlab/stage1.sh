#!/bin/busybox sh
# laghil guest stage 1 (initramfs /init, busybox): load the virtio, 9p and overlay
# modules, mount the host's / read-only over 9p under a tmpfs overlay, add the
# kernel modules and the per-guest share, then switch_root into stage 2.
B=/bin/busybox
$B mkdir -p /proc /sys /dev /lower /upper /newroot
$B mount -t proc proc /proc
$B mount -t devtmpfs dev /dev
for m in $($B cat /modules/order); do $B insmod /modules/$m || echo "stage1: insmod $m failed"; done
opts=trans=virtio,version=9p2000.L,msize=262144,cache=loose
$B mount -t 9p -o ro,$opts hostroot /lower || { echo "stage1: cannot mount host root"; $B sh; }
$B mount -t tmpfs -o size=512m,mode=755 upper /upper
$B mkdir -p /upper/data /upper/work
$B mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot \
  || { echo "stage1: overlay failed"; $B sh; }
$B mount -t tmpfs -o mode=755 mods /newroot/lib/modules 2>/dev/null || $B mkdir -p /newroot/lib/modules
$B mount -t 9p -o ro,$opts modules /newroot/lib/modules
$B mkdir -p /newroot/mnt/laghil
$B mount -t 9p -o ro,trans=virtio,version=9p2000.L laghil /newroot/mnt/laghil
$B umount /proc /dev
exec $B switch_root /newroot /usr/bin/tini -s -g -- /bin/sh /mnt/laghil/stage2.sh
