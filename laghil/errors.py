"""Every error laghil raises on purpose derives from LaghilError.

Messages always name the thing at fault: the lab file and line, the node, the
field or the command, so that a failed nightly run can be fixed from the message.
"""


class LaghilError(Exception):
    """Base class of laghil's own errors."""


class BadName(LaghilError, ValueError):
    """A name that would reach a shell (interface, bond, netns...) is not safe."""


class LabError(LaghilError):
    """A lab file is invalid. ``problems`` holds one message per problem."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{self.path}: {n} problem{'s' if n != 1 else ''} in lab file"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class UnknownNode(LaghilError, KeyError):
    """A node name that the lab does not declare."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown node"


class TransportError(LaghilError):
    """Base of SSH transport errors; always names the node."""

    def __init__(self, node, message):
        self.node = node
        super().__init__(f"{node}: {message}")


class ConnectError(TransportError):
    """Host unreachable, port closed or SSH handshake failed."""


class AuthError(TransportError):
    """Authentication refused (wrong key, wrong password)."""


class HostKeyError(TransportError):
    """The host key is unknown or does not match known_hosts."""


class CommandTimeout(TransportError):
    """A remote command did not finish within its timeout."""


class CommandFailed(TransportError):
    """A remote command exited non-zero where success was required."""

    def __init__(self, node, result):
        self.result = result
        err = (result.stderr or result.stdout or "").strip().splitlines()
        tail = err[-1] if err else "(no output)"
        super().__init__(node, f"command exited {result.rc}: {result.command!r}: {tail}")


class RackError(LaghilError):
    """The embedded virtual rack could not be built, started or driven."""
    # a guest that never answered SSH before the boot timeout (QEMU still running)
    boot_hang = False
