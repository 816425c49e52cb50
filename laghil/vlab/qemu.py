"""The QEMU the rack needs (version checked once, naming the set-up script that
installs it) and the virtual cables' wire sockets (UDP on 127.0.0.1, a large
receive buffer so that a stalled guest does not drop its peer's frames)."""

import re
import shutil
import socket
import subprocess

from ..errors import RackError
from ..parsing import parser
from .guest import MGMT_NIC, nic_id, numa_args

QEMU = "qemu-system-x86_64"
KERNEL_ARGS = ("console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init "
               "mitigations=off tsc=reliable no_timer_check random.trust_cpu=on "
               "net.ifnames=0 8250.nr_uarts=1")

QEMU_MIN = (8, 0)


@parser('qemu-system-x86_64 --version')
def parse_qemu_version(text):
    """``qemu-system-x86_64 --version`` -> (major, minor, micro), or None."""
    m = re.search(r"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?", text)
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


_QEMU_CHECKED = []


def check_qemu():
    """Refuse a missing QEMU or one older than :data:`QEMU_MIN` (7.2's virtio-net
    wedged a guest's TX queue for good under cable pulls; igb with SR-IOV needs 8.0)."""
    if _QEMU_CHECKED:
        return _QEMU_CHECKED[0]
    if shutil.which(QEMU) is None:
        raise RackError(f"{QEMU} not found: run scripts/setup (QEMU from bookworm-backports)")
    r = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=30)
    ver = parse_qemu_version(r.stdout)
    if ver is None or ver[:2] < QEMU_MIN:
        have = ".".join(map(str, ver)) if ver else repr(r.stdout.strip()[:80])
        raise RackError(f"{QEMU} {have} is older than {QEMU_MIN[0]}.{QEMU_MIN[1]}: the virtual "
                        "rack needs QEMU >= 8.0 (igb SR-IOV; 7.2 wedges virtio-net TX queues "
                        "under cable pulls); run scripts/setup, which installs QEMU 10 from "
                        "bookworm-backports")
    _QEMU_CHECKED.append(ver)
    return ver


WIRE_RCVBUF = 4 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def wire_socket(node, nic, rcvbuf=WIRE_RCVBUF):
    """The host end of one virtual cable for ``node``'s ``nic``: a UDP socket bound
    to its local port and connected to the far end's, with a ``rcvbuf`` receive
    buffer. QEMU's own sockets get the host default (about 208 KiB, some 50 ms of
    the probe's traffic): a guest descheduled longer than that on this 2-core
    machine made the host drop frames on the wire (Udp RcvbufErrors), seen as
    loss with no fault. SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the
    buffer is capped by net.core.rmem_max."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind(("127.0.0.1", nic.local_udp))
        sock.connect(("127.0.0.1", nic.peer_udp))
    except OSError as e:
        sock.close()
        raise RackError(f"vlab: guest {node}: cable socket of {nic.port} on 127.0.0.1:"
                        f"{nic.local_udp}: {e.strerror or e} (another rack or program holds "
                        "the port? `laghil vlab status`)") from None
    return sock


def _check_port_free(node, port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as QEMU's hostfwd does
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise RackError(f"guest {node}: management port 127.0.0.1:{port} is in use ({e}); "
                            "another rack or service holds it") from e


def guest_command(plan, *, marker, guest_dir, kernel, initrd, wire_fds, memory_mb, cpus):
    """The QEMU command line of guest ``plan`` (a GuestPlan): TCG, its kernel and
    initramfs, console and QMP in ``guest_dir``, the controller's / and the
    kernel's modules shared read-only, its management NIC (hostfwd SSH, or a
    wire to the jump guest), its lab NICs (virtio, or igb PFs behind PCIe root
    ports, on NUMA expander buses where placed); ``wire_fds``: {port: fd} of
    every cabled port's socket (:func:`wire_socket`)."""
    g, mem = guest_dir, memory_mb
    ro = "security_model=none,readonly=on,multidevs=remap"
    # an igb PF (SR-IOV) needs PCI Express: q35, each behind a root port; so
    # does a NIC placed on a NUMA node (a pxb-pcie expander bus of that node)
    pcie = any(n.model == "igb" or n.numa_node is not None for n in plan.nics)
    cpus = max(cpus, plan.numa_nodes)
    cmd = [
        QEMU, "-name", marker,
        "-machine", f"{'q35' if pcie else 'pc'},accel=tcg", "-cpu", "max", "-smp", str(cpus),
        "-m", str(mem), *numa_args(plan.numa_nodes, cpus, mem),
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-no-reboot",
        "-kernel", str(kernel.boot_image()), "-initrd", str(initrd), "-append", KERNEL_ARGS,
        "-serial", f"file:{g / 'console.log'}",
        "-qmp", f"unix:{g / 'qmp.sock'},server=on,wait=off",
        "-device", "virtio-rng-pci",
        "-virtfs", f"local,path=/,mount_tag=hostroot,{ro}",
        "-virtfs", f"local,path={kernel.modules_dir},mount_tag=modules,{ro}",
        "-virtfs", f"local,path={g},mount_tag=laghil,{ro}",
        "-netdev", (f"user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:{plan.ssh_port}-:22"
                    if plan.mgmt_nic is None else
                    f"dgram,id=mgmt,local.type=fd,local.str={wire_fds[MGMT_NIC]}"),
        "-device", f"virtio-net-pci,netdev=mgmt,id={nic_id(MGMT_NIC)},mac={plan.mgmt_mac}",
    ]
    # the jump guest's NICs to the guests behind it (a twin's management network)
    for k, nic in enumerate(plan.mgmt_ports):
        cmd += ["-netdev", f"dgram,id=m{k},local.type=fd,local.str={wire_fds[nic.port]}",
                "-device", f"virtio-net-pci,netdev=m{k},id={nic_id(nic.port)},mac={nic.mac}"]
    # a device without bus= goes on the newest bus QEMU has: the NICs on the
    # root complex first, then the expanders and the NICs behind them
    placed = [i for i, n in enumerate(plan.nics) if n.numa_node is None]
    on_numa = [i for i, n in enumerate(plan.nics) if n.numa_node is not None]
    expanders = sorted({plan.nics[i].numa_node for i in on_numa})
    for i in placed + on_numa:
        nic = plan.nics[i]
        if i == (on_numa or [None])[0]:
            for k, node in enumerate(expanders):
                # bus numbers apart, each expander's root ports below them
                cmd += ["-device", f"pxb-pcie,id=pxb{node},bus_nr={64 + 32 * k},"
                                   f"numa_node={node},bus=pcie.0"]
        if nic.model == "igb" or nic.numa_node is not None:
            on = f",bus=pxb{nic.numa_node}" if nic.numa_node is not None else ""
            cmd += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},slot=0{on}"]
        if nic.model == "igb":
            dev = f"igb,id={nic_id(nic.port)},mac={nic.mac},bus=rp{i}"
        else:
            dev = f"virtio-net-pci,id={nic_id(nic.port)},mac={nic.mac}"
            if nic.numa_node is not None:
                dev += f",bus=rp{i}"
            if nic.speed:
                dev += f",speed={nic.speed},duplex=full"
        if nic.local_udp is not None:
            nd = f"n{i}"
            cmd += ["-netdev", f"dgram,id={nd},local.type=fd,local.str={wire_fds[nic.port]}"]
            dev += f",netdev={nd}"
        cmd += ["-device", dev]
    return cmd
