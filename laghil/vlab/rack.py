"""Build, start, drive and stop the virtual rack of a virtual lab.

(The rack's lifecycle, up, status, cables, power, down, over
one state folder; kernel, initramfs, QMP and the PDU agent are modules of their own.)

One QEMU (TCG) guest per host and switch of the lab; one pair of UDP socket
netdevs on 127.0.0.1 per cable; SSH on 127.0.0.1:<management port> by hostfwd;
one QMP socket per guest. State lives in ``<state>/vlab/<lab>/``: the per-run SSH
key, known_hosts, one share folder per guest and ``rack.json`` with the pids.
Every guest is ended by its pid; a stale rack left by a killed run is found by
its pids (and by its unique ``-name laghil:<lab>:<node>`` marker) and ended on
the next start.
"""

import ctypes
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import RackError
from ..parsing import parser
from ..wait import WaitTimeout, wait_until
from .initramfs import build_initramfs
from .kernel import ensure_kernel
from .paths import cache_root, lab_state_dir
from .qmp import Qmp

QEMU = "qemu-system-x86_64"
UDP_BASE = 41000
TWIN_UDP_OFFSET = 2000          # a twin's cables: 43000 and up
BOOT_ATTEMPTS = 2               # a rack whose guest hung in its boot is booted once more
JUMP_MEMORY_MB = 512
MGMT_NIC = "mgmt0"
MGMT_BRIDGE = "lgmgmt"          # a twin's jump guest: its bridge to the guests behind it
KERNEL_ARGS = ("console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init "
               "mitigations=off tsc=reliable no_timer_check random.trust_cpu=on "
               "net.ifnames=0 8250.nr_uarts=1")


def nic_id(port):
    """QEMU device id of the NIC that backs a lab port."""
    return f"nic-{port}".replace("/", "_")


@dataclass
class Nic:
    port: str
    mac: str
    speed: int | None = None
    local_udp: int | None = None   # None: an uncabled port (no peer, link down)
    peer_udp: int | None = None
    model: str = "virtio-net"      # or "igb": SR-IOV PF (Intel 82576), PCIe
    numa_node: int | None = None   # behind a PCIe expander bus of that NUMA node


@dataclass
class GuestPlan:
    name: str
    ssh_port: int | None           # None: reached through the jump guest (a twin's)
    mgmt_mac: str
    nics: list = field(default_factory=list)
    numa_nodes: int = 1
    memory_mb: int | None = None   # None: the lab's virtual.memory_mb
    # a twin's management network inside the rack: a guest behind the jump host
    # has its management NIC cabled to the jump guest (mgmt_nic) and keeps its
    # lab address; the jump guest bridges one NIC per such guest (mgmt_ports)
    mgmt_nic: Nic | None = None
    address: str | None = None
    mgmt_ports: list = field(default_factory=list)
    peers: list = field(default_factory=list)       # the addresses behind the jump


def numa_args(nodes, cpus, mem_mb):
    """QEMU arguments for ``nodes`` NUMA nodes (none for one): the memory split
    evenly, the ``cpus`` vCPUs (at least one per node: the caller gives the
    guest that many, since a process is pinned to each node in turn) dealt round
    robin, each node's memory a RAM backend of its own."""
    if nodes <= 1:
        return []
    size = mem_mb // nodes
    out = []
    for n in range(nodes):
        vcpus = [c for c in range(cpus) if c % nodes == n]
        out += ["-object", f"memory-backend-ram,id=mem{n},size={size}M",
                "-numa", f"node,nodeid={n},memdev=mem{n}," + ",".join(f"cpus={c}" for c in vcpus)]
    return out


def _split_end(end):
    node, port = end.split(":", 1)
    return node, port


class Rack:
    """The virtual rack of one virtual lab."""

    def __init__(self, lab, log=print):
        if not getattr(lab, "rack_backed", False):
            raise RackError(f"lab {lab.name!r} is not virtual (kind: {lab.kind}); its twin is "
                            f"twin:{lab.name}")
        self.lab = lab
        self.log = log
        self.dir = lab_state_dir(lab.name)
        self._qmp = {}
        self.plans = self._plan()

    # ---- planning --------------------------------------------------------
    @property
    def udp_base(self):
        """The first UDP port of the rack's cables on 127.0.0.1 (a twin's apart
        from the embedded rack's, so both may run)."""
        return UDP_BASE + (TWIN_UDP_OFFSET if self.lab.twin is not None else 0)

    def _plan(self):
        plans = {}
        nodes = {**dict(self.lab.hosts), **dict(self.lab.switches)}
        base = self.udp_base
        for i, (name, node) in enumerate(sorted(nodes.items())):
            jumped = node.management.jump is not None
            plans[name] = GuestPlan(name, None if jumped else node.management.port,
                                    f"02:4c:47:00:{i // 256:02x}:{i % 256:02x}",
                                    numa_nodes=getattr(node, "numa_nodes", None) or 1,
                                    address=node.management.address if jumped else None)
            for pname, port in node.ports.items():
                plans[name].nics.append(Nic(pname, port.mac, port.speed,
                                            model=port.model or "virtio-net",
                                            numa_node=port.numa_node))
        for ci, cable in enumerate(self.lab.cables):
            (na, pa), (nb, pb) = (_split_end(e) for e in cable.ends)
            ua, ub = base + 2 * ci, base + 2 * ci + 1
            for node, port, local, peer in ((na, pa, ua, ub), (nb, pb, ub, ua)):
                nic = next(n for n in plans[node].nics if n.port == port)
                nic.local_udp, nic.peer_udp = local, peer
        # a twin's management network: each guest behind a jump host cabled to it
        k = 2 * len(self.lab.cables)
        for name, node in sorted(nodes.items()):
            jump = node.management.jump
            if jump is None:
                continue
            j = plans[jump]
            j.memory_mb = JUMP_MEMORY_MB
            mine, theirs = base + k, base + k + 1
            k += 2
            idx = len(j.mgmt_ports)
            port = f"lgm{idx}"
            j.mgmt_ports.append(Nic(port, f"02:4c:47:01:{idx // 256:02x}:{idx % 256:02x}",
                                    local_udp=theirs, peer_udp=mine))
            j.peers.append(node.management.address)
            plans[name].mgmt_nic = Nic(MGMT_NIC, plans[name].mgmt_mac, local_udp=mine,
                                       peer_udp=theirs)
        return plans

    def jump_of(self, node):
        """The jump guest's plan for a guest behind it (None for the others)."""
        spec = self.lab.hosts.get(node) or self.lab.switches.get(node)
        jump = spec.management.jump if spec is not None else None
        return self.plans[jump] if jump else None

    def marker(self, node):
        return f"laghil:{self.lab.name}:{node}"

    def guest_dir(self, node):
        return self.dir / "guests" / node

    def console_marks(self):
        """{guest: bytes of its serial console so far}: for :meth:`console_faults`."""
        out = {}
        for name in self.plans:
            try:
                out[name] = (self.guest_dir(name) / "console.log").stat().st_size
            except OSError:
                out[name] = 0
        return out

    def console_faults(self, marks):
        """{guest: [kernel fault records]} its serial console printed after
        ``marks`` (:meth:`console_marks`): a guest kernel's own trouble (a wedged
        virtio queue, a soft lockup, a BUG), which is the rack's, not the device
        under test's. The console carries the kernel's errors (loglevel 3)."""
        from ..kevents import kernel_fault_lines
        out = {}
        for name in self.plans:
            try:
                with open(self.guest_dir(name) / "console.log", "rb") as f:
                    f.seek(marks.get(name, 0))
                    text = f.read(1 << 20).decode("utf-8", "replace")
            except OSError:
                continue
            lines = kernel_fault_lines(text)
            if lines:
                out[name] = lines
        return out

    @property
    def key_file(self):
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self):
        return self.dir / "known_hosts"

    @property
    def state_file(self):
        return self.dir / "rack.json"

    # ---- state -------------------------------------------------------------
    def _read_state(self):
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _alive_pids(self):
        """Pids of this lab's guests that are running, found by marker in /proc."""
        found = {}
        prefix = f"laghil:{self.lab.name}:".encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(QEMU.encode()) and b"-name" in args:
                name = args[args.index(b"-name") + 1]
                if name.startswith(prefix):
                    found[name[len(prefix):].decode()] = int(pid)
        return found

    def status(self):
        """{node: {"pid": int|None, "ssh": bool}} for every guest of the lab."""
        alive = self._alive_pids()
        out = {}
        for name, plan in self.plans.items():
            out[name] = {"pid": alive.get(name), "ssh_port": plan.ssh_port,
                         "ssh": bool(alive.get(name)) and self._answers(name, 1.0)}
        return out

    def _answers(self, name, timeout):
        """Does the guest's sshd answer: on its 127.0.0.1 port, or (behind the jump
        guest) through a tunnel the jump guest opens to its address."""
        plan = self.plans[name]
        if plan.ssh_port is not None:
            return _ssh_banner(plan.ssh_port, timeout)
        jump = self.jump_of(name)
        return _ssh_banner_via(jump.ssh_port, self.key_file, plan.address, timeout)

    def is_running(self):
        """Some guest of this rack runs (it is up, or partly: a killed run's outlet)."""
        return bool(self._read_state()) and bool(self._alive_pids())

    def is_up(self):
        st = self.status()
        return all(s["pid"] and s["ssh"] for s in st.values())

    # ---- start / stop --------------------------------------------------------
    def up(self, detach=False, reuse=True, timeout=240.0):
        """Boot every guest and wait until each answers SSH. Returns the boot wall time (s).

        ``reuse``: a rack that is already fully up is kept (returns 0.0).
        ``detach``: guests outlive this process (``laghil vlab up``); otherwise
        they get SIGKILL if this process dies, whatever the way.
        """
        state = self._read_state() if reuse else None
        if state:
            if self.is_up():
                self.log(f"vlab {self.lab.name}: already up, reusing it")
                return 0.0
            secs = self._complete(timeout)
            if secs is not None:
                return secs
            # a rack kept up by hand stays detached when it has to be booted again
            detach = detach or bool(state.get("detached"))
        self.down(quiet=True)
        t0 = time.monotonic()
        self.detached = detach
        self._prepare_files()
        for attempt in range(1, BOOT_ATTEMPTS + 1):
            procs = {}
            try:
                for name, plan in self.plans.items():
                    procs[name] = self._start_guest(plan, detach)
                self._write_state({n: p.pid for n, p in procs.items()}, detach)
                self._wait_ssh(procs, time.monotonic() + timeout)
            except RackError as e:
                self._kill({n: p.pid for n, p in procs.items()})
                if attempt == BOOT_ATTEMPTS or not e.boot_hang:
                    raise
                # a guest that stopped in its early boot (seen once on the 4-guest
                # twin: its console's last line "stage1 start", 2026-12-07)
                self.log(f"vlab {self.lab.name}: {str(e).splitlines()[0]}; booting the rack "
                         f"again (attempt {attempt + 1} of {BOOT_ATTEMPTS})")
            except BaseException:
                self._kill({n: p.pid for n, p in procs.items()})
                raise
            else:
                break
        return time.monotonic() - t0

    def _complete(self, timeout):
        """A rack partly up (a killed run's outlet left a guest off, or a guest
        still booting after one was powered on again): power on the guests that
        do not run, wait for the ones booting; the seconds it took, or None when
        nothing of the rack runs (boot it anew). Never ends a running guest."""
        t0 = time.monotonic()
        said = False
        while True:
            st = self.status()
            dead = [n for n, x in st.items() if not x["pid"]]
            booting = [n for n, x in st.items() if x["pid"] and not x["ssh"]]
            if len(dead) == len(st):
                return None
            if not dead and not booting:
                return time.monotonic() - t0
            if not said:
                self.log(f"vlab {self.lab.name}: partly up (off: {', '.join(dead) or '-'}; "
                         f"booting: {', '.join(booting) or '-'}); completing it")
                said = True
            for name in dead:
                self.power_on(name, timeout=timeout)
            if booting:
                if time.monotonic() - t0 > timeout:
                    raise RackError(self._guest_failure(booting[0], "no SSH before the boot "
                                                                    "timeout"))
                time.sleep(0.5)

    def down(self, quiet=False):
        """End every guest of this lab by pid (stale ones included)."""
        for q in self._qmp.values():
            q.close()
        self._qmp.clear()
        pids = self._alive_pids()
        state = self._read_state() or {}
        for node, pid in (state.get("pids") or {}).items():
            if _pid_is_guest(pid, self.marker(node)):
                pids[node] = pid
        if pids and not quiet:
            self.log(f"vlab {self.lab.name}: stopping {', '.join(sorted(pids))}")
        elif pids:
            self.log(f"vlab {self.lab.name}: ending stale guests {pids}")
        self._kill(pids)
        try:
            self.state_file.unlink()
        except FileNotFoundError:
            pass
        return pids

    def _kill(self, pids):
        for pid in pids.values():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        def alive():
            for pid in pids.values():
                _reap(pid)
            return [p for p in pids.values() if _pid_alive(p)] or None
        try:
            wait_until(alive, timeout=5, interval=0.05, what="guests ending on SIGTERM")
        except WaitTimeout:
            pass                            # the rest get SIGKILL
        for pid in pids.values():
            if _pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _reap(pid)

    def _write_state(self, pids, detach):
        self.state_file.write_text(json.dumps({
            "lab": self.lab.name, "started": time.time(), "owner_pid": os.getpid(),
            "detached": detach, "pids": pids,
            "ssh_ports": {n: p.ssh_port for n, p in self.plans.items()},
        }, indent=2))

    def _prepare_files(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        for f in (self.key_file, Path(str(self.key_file) + ".pub")):
            f.unlink(missing_ok=True)
        _keygen(self.key_file, f"laghil-vlab-{self.lab.name}")
        pub = Path(str(self.key_file) + ".pub").read_text()
        stage2 = resources.files("laghil.vlab").joinpath("stage2.sh").read_bytes()
        known = []
        for name, plan in self.plans.items():
            g = self.guest_dir(name)
            if g.exists():
                shutil.rmtree(g)
            g.mkdir(parents=True)
            _keygen(g / "ssh_host_ed25519_key", f"laghil-{name}")
            hostpub = (g / "ssh_host_ed25519_key.pub").read_text().split()
            where = plan.address if plan.ssh_port is None else f"[127.0.0.1]:{plan.ssh_port}"
            known.append(f"{where} {hostpub[0]} {hostpub[1]}")
            (g / "authorized_keys").write_text(pub)
            (g / "stage2.sh").write_bytes(stage2)
            data_ports = " ".join(n.port for n in plan.nics + plan.mgmt_ports)
            mode = "internal" if plan.mgmt_nic is not None else "user"
            (g / "node.env").write_text(f"NODE={name}\nDATA_PORTS='{data_ports}'\n"
                                        f"MGMT_MODE={mode}\n")
            (g / "mgmt.sh").write_text(self._mgmt_script(plan))
            lines = [f"{plan.mgmt_mac} {MGMT_NIC}"] + [f"{n.mac} {n.port}"
                                                      for n in plan.nics + plan.mgmt_ports]
            (g / "ifmap").write_text("\n".join(lines) + "\n")
            (g / "sshd_config").write_text(SSHD_CONFIG)
        self.known_hosts.write_text("\n".join(known) + "\n")

    def _mgmt_script(self, plan):
        """Stage 2's management set-up of a twin's guest (iproute2): behind the
        jump host, the lab's address on mgmt0 and a route to the jump guest; on
        the jump guest, a bridge over its NICs to the others and a route to each.
        Nothing for the other guests (QEMU's user network, set up in stage 1)."""
        jump_ip = self.lab.twin.jump_address if self.lab.twin is not None else None
        out = ["#!/bin/sh", "set -e"]
        if plan.mgmt_nic is not None:
            out += [f"ip addr add {plan.address}/32 dev {MGMT_NIC}",
                    f"ip link set {MGMT_NIC} up",
                    f"ip route add {jump_ip}/32 dev {MGMT_NIC}"]
        if plan.mgmt_ports:
            out += [f"ip link add {MGMT_BRIDGE} type bridge",
                    f"ip link set {MGMT_BRIDGE} up",
                    f"ip addr add {jump_ip}/32 dev {MGMT_BRIDGE}"]
            for nic in plan.mgmt_ports:
                out += [f"ip link set {nic.port} master {MGMT_BRIDGE}", f"ip link set {nic.port} up"]
            out += [f"ip route add {a}/32 dev {MGMT_BRIDGE}" for a in plan.peers]
        return "\n".join(out) + "\n"

    def _boot_files(self):
        """(kernel, initramfs), fetched/built once per Rack."""
        if getattr(self, "_boot", None) is None:
            kernel = ensure_kernel(log=self.log)
            self._boot = (kernel, build_initramfs(kernel, cache_root() / "initramfs"))
        return self._boot

    def _qemu_cmd(self, plan, kernel, initrd, wire_fds):
        """``wire_fds``: {port: fd} of every cabled port's socket, made by
        :func:`wire_socket` and passed to QEMU."""
        g = self.guest_dir(plan.name)
        mem = plan.memory_mb or getattr(getattr(self.lab, "virtual", None), "memory_mb", 1024)
        cpus = getattr(getattr(self.lab, "virtual", None), "cpus", 1)
        ro = "security_model=none,readonly=on,multidevs=remap"
        # an igb PF (SR-IOV) needs PCI Express: q35, each behind a root port; so
        # does a NIC placed on a NUMA node (a pxb-pcie expander bus of that node)
        pcie = any(n.model == "igb" or n.numa_node is not None for n in plan.nics)
        cpus = max(cpus, plan.numa_nodes)
        cmd = [
            QEMU, "-name", self.marker(plan.name),
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

    def _start_guest(self, plan, detach):
        check_qemu()
        g = self.guest_dir(plan.name)
        if plan.ssh_port is not None:
            _check_port_free(plan.name, plan.ssh_port)
        boot = self._boot_files()
        socks = {}
        try:
            for nic in plan.nics + plan.mgmt_ports + [plan.mgmt_nic]:
                if nic is not None and nic.local_udp is not None:
                    socks[nic.port] = wire_socket(plan.name, nic)
            cmd = self._qemu_cmd(plan, *boot, wire_fds={p: s.fileno() for p, s in socks.items()})
            (g / "qemu.cmd").write_text(shlex.join(cmd) + "\n")
            return self._popen(plan, cmd, detach, [s.fileno() for s in socks.values()])
        finally:
            for sock in socks.values():     # QEMU holds its own copies
                sock.close()

    def _popen(self, plan, cmd, detach, fds):
        g = self.guest_dir(plan.name)
        errlog = open(g / "qemu.log", "wb")
        # PR_SET_PDEATHSIG fires when the parent THREAD ends: only from the main
        # thread does it mean "the controller died". A guest started from another
        # thread (the virtual PDU's power-on) is ended by teardown, or as a stale
        # guest on the next start.
        tie = not detach and threading.current_thread() is threading.main_thread()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog,
                                start_new_session=True, pass_fds=fds,
                                preexec_fn=_die_with_parent if tie else None)
        errlog.close()
        return proc

    def _wait_ssh(self, procs, deadline):
        pending = dict(procs)
        while pending:
            for name, proc in list(pending.items()):
                if proc.poll() is not None:
                    raise RackError(self._guest_failure(name, f"QEMU exited with {proc.returncode}"))
                jump = self.jump_of(name)
                if jump is not None and jump.name in pending:
                    continue            # reached through it: once it answers
                if self._answers(name, 1.0):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                e = RackError(self._guest_failure(sorted(pending)[0],
                                                  "no SSH before the boot timeout"))
                e.boot_hang = True
                raise e
            if pending:
                time.sleep(0.25)
        for name in procs:
            for nic in self.plans[name].nics:
                if nic.local_udp is None:  # an uncabled port has no carrier
                    self.qmp(name).set_link(nic_id(nic.port), False)

    def _guest_failure(self, name, why):
        g = self.guest_dir(name)
        tail = ""
        for f in ("qemu.log", "console.log"):
            try:
                t = (g / f).read_text(errors="replace").strip().splitlines()[-15:]
                tail += f"\n--- {g / f} (last lines) ---\n" + "\n".join(t)
            except OSError:
                pass
        return f"vlab {self.lab.name}: guest {name}: {why}{tail}"

    # ---- cables --------------------------------------------------------------
    def qmp(self, node):
        if node not in self._qmp:
            self._qmp[node] = Qmp(self.guest_dir(node) / "qmp.sock", node)
        return self._qmp[node]

    def set_cable(self, cable, up):
        """Drop (up=False) or restore carrier on BOTH ends of a cable.

        Returns (t_first, t_last): wall-clock instants the two ends were applied.
        """
        times = []
        for end in cable.ends:
            node, port = _split_end(end)
            times.append(self.qmp(node).set_link(nic_id(port), up))
        return times[0], times[-1]

    def set_port(self, node, port, up):
        """One end only (a one-sided fault: the peer keeps carrier)."""
        return self.qmp(node).set_link(nic_id(port), up)

    # ---- power (the virtual PDU's outlets) ---------------------------------------
    def _far_ends(self, node):
        ends = []
        for cable in self.lab.cables:
            (na, pa), (nb, pb) = (_split_end(e) for e in cable.ends)
            if na == node:
                ends.append((nb, pb))
            elif nb == node:
                ends.append((na, pa))
        return ends

    def is_powered(self, node):
        return node in self._alive_pids()

    def power_off(self, node):
        """Cut a guest's power: its far ends lose carrier, then its QEMU is killed.
        Returns the wall-clock instant the power went."""
        for peer, port in self._far_ends(node):
            if self.is_powered(peer):
                self.qmp(peer).set_link(nic_id(port), False)
        q = self._qmp.pop(node, None)
        if q:
            q.close()
        pid = self._alive_pids().get(node)
        t = time.time()
        if pid:
            self._kill({node: pid})
        return t

    def power_on(self, node, timeout=240.0):
        """Power a guest on: boot it again, wait for SSH, restore its far ends' carrier.
        Returns the boot wall time in seconds."""
        if self.is_powered(node):
            return 0.0
        t0 = time.monotonic()
        # a guest of a rack kept up (``laghil vlab up``) outlives this process too
        detach = (self._read_state() or {}).get("detached", getattr(self, "detached", False))
        proc = self._start_guest(self.plans[node], detach)
        state = self._read_state() or {"pids": {}}
        state.setdefault("pids", {})[node] = proc.pid
        self.state_file.write_text(json.dumps(state, indent=2))
        self._wait_ssh({node: proc}, t0 + timeout)
        for peer, port in self._far_ends(node):
            if self.is_powered(peer):
                self.qmp(peer).set_link(nic_id(port), True)
        return time.monotonic() - t0


SSHD_CONFIG = """\
Port 22
HostKey /run/laghil/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
MaxSessions 64
MaxStartups 64:30:128
PidFile /run/sshd.pid
LogLevel ERROR
"""


def _keygen(path, comment):
    r = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                        "-f", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RackError(f"ssh-keygen {path}: {r.stderr.strip()}")


def _die_with_parent():
    """In the child before exec: SIGKILL when the parent (pytest) dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


_QUIET_LOG = "laghil.vlab.banner"
logging.getLogger(_QUIET_LOG).disabled = True


def _ssh_banner_via(jump_port, key_file, address, timeout):
    """True when the sshd at ``address``:22 answers through a direct-tcpip
    channel the jump guest (127.0.0.1:``jump_port``, the rack's key) opens: how
    the controller reaches a twin's guest behind its jump host."""
    import paramiko
    try:
        sock = socket.create_connection(("127.0.0.1", jump_port), timeout=timeout)
    except OSError:
        return False
    t = paramiko.Transport(sock)
    t.set_log_channel(_QUIET_LOG)       # a refused tunnel while it boots is the expected answer
    try:
        t.banner_timeout = t.auth_timeout = timeout
        t.start_client(timeout=timeout)
        t.auth_publickey("root", paramiko.Ed25519Key.from_private_key_file(str(key_file)))
        ch = t.open_channel("direct-tcpip", (address, 22), ("127.0.0.1", 0), timeout=timeout)
        ch.settimeout(timeout)
        return ch.recv(64).startswith(b"SSH-")
    except (paramiko.SSHException, OSError, EOFError):
        return False
    finally:
        t.close()


def _ssh_banner(port, timeout):
    """True when an SSH server (not just QEMU's hostfwd listener) answers on the port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


QEMU_MIN = (8, 0)


@parser('qemu-system-x86_64 --version')
def parse_qemu_version(text):
    """``qemu-system-x86_64 --version`` -> (major, minor, micro), or None."""
    import re
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


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _pid_is_guest(pid, marker):
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
