"""Two network namespaces joined by a veth pair on this machine.

For testing and calibrating the probe without a lab: :class:`NsPair` creates
namespaces ``lgp-<hex>-a`` / ``lgp-<hex>-b`` with veth ends ``lgp<hex>a`` /
``lgp<hex>b`` addressed in 10.250.X.Y/30, and always deletes them (context
manager exit, or at interpreter exit as a fallback), after killing only the
processes left running inside them (which can only be ours). :class:`LocalNsNode`
runs shell commands inside one namespace with the same ``run()`` signature and
:class:`~laghil.transport.ssh.Result` as :class:`laghil.node.Node`, and its
``session.upload`` writes a local file, so :class:`~laghil.measure.probe.Probe`
works locally too. Needs root (CAP_NET_ADMIN) and iproute2.
"""

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import time

from ..errors import CommandFailed, CommandTimeout, LaghilError
from ..names import check_name, q
from ..transport.ssh import Result

PREFIX = "lgp"
DEFAULT_TIMEOUT_S = 60.0


class NsError(LaghilError):
    """Creating or using the local namespaces failed."""


def _ip(*args, check=True, timeout=10):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise NsError(f"ip {' '.join(args)}: {r.stderr.strip() or f'exit status {r.returncode}'}")
    return r


def available():
    """(True, "") when this process can create namespaces, else (False, why)."""
    if os.geteuid() != 0:
        return False, "needs root for ip netns / veth"
    try:
        _ip("netns", "list")
    except (OSError, NsError, subprocess.SubprocessError) as e:
        return False, f"ip netns unusable: {e}"
    return True, ""


class LocalNsNode:
    """A :class:`laghil.node.Node` look-alike running commands in a namespace
    (``netns=None``: in this process's own namespace) through ``sh -c``."""

    role = "host"

    def __init__(self, name, netns=None, default_timeout=DEFAULT_TIMEOUT_S):
        self.name = name
        self.netns = check_name(netns, "netns name") if netns else None
        self.default_timeout = default_timeout
        self.session = self          # upload() lives here, as on SshSession
        self._workdir = None

    def __repr__(self):
        return f"<LocalNsNode {self.name} netns={self.netns}>"

    def argv(self, cmd):
        base = ["ip", "netns", "exec", self.netns] if self.netns else []
        return base + ["sh", "-c", cmd]

    def run(self, cmd, timeout=None, check=True, sudo=None):
        """Run ``cmd`` (POSIX sh); Result like SshSession.run. On timeout the
        command's process group (its own session) is killed and CommandTimeout
        raised; ``check`` raises CommandFailed on a non-zero status."""
        timeout = self.default_timeout if timeout is None else float(timeout)
        t0 = time.monotonic()
        p = subprocess.Popen(self.argv(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # the group we just created
            except ProcessLookupError:
                pass
            out, err = p.communicate()
            exc = CommandTimeout(self.name, f"timed out after {timeout:g} s: {cmd!r}")
            exc.result = Result(self.name, cmd, -1, out.decode(errors="replace"),
                                err.decode(errors="replace"), time.monotonic() - t0)
            raise exc from None
        res = Result(self.name, cmd, p.returncode, out.decode(errors="replace"),
                     err.decode(errors="replace"), time.monotonic() - t0)
        if check and res.rc != 0:
            raise CommandFailed(self.name, res)
        return res

    def workdir(self, verify=False):
        """A private folder (0700, made with O_EXCL semantics: mkdir of a random
        name) as SshSession.workdir makes on a node."""
        if self._workdir is not None and verify and not os.path.isdir(self._workdir):
            self._workdir = None
        if self._workdir is None:
            d = f"/tmp/laghil.{secrets.token_hex(5)}"
            os.mkdir(d, 0o700)
            self._workdir = d
        return self._workdir

    def path(self, name, verify=False):
        from ..node import private_path
        return private_path(self, name, verify)

    def remove_workdir(self):
        d, self._workdir = self._workdir, None
        if d is not None:
            shutil.rmtree(d, ignore_errors=True)
        return d

    def upload(self, data, remote_path, mode=0o644, sudo=None):
        """Write ``data`` (bytes or a local file path) to ``remote_path``."""
        if isinstance(data, (str, os.PathLike)):
            with open(data, "rb") as f:
                data = f.read()
        tmp = f"{remote_path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(bytes(data))
        os.chmod(tmp, mode)
        os.replace(tmp, remote_path)


class NsPair:
    """Namespaces ``a`` and ``b`` joined by a veth pair; use as a context manager.

    Attributes: ``ns`` {side: netns name}, ``ifname`` {side: veth end},
    ``addr`` {side: IPv4 address (no prefix)}, ``nodes`` {side: LocalNsNode}.

    ``noarp=True`` gives both ends one MAC address and turns ARP off, so that
    no neighbour resolution follows a link flap (a down flushes the neighbour
    table, and an ARP request sent before the qdisc is reactivated is lost and
    retried only 1 s later): a path for calibrating the probe itself.
    """

    SIDES = ("a", "b")

    def __init__(self, tag=None, noarp=False):
        tag = tag or secrets.token_hex(3)
        self.tag, self.noarp = tag, noarp
        self.ns = {s: check_name(f"{PREFIX}-{tag}-{s}", "netns name") for s in self.SIDES}
        self.ifname = {s: f"{PREFIX}{tag}{s}" for s in self.SIDES}
        x, y = secrets.randbelow(256), 4 * secrets.randbelow(64)
        self.addr = {"a": f"10.250.{x}.{y + 1}", "b": f"10.250.{x}.{y + 2}"}
        self.nodes = {s: LocalNsNode(f"ns-{s}", self.ns[s]) for s in self.SIDES}
        self._created = []

    def __enter__(self):
        try:
            self.create()
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *exc):
        self.delete()

    def create(self):
        atexit.register(self.delete)
        for s in self.SIDES:
            _ip("netns", "add", self.ns[s])
            self._created.append(self.ns[s])
        a, b = self.SIDES
        _ip("link", "add", "name", self.ifname[a], "netns", self.ns[a], "type", "veth",
            "peer", "name", self.ifname[b], "netns", self.ns[b])
        if self.noarp:
            mac = self.exec(a, f"cat /sys/class/net/{self.ifname[a]}/address").stdout.strip()
            self.exec(b, f"ip link set dev {self.ifname[b]} address {q(mac)}")
            for s in self.SIDES:
                self.exec(s, f"ip link set dev {self.ifname[s]} arp off")
        for s in self.SIDES:
            self.exec(s, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                         "net.ipv6.conf.default.disable_ipv6=1 2>/dev/null; "
                         f"ip link set lo up && ip addr add {self.addr[s]}/30 dev {self.ifname[s]} "
                         f"&& ip link set {self.ifname[s]} up")
        self.exec(a, f"ping -c 1 -W 2 {self.addr[b]} >/dev/null || "
                     f"ip neigh show dev {self.ifname[a]}", check=False)
        return self

    def exec(self, side, cmd, timeout=30, check=True):
        """Run ``cmd`` in namespace ``side`` (Result)."""
        return self.nodes[side].run(cmd, timeout=timeout, check=check)

    def set_link(self, side, up):
        """Set the veth end of ``side`` up or down (through ip, not timed)."""
        self.exec(side, f"ip link set {q(self.ifname[side])} {'up' if up else 'down'}")

    def pids(self, side):
        r = _ip("netns", "pids", self.ns[side], check=False)
        return [int(p) for p in r.stdout.split() if p.isdigit()]

    def delete(self):
        """Kill what still runs inside our namespaces, then delete them (idempotent)."""
        for ns in list(self._created):
            r = _ip("netns", "pids", ns, check=False)
            for pid in [int(p) for p in r.stdout.split() if p.isdigit()]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in list(self._created):
            _ip("netns", "del", ns, check=False)
            self._created.remove(ns)
        for node in self.nodes.values():
            node.remove_workdir()
        atexit.unregister(self.delete)


def ns_pair(tag=None, noarp=False):
    """Context manager: an :class:`NsPair`, deleted on exit."""
    return NsPair(tag, noarp)
