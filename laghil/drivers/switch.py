"""Switch drivers behind one small interface (a later issue grows LAG offload).

``SwitchDriver.port_shutdown(port)`` / ``port_no_shutdown(port)`` /
``port_oper_up(port)``. ``linux`` drives a Linux switch (the virtual rack's
switch guest, Cumulus/SONiC-style Linux ports) over iproute2.
"""

from ..errors import LaghilError
from ..names import qif


class SwitchError(LaghilError):
    pass


class SwitchDriver:
    platform = None

    def __init__(self, node):
        self.node = node

    def port_shutdown(self, port):
        raise NotImplementedError

    def port_no_shutdown(self, port):
        raise NotImplementedError

    def port_oper_up(self, port):
        raise NotImplementedError


class LinuxSwitch(SwitchDriver):
    platform = "linux"

    def port_shutdown(self, port):
        self.node.run(f"ip link set dev {qif(port)} down")

    def port_no_shutdown(self, port):
        self.node.run(f"ip link set dev {qif(port)} up")

    def port_oper_up(self, port):
        r = self.node.run(f"cat /sys/class/net/{qif(port)}/operstate")
        return r.stdout.strip() == "up"


DRIVERS = {"linux": LinuxSwitch}


def switch_driver(node):
    platform = node.spec.platform
    try:
        return DRIVERS[platform](node)
    except KeyError:
        raise SwitchError(f"switch {node.name}: no driver for platform {platform!r} yet "
                          f"(have: {', '.join(sorted(DRIVERS))})") from None
