"""A real, throwaway OpenSSH server on 127.0.0.1 for transport tests.

``LoopbackSshd`` makes a temporary directory with an ed25519 host key, an
ed25519 client key (authorized for the current user), an sshd_config and a
known_hosts file, starts ``/usr/sbin/sshd -D -e`` on a free port and stops it
(and the per-connection sshd processes it forked) by pid on exit::

    with LoopbackSshd() as sshd:
        target = sshd.target(name="n1", command_timeout=5)

Needs root (or at least the right to run sshd) and OpenSSH installed.
"""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from laghil.transport.target import SshTarget

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = "/run/sshd"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_key(path):
    """Create an unencrypted ed25519 key pair at ``path`` (+ ``.pub``); return the path."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "laghil-test",
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    return Path(path)


def _children(pid):
    """Pids of the direct children of ``pid`` (from /proc)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


class LoopbackSshd:
    """A private sshd on 127.0.0.1:<free port>; use as a context manager or start()/stop()."""

    def __init__(self, start_timeout=10.0):
        self.start_timeout = start_timeout
        self.dir = None
        self.port = None
        self.proc = None
        self.user = getpass.getuser()

    # paths, valid once started
    @property
    def host_key(self):
        return self.dir / "host_ed25519"

    @property
    def client_key(self):
        return self.dir / "client_ed25519"

    @property
    def known_hosts(self):
        return self.dir / "known_hosts"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def host_key_line(self, address="127.0.0.1"):
        """The known_hosts line for this server as reached at ``address``."""
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{address}]:{self.port} {kind} {blob}\n"

    def target(self, **overrides):
        """An SshTarget for this server; keyword arguments override fields."""
        fields = dict(name="loopback", address="127.0.0.1", port=self.port, user=self.user,
                      key_file=str(self.client_key), known_hosts=str(self.known_hosts),
                      connect_timeout=5.0, command_timeout=30.0)
        fields.update(overrides)
        return SshTarget(**fields)

    def new_key(self, name):
        """A fresh key pair in the temp dir that is NOT authorized; returns its path."""
        return str(make_key(self.dir / name))

    def start(self):
        self.dir = Path(tempfile.mkdtemp(prefix="laghil-sshd-"))
        os.chmod(self.dir, 0o700)
        make_key(self.host_key)
        make_key(self.client_key)
        shutil.copy(self.client_key.with_suffix(".pub"), self.dir / "authorized_keys")
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)
        last_error = None
        for _ in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            try:
                self._launch()
                self.known_hosts.write_text(self.host_key_line())
                return self
            except RuntimeError as e:
                last_error = e
        self.stop()
        raise last_error

    def _launch(self):
        cfg = self.dir / "sshd_config"
        cfg.write_text("\n".join([
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "StrictModes no",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "AllowTcpForwarding yes",
            f"PidFile {self.dir / 'sshd.pid'}",
            "Subsystem sftp internal-sftp",
            "MaxSessions 20",
            "MaxStartups 50",
            "LogLevel ERROR",
            "",
        ]))
        log = open(self.dir / "sshd.log", "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        self.kill()
        text = (self.dir / "sshd.log").read_text(errors="replace").strip()
        raise RuntimeError(f"sshd on 127.0.0.1:{self.port} did not start: {text or 'no output'}")

    def replace_host_key(self):
        """Restart on the same port with a new host key (a reinstalled node, or
        someone answering in its place); known_hosts follows."""
        self.kill_connections()
        self.kill()
        for p in (self.host_key, self.host_key.with_suffix(".pub")):
            p.unlink()
        make_key(self.host_key)
        self._launch()
        self.known_hosts.write_text(self.host_key_line())

    def kill_connections(self):
        """Kill (by pid) every process this sshd forked for connections: drops all clients."""
        if self.proc is None:
            return
        todo, pids = [self.proc.pid], []
        while todo:
            kids = _children(todo.pop())
            pids += kids
            todo += kids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill(self):
        """Stop sshd and its connection processes by pid; keep the temp dir and keys."""
        if self.proc is None:
            return
        self.kill_connections()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def stop(self):
        """Stop sshd and its connection processes (by pid) and remove the temp dir."""
        self.kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
