"""A lab node (host or switch) ready to use: its lab entry plus its SSH session."""

from .errors import LaghilError
from .names import check_name, q, qif
from .parsing import parser


def private_path(node, name, verify=False):
    """``name`` inside ``node.workdir()``; a name that is not one plain path
    component (letters, digits, ``._-``; not . or ..) is refused."""
    if not name or name in (".", "..") or not all(c.isalnum() or c in "._-" for c in name):
        raise ValueError(f"{node.name}: not a file name for laghil's private folder: {name!r}")
    return f"{node.workdir(verify)}/{name}"


class NoShell(LaghilError):
    """A shell command for a switch whose platform has none (Onyx, EOS, NX-OS)."""


class Node:
    """A host or switch of the lab, reached over its persistent SSH session."""

    def __init__(self, name, spec, role, session):
        self.name = name
        self.spec = spec          # laghil.lab.Host or Switch
        self.role = role          # "host" | "switch"
        self.session = session    # laghil.transport.ssh.SshSession

    def __repr__(self):
        return f"<Node {self.role} {self.name}>"

    @property
    def ports(self):
        return list(self.spec.ports)

    @property
    def capabilities(self):
        return frozenset(self.spec.capabilities)

    @property
    def has_shell(self):
        """Does the node take shell commands? Hosts do; a switch does when its
        platform's driver says so (Linux, Cumulus, SONiC; not Onyx, EOS, NX-OS)."""
        if self.role != "switch":
            return True
        from .drivers.switch import DRIVERS
        return DRIVERS[self.spec.platform].has_shell

    def run(self, cmd, **kw):
        """Run a shell command; see SshSession.run (check=True raises CommandFailed).
        Refused, before anything is sent, on a switch whose platform has no
        shell: it is read and changed through its platform driver only."""
        if not self.has_shell:
            raise NoShell(f"{self.name}: a {self.spec.platform} switch has no shell; laghil "
                          f"reads and changes it through its platform driver only (refused: "
                          f"{cmd[:60]!r})")
        return self.session.run(cmd, **kw)

    def workdir(self, verify=False):
        """This session's private folder on the node (SshSession.workdir): where
        every file laghil writes, reads back or runs there lives."""
        return self.session.workdir(verify)

    def path(self, name, verify=False):
        """``name`` (one path component: letters, digits, ``._-``) inside :meth:`workdir`."""
        return private_path(self, name, verify)

    def carriers(self, ports):
        """{port: True/False} carrier of each port, in one round trip.

        An administratively down port reports no carrier (the kernel refuses the
        read with EINVAL): that is False here, as a pulled cable would be.
        """
        ports = list(ports)
        if not self.has_shell:
            from .drivers.switch import switch_driver
            driver = switch_driver(self)
            return {p: driver.port_oper_up(p) for p in ports}
        cmd = "; ".join(f"echo {qif(p)} $(cat /sys/class/net/{qif(p)}/carrier 2>/dev/null || echo 0)"
                        for p in ports)
        res = self.run(cmd)
        return parse_carriers(res.stdout, ports)

    def carrier(self, port):
        return self.carriers([port])[port]


class NetnsNode(Node):
    """A network namespace of a node, as a node: every command runs in it
    (``ip netns exec``), files and the SSH session are the node's. Its undo
    records are journaled the same way, and replay harmlessly once the
    namespace is gone."""

    def __init__(self, node, netns):
        super().__init__(node.name, node.spec, node.role, node.session)
        self.netns = check_name(netns, "netns")
        self.host = node

    def __repr__(self):
        return f"<Node {self.role} {self.name} netns {self.netns}>"

    def wrap(self, cmd):
        return f"ip netns exec {q(self.netns)} sh -c {q(cmd)}"

    def run(self, cmd, **kw):
        return self.session.run(self.wrap(cmd), **kw)



@parser('/sys/class/net/*/carrier')
def parse_carriers(text, ports):
    seen = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            seen[parts[0]] = parts[1] == "1"
    return {p: seen.get(p, False) for p in ports}
