"""What a guest's SSH needs from the controller: the guests' sshd
configuration and host key, and the banner wait that says a guest (or one
behind the jump guest) answers."""

import logging
import socket
import subprocess

from ..errors import RackError

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
