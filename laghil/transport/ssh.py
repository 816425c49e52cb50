"""SSH transport: run commands and upload files on lab nodes (paramiko).

(One class, the session, whose run / upload / reconnect paths share one lock
and one channel state; its persistent shell is in shell.py, its private
folder in workdir.py, set-up in connect.py, framing in framing.py, the pool
in pool.py.)

One :class:`SshSession` per node holds one SSH connection, opened on first use
and reused by every command (through a jump host when ``target.jump`` is set).
Commands run in one of two modes:

``"shell"`` (default)
    One persistent ``/bin/sh`` per connection, fed commands on its stdin. Each
    command runs as ``( ... ) </dev/null`` in a subshell, so ``exit`` or ``cd``
    cannot break the shell, and is followed by an unguessable per-session end
    marker carrying the exit status on stdout and another marker on stderr;
    stdout and stderr stay separate streams. The login shell's start-up files
    (``.bashrc``...) run once per connection, and their output is discarded.
``"exec"``
    One SSH exec channel per command: simpler, costs a channel set-up and a
    login-shell start per command, and passes start-up file output through.

Timeouts. In shell mode the command runs directly in the subshell (no extra
processes: under emulation each exec costs about 0.1 s); the persistent shell is
the leader of its own process group (sshd makes it a session leader), so at the
timeout the controller kills that whole group (``kill -KILL -- -<pid>`` over a
second channel), discards the shell and opens a new one for the next command.
In exec mode the command runs under ``/bin/sh -c`` wrapped in coreutils
``timeout -k 2 <T>``, which kills its process group on the node; the controller
gives up ``timeout_grace`` seconds later. With ``sudo`` (both modes) the command
runs under ``sudo -n timeout -k 2 <T> sh -c``: it runs as root, where a kill sent
as the login user cannot reach it, so its timeout is started through sudo and
ends it as root; should the controller still give up, its kill of the shell's
group goes through sudo too.

Every command (and upload) is recorded, redacted, in a
:class:`~laghil.transport.cmdlog.CommandLog`. Errors are
:class:`~laghil.errors.TransportError` subclasses naming the node, its address
and the cause; passwords never appear in them.
"""


import io
import logging
import os
import secrets
import select
import shlex
import socket
import threading
import time

import paramiko

from ..errors import (AuthError, CommandFailed, CommandTimeout, ConnectError, HostKeyError,
                      TransportError)
from .cmdlog import CommandLog
from .connect import open_transport
from .framing import BUF, KILL_AFTER_S, Deadline, Lost, Result, Stale, decode, remote_command
from .redact import SECRETS
from .shell import PersistentShell
from .workdir import PrivateFolder

MODES = ("exec", "shell")
log = logging.getLogger("laghil.transport")
TIMEOUT_GRACE_S = 5.0     # controller waits timeout + this before giving up

__all__ = ["MODES", "Result", "SshSession", "remote_command"]

class SshSession(PersistentShell, PrivateFolder):
    """A lazily opened, reused SSH connection to one node.

    ``log`` receives a record per command (a private CommandLog is made when it
    is None); ``redactor`` masks secrets in records and error messages (default:
    the log's redactor, else ``SECRETS``); the target's passwords are added to
    it. ``jump_session`` is the session of ``target.jump`` to tunnel through
    (made and owned by this session when None). Thread-safe: commands on one
    session are serialised.
    """

    def __init__(self, target, log=None, redactor=None, mode="shell", *,
                 jump_session=None, timeout_grace=TIMEOUT_GRACE_S):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.target = target
        self.name = target.name
        self.mode = mode
        self.timeout_grace = float(timeout_grace)
        if redactor is None:
            redactor = log.redactor if log is not None else SECRETS
        self.redactor = redactor
        self.log = log if log is not None else CommandLog(redactor)
        hop = target
        while hop is not None:  # passwords of the node and of every jump host
            self.redactor.add(hop.password)
            self.log.redactor.add(hop.password)
            hop = hop.jump
        self._owns_jump = target.jump is not None and jump_session is None
        if self._owns_jump:
            jump_session = SshSession(target.jump, self.log, self.redactor, mode,
                                      timeout_grace=timeout_grace)
        self.jump = jump_session
        self.connect_count = 0          # how many times a connection was opened
        self.gone_since = None          # wall clock the node stopped answering (after a loss)
        self.came_back = []             # seconds each wait for a node that went away took
        self._lock = threading.RLock()
        self._transport = None
        self._shell = None
        self._shell_pid = None
        self._token = secrets.token_hex(16)
        self._seq = 0
        self._tag = None
        self._workdir = None
        self._workdir_entry = None
        self.journal = None             # a laghil.journal.Journal (set_journal)
        self.pinned_host_key = None     # an unknown key accepted once (accept_unknown_host_keys)

    def __repr__(self):
        return f"<SshSession {self.name} {self.where} mode={self.mode}>"

    @property
    def where(self):
        """``address:port``, plus the jump host when there is one (for messages)."""
        t = self.target
        s = f"{t.address}:{t.port}"
        if t.jump is not None:
            s += f" via jump host {t.jump.name} ({t.jump.address}:{t.jump.port})"
        return s

    @property
    def connected(self):
        """True while the SSH connection is open (as far as the client knows)."""
        t = self._transport
        return t is not None and t.is_active()

    # ------------------------------------------------------------------ public

    def connect(self):
        """Open the connection (and, in shell mode, the shell) now rather than lazily."""
        with self._lock:
            self._with_connection(self._shell_channel if self.mode == "shell" else lambda: None)

    def run(self, cmd, timeout=None, check=True, sudo=None):
        """Run ``cmd`` (POSIX sh syntax) on the node and return its Result.

        ``timeout`` (seconds, default ``target.command_timeout``): CommandTimeout
        when exceeded. ``check``: CommandFailed on a non-zero exit status.
        ``sudo`` (default: ``target.sudo`` for a non-root user): run through
        ``sudo -n``. Connection problems raise ConnectError/AuthError/HostKeyError.
        """
        timeout = self.target.command_timeout if timeout is None else float(timeout)
        if timeout <= 0:
            raise ValueError(f"{self.name}: timeout must be positive, not {timeout}")
        sudo = self._sudo(sudo)
        if self.mode == "shell" and not sudo:
            # eval keeps a syntax error inside the subshell (it would end the shell)
            remote = f"eval {shlex.quote(cmd)}"
            grace = 0.0
        else:
            # through sudo the command runs as root, out of reach of a kill sent
            # as the login user: its timeout is started through sudo too
            remote = remote_command(cmd, timeout, sudo)
            grace = self.timeout_grace
        with self._lock:
            started, t0 = time.time(), time.monotonic()
            deadline = t0 + timeout + grace
            try:
                rc, out, err = self._with_connection(lambda: self._execute(remote, deadline))
            except Deadline as d:
                how = ("process group killed by the controller, shell discarded"
                       if self.mode == "shell" and not sudo else
                       f"controller gave up: no exit status {self.timeout_grace:g} s later, "
                       + ("shell's process group killed through sudo, shell discarded"
                          if self.mode == "shell" else "channel closed"))
                self._timeout(cmd, timeout, started, t0, d.out, d.err, how)
            except TransportError as e:
                self._record(cmd, None, started, t0, error=str(e))
                # the test in progress says what was running when the node went away
                shown = cmd if len(cmd) <= 160 else cmd[:157] + "..."
                msg = str(e).removeprefix(f"{e.node}: ")
                raise self._redacted(type(e)(self.name, f"{msg} [running: {shown}]")) from None
            duration = time.monotonic() - t0
            if rc in (124, 137) and duration >= timeout - 0.05:
                self._timeout(cmd, timeout, started, t0, out, err,
                              f"ended on the node: `timeout`{' started through sudo' if sudo else ''}"
                              f" sent SIGTERM to the command's process group, SIGKILL "
                              f"{KILL_AFTER_S} s later")
            result = Result(self.name, cmd, rc, decode(out), decode(err), duration)
            self._record(cmd, rc, started, t0, result.stdout, result.stderr)
        if check and rc != 0:
            raise self._redacted(CommandFailed(self.name, result))
        return result

    def upload(self, data, remote_path, mode=0o644, sudo=None):
        """Write ``data`` (bytes, or the path of a local file) to ``remote_path``
        with permissions ``mode``; SFTP, or ``cat`` over an exec channel when the
        node has no SFTP subsystem or when sudo applies. Raises CommandFailed when
        the node refuses the write."""
        if isinstance(data, (str, os.PathLike)):
            with open(data, "rb") as f:
                data = f.read()
        data = bytes(data)
        sudo = self._sudo(sudo)
        label = f"upload {remote_path} ({len(data)} bytes, mode {mode:04o})"
        with self._lock:
            started, t0 = time.time(), time.monotonic()
            deadline = t0 + self.target.command_timeout + self.timeout_grace
            try:
                if sudo:
                    how = self._with_connection(
                        lambda: self._upload_stdin(data, remote_path, mode, True, deadline))
                else:
                    how = self._with_connection(
                        lambda: self._upload_sftp(data, remote_path, mode, deadline))
            except Deadline:
                self._timeout(label, self.target.command_timeout, started, t0, b"", b"",
                              "upload")
            except CommandFailed as e:
                self._record(label, e.result.rc, started, t0, stderr=e.result.stderr)
                raise
            except TransportError as e:
                self._record(label, None, started, t0, error=str(e))
                raise
            self._record(f"{label} via {how}", 0, started, t0)

    def close(self):
        """Close the shell, the connection and an owned jump session. Idempotent;
        the session reconnects if used again."""
        with self._lock:
            self._drop()
        if self._owns_jump:
            self.jump.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------- commands

    def _sudo(self, sudo):
        if sudo is None:
            return bool(self.target.sudo) and self.target.user != "root"
        return bool(sudo)

    def _execute(self, remote, deadline):
        if self.mode == "shell":
            return self._shell_run(remote, deadline)
        return self._exec_run(f"( {remote} ) </dev/null; exit $?", deadline)

    def _exec_run(self, text, deadline, stdin=None):
        """Run ``text`` on a new exec channel; return (rc, stdout bytes, stderr bytes)."""
        chan = self._open_channel()
        try:
            try:
                chan.exec_command(text)
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise Stale(f"exec request failed: {e}") from e
            if stdin is not None:
                self._send(chan, stdin, deadline)
                chan.shutdown_write()
            out, err = bytearray(), bytearray()
            self._pump(chan, out, err, deadline,
                       lambda: chan.exit_status_ready() and (chan.eof_received or chan.closed))
            if chan.exit_status < 0:
                raise Lost("the channel closed without an exit status")
            return chan.exit_status, out, err
        finally:
            chan.close()

    def _pump(self, chan, out, err, deadline, done):
        """Move stdout/stderr of ``chan`` into ``out``/``err`` until ``done()``
        (return True), the channel ends first (return False) or ``deadline``
        passes (raise Deadline). Blocks in poll() or on events, never spins."""
        while True:
            while chan.recv_ready():
                out += chan.recv(BUF)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(BUF)
            if done():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline(out, err)
            if chan.eof_received or chan.closed:
                # No more output can come; only an exit status may still arrive.
                if chan.closed or chan.status_event.is_set():
                    return False
                chan.status_event.wait(min(remaining, 0.5))
                if not self.connected:
                    return done()
            else:
                poller = select.poll()   # not select(): fds may exceed FD_SETSIZE in big labs
                poller.register(chan.fileno(), select.POLLIN)
                poller.poll(min(remaining, 1.0) * 1000)

    def _send(self, chan, data, deadline):
        """Send all of ``data`` on ``chan`` before ``deadline``."""
        view = memoryview(data)
        while view:
            chan.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                n = chan.send(view[:BUF])
            except socket.timeout:
                raise Deadline() from None
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise Lost(f"sending data failed: {e}") from e
            if n <= 0:
                raise Lost("the channel closed while sending data")
            view = view[n:]
        chan.settimeout(None)

    # ---------------------------------------------------------------- uploads

    def _upload_sftp(self, data, remote_path, mode, deadline):
        try:
            sftp = paramiko.SFTPClient.from_transport(self._transport)
        except (paramiko.SSHException, EOFError, OSError) as e:
            if not self.connected:
                raise Stale(f"cannot open SFTP: {e}") from e
            # no SFTP subsystem on this node
            return self._upload_stdin(data, remote_path, mode, False, deadline)
        if sftp is None:
            return self._upload_stdin(data, remote_path, mode, False, deadline)
        try:
            sftp.get_channel().settimeout(max(1.0, deadline - time.monotonic()))
            sftp.putfo(io.BytesIO(data), remote_path)
            sftp.chmod(remote_path, mode)
        except socket.timeout:
            raise Deadline() from None
        except IOError as e:
            if not self.connected:
                raise Lost(f"connection lost during SFTP upload: {e}") from e
            msg = f"sftp: cannot write {remote_path}: {e.strerror or e}"
            raise CommandFailed(self.name, Result(self.name, f"upload {remote_path}", 1, "", msg,
                                                  0.0)) from e
        except (paramiko.SSHException, EOFError) as e:
            raise Lost(f"SFTP upload failed: {e}") from e
        finally:
            sftp.close()
        return "sftp"

    def _upload_stdin(self, data, remote_path, mode, sudo, deadline):
        path = shlex.quote(remote_path)
        timeout = max(1.0, deadline - time.monotonic() - self.timeout_grace)
        remote = remote_command(f"cat > {path} && chmod {mode:o} {path}", timeout, sudo)
        rc, out, err = self._exec_run(f"( {remote} ); exit $?", deadline, stdin=data)
        if rc != 0:
            raise CommandFailed(self.name, Result(self.name, f"upload {remote_path}", rc,
                                                  decode(out), decode(err), 0.0))
        return "cat"

    # ------------------------------------------------------------- connection

    def _with_connection(self, fn):
        """Call ``fn()`` on a live connection. A connection found dead when the
        command starts, or a channel that cannot be opened, leads to ONE
        reconnect and retry; a failed reconnect raises (ConnectError...)."""
        retried = False
        if not self.connected:
            retried = self._transport is not None
            # a node that answered before and does not now: lost, maybe rebooting
            self._reconnect("connection lost") if self.connect_count else self._connect()
        while True:
            try:
                return fn()
            except Stale as e:
                if retried:
                    self._drop()
                    raise ConnectError(self.name, f"connection to {self.where} unusable after "
                                                  f"reconnecting: {e}") from None
                retried = True
                self._reconnect(str(e))
            except Lost as e:
                cause = "connection lost" if not self.connected else "channel closed"
                if not self.connected:
                    self._drop()
                raise ConnectError(self.name, f"{cause} ({self.where}) while the command ran; it "
                                              f"may or may not have completed: {e}") from None

    def _reconnect(self, cause):
        """Connect again after the connection was lost. A node that does not
        answer (rebooting, power-cycled) is waited for up to the target's
        ``boot_timeout``, once: a node that did not come back then fails every
        later command at once, with the reason, until it answers again."""
        self._drop()
        try:
            self._connect()
            self.gone_since = None
            return
        except (AuthError, HostKeyError):
            raise
        except TransportError as e:
            first = e
        wait = float(getattr(self.target, "boot_timeout", 0.0) or 0.0)
        if self.gone_since is not None or wait <= 0:
            if self.gone_since is None:
                self.gone_since = time.time()
            msg = str(first).removeprefix(f"{first.node}: ")
            gone = (f"; unreachable since {time.strftime('%H:%M:%S', time.localtime(self.gone_since))}"
                    f", not waited for again" if wait > 0 else "")
            raise type(first)(self.name, f"{cause}; reconnect failed: {msg}{gone}") from first
        t0 = time.monotonic()
        self.gone_since = time.time()
        log.warning("%s: %s; waiting up to %g s for it to come back", self.name, cause, wait)
        last = first
        while time.monotonic() - t0 < wait:
            time.sleep(min(2.0, max(0.1, wait / 50)))
            try:
                self._connect()
            except (AuthError, HostKeyError):
                raise
            except TransportError as e:
                last = e
                continue
            log.warning("%s: answered again after %.1f s", self.name, time.monotonic() - t0)
            self.gone_since = None
            self.came_back.append(round(time.monotonic() - t0, 1))
            return
        msg = str(last).removeprefix(f"{last.node}: ")
        raise type(last)(self.name, f"{cause}; did not come back within {wait:g} s "
                                    f"(boot_timeout): {msg}") from last

    def _connect(self):
        self._transport = open_transport(self)
        self.connect_count += 1

    def _drop(self):
        """Forget the shell and the connection (closing both)."""
        self._discard_shell()
        t, self._transport = self._transport, None
        if t is not None:
            t.close()

    def _discard_shell(self):
        chan, self._shell = self._shell, None
        if chan is not None:
            chan.close()

    def _open_channel(self):
        transport = self._transport
        if transport is None:
            raise Stale("not connected")
        try:
            return transport.open_session(timeout=self.target.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise Stale(f"cannot open a channel: {e or type(e).__name__}") from e

    def open_tunnel(self, host, port, timeout, for_node):
        """A ``direct-tcpip`` channel from this (jump) node to ``host:port``, to be
        used as the socket of another connection; errors name ``for_node``."""
        transport = self._transport
        if transport is None or not transport.is_active():
            with self._lock:  # only to (re)connect: a long command here does not block tunnels
                try:
                    self._with_connection(lambda: None)
                except TransportError as e:
                    raise type(e)(for_node, f"jump host failed: {e}") from e
                transport = self._transport
        try:
            return transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0),
                                          timeout=timeout)
        except paramiko.ChannelException as e:
            cause = e.text or f"code {e.code}"
        except (paramiko.SSHException, EOFError, OSError) as e:
            cause = str(e) or type(e).__name__
        raise ConnectError(for_node, f"cannot connect to {host}:{port} via jump host "
                                     f"{self.name} ({self.target.address}:{self.target.port}): "
                                     f"{cause}")

    # ------------------------------------------------------------------ helpers

    def _record(self, cmd, rc, started, t0, stdout="", stderr="", error=None):
        self.log.add(self.name, self.redactor.redact(cmd), rc, time.monotonic() - t0,
                     self.redactor.redact(stdout), self.redactor.redact(stderr), started,
                     error=self.redactor.redact(error))

    def _redacted(self, exc):
        """``exc`` with its message and its ``.result`` (command and output, what
        a handler or ``pytest -l`` may print) masked."""
        exc.args = (self.redactor.redact(str(exc)),)
        res = getattr(exc, "result", None)
        if isinstance(res, Result):
            red = self.redactor.redact
            exc.result = Result(res.node, red(res.command), res.rc, red(str(res.stdout)),
                                red(res.stderr), res.duration_s)
        return exc

    def _timeout(self, cmd, timeout, started, t0, out, err, how):
        msg = f"timed out after {timeout:g} s ({how}) on {self.where}: {cmd!r}"
        self._record(cmd, None, started, t0, decode(out), decode(err), error=msg)
        exc = CommandTimeout(self.name, msg)
        exc.result = Result(self.name, cmd, -1, decode(out), decode(err),
                            time.monotonic() - t0)
        raise self._redacted(exc) from None
