#!/bin/sh
# laghil guest: Open vSwitch on a switch guest whose lab entry says `platform: ovs`
# (run by stage2.sh before sshd). The host's own OVS binaries (scripts/setup
# installs openvswitch-switch) with a database of this guest's own, in its tmpfs
# /run: nothing of the host's OVS configuration is read or written.
set -e
D=/run/openvswitch
mkdir -p $D /var/log/openvswitch
modprobe openvswitch
ovsdb-tool create $D/conf.db /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server $D/conf.db --remote=punix:$D/db.sock --pidfile=$D/ovsdb-server.pid \
  --unixctl=$D/ovsdb-server.ctl --log-file=/var/log/openvswitch/ovsdb-server.log --detach
ovs-vsctl --db=unix:$D/db.sock --no-wait init
ovs-vsctl --db=unix:$D/db.sock --no-wait set Open_vSwitch . \
  external_ids:system-id="$NODE" external_ids:hostname="$NODE"
ovs-vswitchd unix:$D/db.sock --pidfile=$D/ovs-vswitchd.pid \
  --log-file=/var/log/openvswitch/ovs-vswitchd.log --detach
echo "laghil-ovs-ready $NODE $(ovs-vswitchd --version | head -1)"
