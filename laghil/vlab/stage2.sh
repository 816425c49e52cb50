#!/bin/sh
# laghil guest stage 2 (under tini as PID 1, in the overlay root): mounts, interface
# names from the lab file (by MAC), management address, clean root home, sshd.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
S=/mnt/laghil
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=700 tmpfs /root
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /run/sshd /run/netns /var/run /run/laghil
. $S/node.env
hostname "$NODE"
echo "$NODE" > /etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$NODE" > /etc/hosts

modprobe virtio_net
# Rename every NIC by MAC: first to temporary names, then to the lab's names.
i=0
for d in /sys/class/net/*; do
  n=${d##*/}; [ "$n" = lo ] && continue
  ip link set dev "$n" name "lgtmp$i"; i=$((i+1))
done
for d in /sys/class/net/lgtmp*; do
  n=${d##*/}; mac=$(cat "$d/address")
  new=$(awk -v m="$mac" '$1 == m {print $2}' $S/ifmap)
  [ -n "$new" ] && ip link set dev "$n" name "$new"
done
ip link set lo up
ip addr add 10.0.2.15/24 dev mgmt0
ip link set mgmt0 up
for p in $DATA_PORTS; do
  sysctl -qw net.ipv6.conf."$p".accept_ra=0 2>/dev/null
  ip link set "$p" up
done

mkdir -p /root/.ssh && chmod 700 /root/.ssh
cp $S/authorized_keys /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
cp $S/ssh_host_ed25519_key /run/laghil/ && chmod 600 /run/laghil/ssh_host_ed25519_key
echo "laghil-guest-ready $NODE"
exec /usr/sbin/sshd -D -e -f $S/sshd_config
