"""The virtual rack's wires seen from the machine that runs it. Each end of a
cable is a UDP socket of a QEMU process on 127.0.0.1 (``-netdev socket,udp=``):
a frame sent to a guest whose QEMU did not read its socket in time (a guest
not run for a while: software emulation on a busy machine) is dropped by the
kernel of this machine when the socket's receive buffer is full, and counted
in that socket's ``drops`` column of ``/proc/net/udp``. Those drops are the
rack's, not the device under test's: a test that lost packets while the wire
dropped frames says so (fixtures/lab.py)."""

import socket
import struct
from pathlib import Path

from ..errors import LaghilError
from ..parsing import parser


@parser('/proc/net/udp')
def parse_proc_net_udp(text):
    """``/proc/net/udp`` -> {(local ip, local port): drops} (IPv4; the
    address is the host's byte order, little-endian here, as the kernel prints it)."""
    out = {}
    lines = (text or "").splitlines()
    if not lines or "local_address" not in lines[0] or "drops" not in lines[0]:
        raise LaghilError(f"/proc/net/udp: no header with local_address and drops: "
                          f"{lines[:1]!r}")
    for line in lines[1:]:
        parts = line.split()
        if len(parts) < 13:
            continue
        ip_hex, port_hex = parts[1].split(":")
        ip = socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16)))
        out[(ip, int(port_hex, 16))] = int(parts[-1])
    return out


def wire_drops(ends, text=None):
    """{(guest, nic): drops} of the wire ends ``ends`` ({local UDP port: (guest,
    nic)}) whose socket is open, read from this machine's /proc/net/udp (or
    ``text``)."""
    socks = parse_proc_net_udp(Path("/proc/net/udp").read_text() if text is None else text)
    return {end: socks[("127.0.0.1", port)] for port, end in ends.items()
            if ("127.0.0.1", port) in socks}


def dropped_since(before, after):
    """{(guest, nic): frames} the wire dropped between two wire_drops() reads
    (an end whose socket was reopened, e.g. its guest restarted, counts from 0)."""
    out = {}
    for end, n in after.items():
        d = n - before.get(end, 0)
        if d < 0:
            d = n
        if d > 0:
            out[end] = d
    return out


def describe_drops(drops):
    """One line for a report: where the emulated wire dropped frames."""
    ends = ", ".join(f"{g}:{n} {c}" for (g, n), c in sorted(drops.items()))
    return (f"the virtual rack's wire dropped {sum(drops.values())} frame(s) during this "
            f"test, at the receiving end of {ends} (the guest's QEMU did not read its cable "
            "socket in time: software emulation on a busy machine). Packets the test lost "
            "may be the rack's, not the device under test's")
