#!/bin/busybox sh
# laghil guest stage 1 (initramfs /init, static busybox, everything in RAM so it
# is fast under emulation): load the virtio, net, 9p and overlay modules, mount
# the host's / read-only over 9p under a tmpfs overlay, add the kernel modules and
# the per-guest share, name the NICs after the lab file (by MAC), configure the
# management address, then switch_root into stage 2 (sshd) under tini.
B=/bin/busybox
$B mkdir -p /proc /sys /dev /lower /upper /newroot
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
up() { $B cut -d" " -f1 /proc/uptime; }
echo "laghil stage1 start uptime $(up) s"
for m in $($B cat /modules/order); do $B insmod /modules/$m || echo "stage1: insmod $m failed"; done
opts=trans=virtio,version=9p2000.L,msize=262144,cache=loose
$B mount -t 9p -o ro,$opts hostroot /lower || { echo "stage1: cannot mount host root"; $B sh; }
$B mount -t tmpfs -o size=512m,mode=755 upper /upper
$B mkdir -p /upper/data /upper/work
$B mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot \
  || { echo "stage1: overlay failed"; $B sh; }
$B mkdir -p /newroot/lib/modules
$B mount -t 9p -o ro,$opts modules /newroot/lib/modules
$B mkdir -p /newroot/mnt/laghil
$B mount -t 9p -o ro,trans=virtio,version=9p2000.L laghil /newroot/mnt/laghil
S=/newroot/mnt/laghil

# NIC names from the lab file: first to temporary names, then by MAC to the final ones.
i=0
for d in /sys/class/net/*; do
  n=${d##*/}; [ "$n" = lo ] && continue
  $B ip link set dev "$n" name "lgtmp$i"; i=$((i+1))
done
for d in /sys/class/net/lgtmp*; do
  mac=$($B cat "$d/address")
  new=$($B awk -v m="$mac" '$1 == m {print $2}' $S/ifmap)
  [ -n "$new" ] && $B ip link set dev "${d##*/}" name "$new"
done
$B ip link set lo up
. $S/node.env
# QEMU's user network on mgmt0, unless the guest sits behind a twin's jump host
# (its management network is inside the rack: stage 2 sets it up, mgmt.sh)
if [ "$MGMT_MODE" != internal ]; then
  $B ip addr add 10.0.2.15/24 dev mgmt0
  $B ip link set mgmt0 up
fi
for p in $DATA_PORTS; do
  echo 0 > /proc/sys/net/ipv6/conf/$p/accept_ra
  $B ip link set "$p" up
done
$B hostname "$NODE"
echo "laghil stage1 done uptime $(up) s"
$B umount /proc /sys /dev
exec $B switch_root /newroot /usr/bin/tini -s -g -- /bin/sh /mnt/laghil/stage2.sh
