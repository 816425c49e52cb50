#!/bin/sh
# laghil guest stage 2 (under tini as PID 1, in the overlay root): system mounts,
# a clean root home with only the run's authorized key (the host's .bashrc would
# make every command slow), a non-root account with sudo, then sshd in the foreground.
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
mkdir -p /run/sshd /run/netns /run/laghil /root/.ssh
. $S/node.env
echo "$NODE" > /etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$NODE" > /etc/hosts
cp $S/authorized_keys /root/.ssh/authorized_keys
cp $S/ssh_host_ed25519_key /run/laghil/
chmod 600 /root/.ssh/authorized_keys /run/laghil/ssh_host_ed25519_key
# A non-root account with sudo (no password), as lab hosts have: the run's key
# logs in as `laghil` too (selftests/safety: timeouts of sudo commands). The
# account lives in this guest's overlay only; no sudo on the host, no account.
if [ -x /usr/bin/sudo ] && ! grep -q '^laghil:' /etc/passwd; then
  useradd -m -d /home/laghil -s /bin/sh -U laghil && usermod -p '*' laghil &&
    mkdir -p -m 700 /home/laghil/.ssh && cp $S/authorized_keys /home/laghil/.ssh/ &&
    chmod 600 /home/laghil/.ssh/authorized_keys && chown -R laghil:laghil /home/laghil/.ssh &&
    echo 'laghil ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/laghil &&
    chmod 440 /etc/sudoers.d/laghil || echo "stage2: the sudo account laghil was not made"
fi
/bin/sh $S/mgmt.sh || echo "stage2: management set-up failed ($S/mgmt.sh)"
# a switch guest of `platform: ovs` runs Open vSwitch (its daemons log the failure)
if [ "$PLATFORM" = ovs ]; then NODE=$NODE /bin/sh $S/ovs.sh || echo "stage2: Open vSwitch did not start ($S/ovs.sh)"; fi
echo "laghil-guest-ready $NODE uptime $(cut -d' ' -f1 /proc/uptime) s"
exec /usr/sbin/sshd -D -e -f $S/sshd_config
