"""Opening an SSH connection to a node: key, TCP (or a tunnel through the
jump host), handshake, host key check against known_hosts, authentication;
every failure a TransportError naming the node, its address and the fix.
Functions of the session whose connection they open."""

import os
import socket
import time
from base64 import b64encode
from hashlib import sha256

import paramiko

from ..errors import AuthError, ConnectError, HostKeyError

KEEPALIVE_S = 15          # SSH keepalive interval on every connection


def fingerprint(key):
    """OpenSSH-style SHA256 fingerprint of a paramiko key."""
    return "SHA256:" + b64encode(sha256(key.asbytes()).digest()).decode().rstrip("=")


def open_transport(session):
    """Open, verify and authenticate a new connection for ``session``
    (within its target's connect_timeout); return the paramiko Transport."""
    t = session.target
    deadline = time.monotonic() + t.connect_timeout
    pkey = _load_key(session)
    sock = _open_socket(session, deadline)
    transport = paramiko.Transport(sock)
    try:
        _handshake(session, transport, deadline)
        _authenticate(session, transport, pkey, deadline)
    except BaseException:
        transport.close()
        raise
    transport.set_keepalive(KEEPALIVE_S)
    return transport

def verified_host_key(session):
    """(hostname as known_hosts names it, the node's host key) checked as every
    connection of ``session`` checks it (known_hosts; an unknown key accepted
    and pinned only with accept_unknown_host_keys), on a connection opened for
    the check and closed; HostKeyError otherwise. For a client that is not
    laghil's (netmiko), which is then given this key and nothing else."""
    t = session.target
    deadline = time.monotonic() + t.connect_timeout
    sock = _open_socket(session, deadline)
    transport = paramiko.Transport(sock)
    try:
        _handshake(session, transport, deadline)
        return _hostname(t), transport.get_remote_server_key()
    finally:
        transport.close()


def _hostname(t):
    return t.address if t.port == 22 else f"[{t.address}]:{t.port}"


def _remaining(session, deadline):
    return max(0.05, deadline - time.monotonic())

def _timed_out(session, stage):
    return ConnectError(session.name, f"cannot connect to {session.where}: timed out after "
                                   f"{session.target.connect_timeout:g} s ({stage})")

def _load_key(session):
    path = session.target.key_file
    if path is None:
        return None
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise AuthError(session.name, f"key file {path} not found (key_file for {session.where})")
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise AuthError(session.name, f"key file {path} is protected by a passphrase; "
                                   "laghil needs an unencrypted key") from None
    except Exception as e:  # noqa: BLE001 - any parse error of a user-supplied file
        raise AuthError(session.name, f"cannot load key file {path}: {e}") from None

def _open_socket(session, deadline):
    t = session.target
    if t.jump is not None:
        return session.jump.open_tunnel(t.address, t.port, _remaining(session, deadline), t.name)
    try:
        sock = socket.create_connection((t.address, t.port), timeout=_remaining(session, deadline))
    except ConnectionRefusedError:
        raise ConnectError(session.name, f"cannot connect to {session.where}: connection refused "
                                      "(no sshd listening on that port?)") from None
    except socket.timeout:
        raise _timed_out(session, "TCP connect: host down or port filtered?") from None
    except socket.gaierror as e:
        raise ConnectError(session.name, f"cannot resolve {t.address!r}: {e.strerror}") from None
    except OSError as e:
        raise ConnectError(session.name, f"cannot connect to {session.where}: "
                                      f"{e.strerror or e}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock

def _known_hosts(session):
    path = os.path.expanduser(session.target.known_hosts or "~/.ssh/known_hosts")
    keys = paramiko.HostKeys()
    if os.path.isfile(path):
        try:
            keys.load(path)
        except (OSError, paramiko.SSHException) as e:
            raise HostKeyError(session.name, f"cannot read known_hosts {path}: {e}") from None
    return keys, path

def _handshake(session, transport, deadline):
    t = session.target
    hostname = _hostname(t)
    known, path = _known_hosts(session)
    expected = known.lookup(hostname)
    if expected:  # ask the server for the key type we know, as OpenSSH does
        want = []
        for kt in expected.keys():
            want += ["rsa-sha2-512", "rsa-sha2-256", kt] if kt == "ssh-rsa" else [kt]
        opts = transport.get_security_options()
        opts.key_types = ([k for k in want if k in opts.key_types]
                          + [k for k in opts.key_types if k not in want])
    remaining = _remaining(session, deadline)
    transport.banner_timeout = transport.handshake_timeout = remaining
    transport.auth_timeout = remaining
    try:
        transport.start_client(timeout=remaining)
    except (paramiko.SSHException, EOFError, OSError) as e:
        if time.monotonic() >= deadline - 0.2:
            raise _timed_out(session, _stage(transport)) from None
        raise ConnectError(session.name, f"SSH handshake with {session.where} failed: "
                                      f"{e or type(e).__name__}") from None
    if getattr(transport, "host_key", None) is None:
        raise _timed_out(session, _stage(transport))
    key = transport.get_remote_server_key()
    _check_host_key(session, hostname, key, expected, path)

def _stage(transport):
    if not transport.remote_version:
        return "no SSH banner: is an SSH server listening there?"
    return "during the SSH key exchange"

def _check_host_key(session, hostname, key, expected, path):
    t = session.target
    offered = f"{key.get_name()} {fingerprint(key)}"
    if expected is None:
        if t.accept_unknown_host_keys:
            # accepted once, then pinned for the session's life: a reconnect (after a
            # lost connection, a reboot) to another key is refused as a mismatch is
            pinned = getattr(session, "pinned_host_key", None)
            if pinned is None:
                session.pinned_host_key = key
                return
            if pinned.get_name() == key.get_name() and pinned.asbytes() == key.asbytes():
                return
            raise HostKeyError(session.name, (
                f"host key of {session.where} changed during the run: this session accepted "
                f"the unknown {pinned.get_name()} {fingerprint(pinned)} at its first "
                f"connection (accept_unknown_host_keys), the server now offers {offered}. "
                f"The node was reinstalled, or someone answers in its place: refused"))
        missing = "" if os.path.isfile(path) else " (the file does not exist)"
        raise HostKeyError(session.name, (
            f"host key of {session.where} is unknown: {hostname} is not in {path}{missing}; "
            f"the server offers {offered}. Add it to known_hosts (ssh-keyscan -p {t.port} "
            f"{t.address} >> {path}), point known_hosts at the right file, or set "
            f"accept_unknown_host_keys: true for a throwaway lab"))
    ours = expected.get(key.get_name())
    if ours != key:
        known = ", ".join(f"{k.get_name()} {fingerprint(k)}" for k in expected.values())
        raise HostKeyError(session.name, (
            f"host key of {session.where} does NOT match {path}: the server offers {offered}, "
            f"known_hosts has {known} for {hostname}. The node was reinstalled, or someone "
            f"is intercepting the connection; if the change is expected, remove the old "
            f"entry (ssh-keygen -R '{hostname}' -f {path})"))

def _authenticate(session, transport, pkey, deadline):
    t = session.target
    attempts = []
    if pkey is not None:
        attempts.append((f"key {t.key_file}", lambda: transport.auth_publickey(t.user, pkey)))
    if t.password is not None:
        attempts.append(("password", lambda: transport.auth_password(t.user, t.password)))
    if not attempts:
        raise AuthError(session.name, f"no key_file and no password configured for {session.where}")
    failures = []
    for label, attempt in attempts:
        try:
            attempt()
        except paramiko.BadAuthenticationType as e:
            allowed = ", ".join(e.allowed_types)
            failures.append(f"{label} not accepted (server allows: {allowed})")
            continue
        except paramiko.AuthenticationException as e:
            if "timeout" in str(e).lower() or time.monotonic() >= deadline:
                raise _timed_out(session, "authentication") from None
            failures.append(f"{label} refused")
            continue
        except (paramiko.SSHException, EOFError, OSError) as e:
            if time.monotonic() >= deadline - 0.2:
                raise _timed_out(session, "authentication") from None
            raise ConnectError(session.name, f"connection to {session.where} failed during "
                                          f"authentication: {e or type(e).__name__}") from None
        if transport.is_authenticated():
            return
        failures.append(f"{label}: more authentication required (unsupported)")
    raise AuthError(session.name, f"authentication as {t.user!r} to {session.where} failed: "
                               + "; ".join(failures))
