"""The undos laghil can journal on a node, as data: an action name and its
parameters, each of a checked type. The shell command is built from them,
here and only here, when the undo runs: in the run that registered it and, the
same text, in a later process that replays a killed run's journal
(:mod:`laghil.restore`). Nothing else reaches a node from a journal: a record
naming an action not in :data:`ACTIONS`, a parameter it does not take or a
value of the wrong shape is refused when the journal is read, before anything
runs (issue 20: a journal used to carry free shell text, run as root).

Every action is idempotent: replaying one whose change is already undone (or
was never made) changes nothing. This module imports nothing but the name
checks: the drivers build their own undo commands from these functions."""

import re

from .errors import BadName
from .names import check_ifname, check_name, q, qif

# ---- parameter types ---------------------------------------------------------------------
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_PREFIX = re.compile(r"[0-9a-fA-F:.]+/\d{1,3}")
_ADDRESS = re.compile(r"[0-9a-fA-F:.]+")
_PCI = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
_TAG = re.compile(r"[A-Za-z0-9_-]{8,64}")
# a session's private folder on a node (SshSession.workdir): .../laghil.XXXXXXXXXX
WORKDIR_RE = re.compile(r"/(?:(?!\.\.?/)[A-Za-z0-9._-]+/)*laghil\.[A-Za-z0-9]{10}")
_OPTION = re.compile(r"[a-z][a-z0-9_]{0,31}")
_OPTION_VALUE = re.compile(r"[A-Za-z0-9_.:+,-]{1,256}")
BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb")
QDISC_PARENTS = ("root", "ingress", "clsact")
VLAN_FLAGS = ("PVID", "Egress Untagged")


def check_mac(mac):
    if not isinstance(mac, str) or not _MAC.fullmatch(mac):
        raise BadName(f"not a MAC address: {mac!r}")
    return mac


def check_prefix(addr):
    if not isinstance(addr, str) or not _PREFIX.fullmatch(addr):
        raise BadName(f"not an address/prefix: {addr!r}")
    return addr


def check_address(addr):
    if not isinstance(addr, str) or not _ADDRESS.fullmatch(addr):
        raise BadName(f"not an IP address: {addr!r}")
    return addr


def check_workdir(path):
    if not isinstance(path, str) or not WORKDIR_RE.fullmatch(path):
        raise BadName(f"not a laghil private folder: {path!r}")
    return path


def check_tag(tag):
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise BadName(f"not a laghil run tag: {tag!r}")
    return tag


def _one_of(choices):
    def check(v):
        if v not in choices:
            raise BadName(f"{v!r} is not one of {', '.join(choices)}")
        return v
    return check


def _int(lo, hi):
    def check(v):
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise BadName(f"{v!r} is not a whole number in {lo}..{hi}")
        return v
    return check


def _bool(v):
    if not isinstance(v, bool):
        raise BadName(f"{v!r} is not true or false")
    return v


def _pci(v):
    if not isinstance(v, str) or not _PCI.fullmatch(v):
        raise BadName(f"{v!r} is not a PCI address (dddd:bb:dd.f, lower case)")
    return v


def _list(check, most=64):
    def each(v):
        if not isinstance(v, list) or len(v) > most:
            raise BadName(f"{v!r} is not a list of at most {most}")
        return [check(x) for x in v]
    return each


def _member(v):
    """A member's state as recorded before laghil took it (drivers.netdev.NetdevState)."""
    if not isinstance(v, dict) or set(v) - {"name", "master", "mac", "mtu", "addrs", "up",
                                            "ipv6_disabled"}:
        raise BadName(f"{v!r} is not a member state (name, master, mac, mtu, addrs, up, "
                      "ipv6_disabled)")
    return {"name": check_ifname(v.get("name")), "master": _bool(v.get("master", False)),
            "mac": check_mac(v["mac"]) if v.get("mac") else None,
            "mtu": _int(68, 65535)(v["mtu"]) if v.get("mtu") else None,
            "addrs": _list(check_prefix)(v.get("addrs", [])), "up": _bool(v.get("up", False)),
            "ipv6_disabled": (None if v.get("ipv6_disabled") is None
                              else _int(0, 1)(v["ipv6_disabled"]))}


def _vlan(v):
    if not (isinstance(v, list) and len(v) == 2):
        raise BadName(f"{v!r} is not a VLAN [vid, flags]")
    return [_int(1, 4094)(v[0]), _list(_one_of(VLAN_FLAGS), 4)(v[1])]


def _options(v):
    if not isinstance(v, dict) or len(v) > 32:
        raise BadName(f"{v!r} is not a set of bond options")
    for k, val in v.items():
        if not _OPTION.fullmatch(str(k)) or not _OPTION_VALUE.fullmatch(str(val)):
            raise BadName(f"bond option {k!r} {val!r}: letters, digits and _ . : + , - only")
    return {str(k): str(val) for k, val in v.items()}


IFNAME, NAME = check_ifname, check_name


# ---- the actions -------------------------------------------------------------------------
ACTIONS = {}     # name -> (required {param: check}, optional {param: check}, builder)


def action(act, /, optional=None, **params):
    """Register the builder of node action ``act``: its required parameters
    with their checks, and the ``optional`` ones."""
    def register(builder):
        ACTIONS[act] = (params, dict(optional or {}), builder)
        return builder
    return register


def _exists(i):
    return f"[ -e /sys/class/net/{i} ]"


def master_is(port, master):
    """Shell test: ``port``'s master is ``master``."""
    p, m = qif(port), qif(master)
    return f'[ "$(basename "$(readlink /sys/class/net/{p}/master 2>/dev/null)")" = {m} ]'


@action("link_delete", name=IFNAME)
def link_delete(name):
    i = qif(name)
    return f"if {_exists(i)}; then ip link del dev {i}; fi"


TEAM_DESTROY_WAIT_S, _POLL_S = 5.0, 0.1   # teamd -k: how long the netdev may take to go


@action("team_delete", name=IFNAME)
def team_delete(name):
    """Stop teamd if it runs, wait (bounded) for the netdev to go, then delete it
    if it is still there (teamd owns a team's netdev)."""
    t = qif(name)
    polls = int(TEAM_DESTROY_WAIT_S / _POLL_S)
    return (f"if teamd -e -t {t} >/dev/null 2>&1; then teamd -k -t {t} >/dev/null 2>&1; "
            f"i=0; while {_exists(t)} && [ $i -lt {polls} ]; do "
            f"sleep {_POLL_S}; i=$((i+1)); done; fi; "
            f"if {_exists(t)}; then ip link del dev {t}; fi")


def member_restore(st):
    """One command that puts a member back as recorded (``st``: a :func:`_member`
    dict) whatever its state is now; a netdev that no longer exists is left alone."""
    i = qif(st["name"])
    cmds = [f"ip link set dev {i} nomaster 2>/dev/null" if not st.get("master") else None,
            f"ip link set dev {i} down",
            f"ip link set dev {i} address {check_mac(st['mac'])}" if st.get("mac") else None,
            f"ip link set dev {i} mtu {int(st['mtu'])}" if st.get("mtu") else None,
            *(f"ip addr replace {check_prefix(a)} dev {i}" for a in st.get("addrs", ())),
            ipv6_set(st["name"], st["ipv6_disabled"])
            if st.get("ipv6_disabled") is not None else None,
            f"ip link set dev {i} {'up' if st.get('up') else 'down'}"]
    return f"if {_exists(i)}; then {'; '.join(c for c in cmds if c)}; fi"


def ipv6_set(name, disabled):
    """Set ``name``'s IPv6 (net.ipv6.conf.<name>.disable_ipv6); nothing where the
    kernel has no IPv6 for it."""
    f = f"/proc/sys/net/ipv6/conf/{check_ifname(name)}/disable_ipv6"
    return f"if [ -w {q(f)} ]; then echo {_int(0, 1)(disabled)} > {q(f)}; fi"


@action("netdev_destroy", name=IFNAME, team=_bool, members=_list(_member))
def netdev_destroy(name, team, members):
    """The undo of an upper device laghil made: delete it, every member back as
    it was."""
    return "; ".join([team_delete(name) if team else link_delete(name),
                      *(member_restore(st) for st in members)])


@action("link_set", name=IFNAME, up=_bool)
def link_set(name, up):
    return f"ip link set dev {qif(name)} {'up' if up else 'down'}"


@action("link_as", name=IFNAME, up=_bool,
        optional={"master": IFNAME, "nomaster": _bool, "mac": check_mac, "mtu": _int(68, 65535)})
def link_as(name, up, master=None, nomaster=False, mac=None, mtu=None):
    """A netdev put back as a baseline has it: master (or none), MAC, MTU, admin state."""
    i = qif(name)
    cmds = []
    if nomaster:
        cmds.append(f"ip link set dev {i} nomaster")
    elif master:
        cmds.append(f"{master_is(name, master)} || ip link set dev {i} master {qif(master)}")
    if mac:
        cmds += [f"ip link set dev {i} down", f"ip link set dev {i} address {check_mac(mac)}"]
    if mtu:
        cmds.append(f"ip link set dev {i} mtu {int(mtu)}")
    cmds.append(f"ip link set dev {i} {'up' if up else 'down'}")
    return "; ".join(cmds)


@action("addr_del", name=IFNAME, addr=check_prefix)
def addr_del(name, addr):
    return f"ip addr del {q(check_prefix(addr))} dev {qif(name)} 2>/dev/null; true"


@action("neigh_del", name=IFNAME, addr=check_address)
def neigh_del(name, addr):
    return f"ip neigh del {q(check_address(addr))} dev {qif(name)} 2>/dev/null; true"


@action("addr_replace", name=IFNAME, addr=check_prefix)
def addr_replace(name, addr):
    return f"ip addr replace {q(check_prefix(addr))} dev {qif(name)}"


@action("rdma_link_delete", dev=NAME)
def rdma_link_delete(dev):
    d = q(check_name(dev, "RDMA device"))
    return f"rdma link show {d}/1 >/dev/null 2>&1 && rdma link delete {d}; true"


@action("netns_delete", ns=NAME)
def netns_delete(ns):
    return f"ip netns del {q(check_name(ns, 'netns'))} 2>/dev/null; true"


@action("qdisc_delete", name=IFNAME, parent=_one_of(QDISC_PARENTS))
def qdisc_delete(name, parent):
    _one_of(QDISC_PARENTS)(parent)
    return f"tc qdisc del dev {qif(name)} {parent} 2>/dev/null; true"


@action("sriov_vfs_off", pf=IFNAME)
def sriov_vfs_off(pf):
    """No VFs on ``pf`` (drivers.vflag.numvfs_command with 0)."""
    return f"echo 0 > /sys/class/net/{qif(pf)}/device/sriov_numvfs"


@action("eswitch_legacy", pci=_pci)
def eswitch_legacy(pci):
    return f"devlink dev eswitch set pci/{_pci(pci)} mode legacy"


@action("kill_tagged", tag=check_tag, optional={"workdir": check_workdir})
def kill_tagged(tag, workdir=None):
    """SIGTERM every process whose command line or environment (e.g.
    ``LAGHIL_TAG=<tag>``) contains ``tag`` (a laghil run id: processes laghil
    started, found by their id). The tag is split in the script so that the
    script's own command line (exec mode) does not match it; ``workdir``: a
    session's private folder, whose ``<tag>.*`` files are then removed."""
    check_tag(tag)
    if workdir is not None:
        check_workdir(workdir)
    half = len(tag) // 2
    return (f"t={tag[:half]}; t=\"$t\"{tag[half:]}; for p in /proc/[0-9]*; do "
            "c=$(cat $p/cmdline $p/environ 2>/dev/null | tr '\\0' ' '); "
            "case \"$c\" in *\"$t\"*) kill -TERM ${p#/proc/} 2>/dev/null;; esac; done; "
            + (f"rm -f -- {q(workdir)}/\"$t\".*; " if workdir else "") + "true")


@action("workdir_remove", workdir=check_workdir)
def workdir_remove(workdir):
    """A session's private folder removed: only a folder (not a link) of the
    account that runs this (a folder of that name someone else made is left)."""
    d = q(check_workdir(workdir))
    return f"if [ -d {d} ] && [ ! -L {d} ] && [ -O {d} ]; then rm -rf -- {d}; fi"


@action("bond_join", name=IFNAME, bond=IFNAME)
def bond_join(name, bond):
    """``name`` into bond ``bond`` unless it is there already."""
    p, n = qif(name), qif(bond)
    return (f"{master_is(name, bond)} || {{ ip link set dev {p} down && "
            f"ip link set dev {p} master {n} && ip link set dev {p} up; }}")


@action("bridge_join", name=IFNAME, bridge=IFNAME, vlans=_list(_vlan, 4094))
def bridge_join(name, bridge, vlans):
    """``name`` into ``bridge`` with exactly ``vlans`` ([vid, flags]) unless it is
    there already."""
    m = qif(name)
    cmds = [f"ip link set dev {m} master {qif(bridge)}"]
    if vlans:
        cmds.append(f"bridge vlan del dev {m} vid 1")
        for vid, flags in vlans:
            extra = (" pvid" if "PVID" in flags else "") + (
                " untagged" if "Egress Untagged" in flags else "")
            cmds.append(f"bridge vlan add dev {m} vid {int(vid)}{extra}")
    return f"{master_is(name, bridge)} || {{ {' && '.join(cmds)}; }}"


@action("release", name=IFNAME, master=IFNAME, up=_bool)
def release(name, master, up):
    """``name`` out of ``master`` if it is in it (and up, ``up``)."""
    p = qif(name)
    return (f"if {master_is(name, master)}; then ip link set dev {p} nomaster"
            + (f" && ip link set dev {p} up" if up else "") + "; fi")


def bond_create_commands(name, mode, options, members, address=None):
    """The commands that make bond ``name``: mode and options at creation, every
    member down and enslaved, the bond up (and ``address`` added)."""
    b = qif(name)
    _one_of(BOND_MODES)(mode)
    opts = " ".join(f"{k} {v}" for k, v in _options(dict(options)).items())
    cmds = [f"ip link add name {b} type bond mode {mode} {opts}".strip()]
    for m in members:
        cmds += [f"ip link set dev {qif(m)} down", f"ip link set dev {qif(m)} master {b}"]
    cmds.append(f"ip link set dev {b} up")
    if address:
        cmds.append(f"ip addr add {q(address)} dev {b}")
    return cmds


@action("bond_rebuild", name=IFNAME, mode=_one_of(BOND_MODES), options=_options,
        members=_list(IFNAME), optional={"bridge": IFNAME, "vlans": _list(_vlan, 4094)})
def bond_rebuild(name, mode, options, members, bridge=None, vlans=()):
    """Bond ``name`` made again as it was (unless it exists), back in ``bridge``
    with its VLANs."""
    cmd = (f"if ! {_exists(qif(name))}; then "
           f"{' && '.join(bond_create_commands(name, mode, options, members))}; fi")
    if bridge:
        cmd += f" && {{ {bridge_join(name, bridge, list(vlans or []))}; }}"
    return cmd


# ---- records --------------------------------------------------------------------------------
def check_params(act, params):
    """The parameters of node action ``act`` checked (BadName naming the first
    that is wrong); returns them as the builder takes them."""
    if act not in ACTIONS:
        raise BadName(f"{act!r} is not an undo action laghil journals ({', '.join(ACTIONS)})")
    required, optional, _ = ACTIONS[act]
    if not isinstance(params, dict):
        raise BadName(f"{act}: parameters must be an object, not {type(params).__name__}")
    unknown = sorted(set(params) - set(required) - set(optional) - {"netns"})
    missing = sorted(set(required) - set(params))
    if unknown or missing:
        raise BadName(f"{act}: " + "; ".join(
            ([f"unknown parameter(s) {unknown}"] if unknown else [])
            + ([f"missing {missing}"] if missing else [])))
    out = {}
    for k, v in params.items():
        if k == "netns":
            out[k] = check_name(v, "netns")
            continue
        check = required.get(k) or optional[k]
        try:
            out[k] = check(v)
        except BadName as e:
            raise BadName(f"{act}: {k}: {e}") from None
    return out


def build(act, params):
    """The shell command of node action ``act`` (its parameters checked); in the
    node's namespace ``netns`` when the record names one (a namespace already
    gone: nothing to undo)."""
    params = check_params(act, params)
    netns = params.pop("netns", None)
    cmd = ACTIONS[act][2](**params)
    if netns:
        ns = q(netns)
        cmd = f"[ -e /run/netns/{ns} ] || exit 0; ip netns exec {ns} sh -c {q(cmd)}"
    return cmd
