"""Validation and quoting of names that reach a remote shell.

Interface, bond, team, netns and RDMA device names come from lab files and from
tests. Before any of them is put into a command line it is checked against a
strict pattern (no shell metacharacters, no whitespace, bounded length) and then
quoted. A bad name raises BadName naming what it was meant to be.
"""

import re
import shlex

from .errors import BadName

# Linux IFNAMSIZ is 16 including the NUL: at most 15 characters; '/' and
# whitespace are refused by the kernel, we also refuse every shell metacharacter.
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$")
# Node, cable, RDMA device, netns names: a little longer, same alphabet.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")


def _check(value, regex, what, kind, rule):
    if not isinstance(value, str) or not regex.fullmatch(value):
        raise BadName(f"{what} {value!r} is not a valid {kind}: {rule} "
                      "(no spaces or shell characters)")
    return value


def check_ifname(value, what="interface name"):
    """Return ``value`` if it is a safe Linux interface name, else raise BadName."""
    return _check(value, _IFNAME, what, "interface name", "1-15 characters of letters, digits and _ . : @ -")


def check_name(value, what="name"):
    """Return ``value`` if it is a safe identifier (netns, RDMA device...), else raise BadName."""
    return _check(value, _NAME, what, "name", "1-64 characters of letters, digits and _ . : @ -")


def q(value):
    """Quote any string for a POSIX shell."""
    return shlex.quote(str(value))


def qif(value, what="interface name"):
    """Validate an interface name and quote it for the shell."""
    return shlex.quote(check_ifname(value, what))
