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

import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from importlib import resources
from pathlib import Path

from ..errors import RackError
from ..wait import WaitTimeout, wait_until
from .initramfs import build_initramfs
from .kernel import ensure_kernel
from .paths import cache_root, lab_state_dir
from .guest import (MGMT_NIC, GuestPlan, Nic, _split_end, console_faults, console_marks,
                    mgmt_script, nic_id)
from .procs import _die_with_parent, _pid_alive, _pid_is_guest, _reap
from .qemu import QEMU, _check_port_free, check_qemu, guest_command, wire_socket
from .qmp import Qmp
from .sshd import SSHD_CONFIG, _keygen, _ssh_banner, _ssh_banner_via

UDP_BASE = 41000
TWIN_UDP_OFFSET = 2000          # a twin's cables: 43000 and up
BOOT_ATTEMPTS = 2               # a rack whose guest hung in its boot is booted once more
JUMP_MEMORY_MB = 512


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
        own = getattr(getattr(self.lab, "virtual", None), "udp_base", None)
        if own is not None:
            return own
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

    def wire_ends(self):
        """{local UDP port on 127.0.0.1: (guest, nic)} of every cabled NIC (a
        twin's management links too): where the kernel counts what the wire dropped."""
        out = {}
        for name, plan in self.plans.items():
            nics = list(plan.nics) + list(plan.mgmt_ports)
            if plan.mgmt_nic is not None:
                nics.append(plan.mgmt_nic)
            for nic in nics:
                if nic.local_udp is not None:
                    out[nic.local_udp] = (name, nic.port)
        return out

    def wire_drops(self):
        """{(guest, nic): frames dropped so far} at each cabled NIC's receiving
        socket (laghil.vlab.wire)."""
        from .wire import wire_drops
        return wire_drops(self.wire_ends())

    def console_marks(self):
        """{guest: bytes of its serial console so far}: for :meth:`console_faults`."""
        return console_marks({n: self.guest_dir(n) / "console.log" for n in self.plans})

    def console_faults(self, marks):
        """{guest: [kernel fault records]} its serial console printed after
        ``marks`` (:meth:`console_marks`): laghil.vlab.guest.console_faults."""
        return console_faults({n: self.guest_dir(n) / "console.log" for n in self.plans}, marks)

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
        ovs = resources.files("laghil.vlab").joinpath("ovs.sh").read_bytes()
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
            sw = self.lab.switches.get(name)
            platform = sw.platform if sw is not None else ""
            if platform == "ovs":
                (g / "ovs.sh").write_bytes(ovs)
            (g / "node.env").write_text(f"NODE={name}\nDATA_PORTS='{data_ports}'\n"
                                        f"MGMT_MODE={mode}\nPLATFORM={platform}\n")
            (g / "mgmt.sh").write_text(self._mgmt_script(plan))
            lines = [f"{plan.mgmt_mac} {MGMT_NIC}"] + [f"{n.mac} {n.port}"
                                                      for n in plan.nics + plan.mgmt_ports]
            (g / "ifmap").write_text("\n".join(lines) + "\n")
            (g / "sshd_config").write_text(SSHD_CONFIG)
        self.known_hosts.write_text("\n".join(known) + "\n")

    def _mgmt_script(self, plan):
        return mgmt_script(plan, self.lab.twin.jump_address if self.lab.twin is not None else None)

    def _boot_files(self):
        """(kernel, initramfs), fetched/built once per Rack."""
        if getattr(self, "_boot", None) is None:
            kernel = ensure_kernel(log=self.log)
            self._boot = (kernel, build_initramfs(kernel, cache_root() / "initramfs"))
        return self._boot

    def _qemu_cmd(self, plan, kernel, initrd, wire_fds):
        """``wire_fds``: {port: fd} of every cabled port's socket, made by
        :func:`wire_socket` and passed to QEMU."""
        virtual = getattr(self.lab, "virtual", None)
        return guest_command(plan, marker=self.marker(plan.name),
                             guest_dir=self.guest_dir(plan.name), kernel=kernel, initrd=initrd,
                             wire_fds=wire_fds,
                             memory_mb=plan.memory_mb or getattr(virtual, "memory_mb", 1024),
                             cpus=getattr(virtual, "cpus", 1))

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
