"""The persistent shell of an SSH session in shell mode (laghil.transport.ssh):
one ``/bin/sh`` per connection fed framed commands (:mod:`.framing`), read
back until both end markers, and its process group killed at a timeout. A
part of :class:`~laghil.transport.ssh.SshSession`, which holds its state
(``_shell``, ``_shell_pid``, ``_tag``) under the session's lock."""

import time

import paramiko

from ..errors import ConnectError, TransportError
from .framing import BUF, Deadline, Lost, Marks, Stale, decode, framed


class PersistentShell:
    """The shell-mode methods of SshSession."""

    def _shell_run(self, remote, deadline):
        """Run ``remote`` through the persistent shell; return (rc, stdout, stderr)."""
        chan = self._shell_channel()
        while chan.recv_ready():          # stray output of earlier background jobs
            chan.recv(BUF)
        while chan.recv_stderr_ready():
            chan.recv_stderr(BUF)
        script = self._framed(remote)
        try:
            chan.sendall(script.encode())
        except (paramiko.SSHException, EOFError, OSError) as e:
            self._discard_shell()
            raise Stale(f"cannot write to the shell: {e}") from e
        try:
            return self._read_framed(chan, deadline)
        except Deadline:
            self._kill_shell_group()
            self._discard_shell()
            raise
        except (Lost, Stale):
            self._discard_shell()
            raise

    def _kill_shell_group(self):
        """SIGKILL the persistent shell's process group (the timed-out command and
        everything it started), over a second channel; best effort, bounded."""
        pid = self._shell_pid
        if not pid:
            return
        # with the session's sudo: the group holds what ran through sudo, as root
        kill = f"{'sudo -n ' if self._sudo(None) else ''}kill -KILL -- -{int(pid)}"
        try:
            self._exec_run(f"{kill} 2>/dev/null; exit 0",
                           time.monotonic() + max(5.0, self.timeout_grace))
        except (Deadline, Lost, Stale, TransportError, paramiko.SSHException,
                EOFError, OSError):
            pass

    def _framed(self, remote):
        """:func:`framing.framed` with this session's next tag."""
        self._seq += 1
        self._tag = f"{self._token}:{self._seq}"
        return framed(self._tag, remote)

    def _shell_channel(self):
        """The live persistent shell channel, opened (and synchronised) if needed."""
        chan = self._shell
        if chan is not None and not (chan.closed or chan.eof_received or chan.exit_status_ready()):
            return chan
        self._discard_shell()
        chan = self._open_channel()
        try:
            chan.exec_command("exec /bin/sh")
        except (paramiko.SSHException, EOFError, OSError) as e:
            chan.close()
            raise Stale(f"cannot start /bin/sh: {e}") from e
        self._shell = chan
        # Synchronise: whatever the login shell's start-up files print comes
        # before the first start marker and is thrown away.
        limit = max(self.target.connect_timeout, 10.0)
        try:
            chan.sendall(self._framed("echo $$").encode())
            _, pid, _ = self._read_framed(chan, time.monotonic() + limit)
            self._shell_pid = int(pid.strip() or 0)
        except Deadline:
            self._discard_shell()
            raise ConnectError(self.name, f"the shell on {self.where} did not start "
                                          f"within {limit:g} s") from None
        except (Lost, Stale, paramiko.SSHException, EOFError, OSError) as e:
            self._discard_shell()
            raise Stale(f"the shell exited at start: {e}") from e
        return chan

    def _read_framed(self, chan, deadline):
        """Read the output of the last :meth:`_framed` command until both end
        markers arrived; return (rc, stdout, stderr). Raises Stale if the channel
        ended before any start marker, Lost if it ended later."""
        tag = self._tag.encode()
        out_marks = Marks(tag + b":s\n", b"\n" + tag + b":e:", status=True)
        err_marks = Marks(tag + b":s\n", b"\n" + tag + b":e\n")
        out, err = bytearray(), bytearray()

        def done():
            found_out = out_marks.update(out)
            return err_marks.update(err) and found_out
        try:
            ended = self._pump(chan, out, err, deadline, done)
        except Deadline:
            # the partial output is the command's own: no marker of the framing
            raise Deadline(out[out_marks.begin:] if out_marks.begin is not None else b"",
                           err[err_marks.begin:] if err_marks.begin is not None else b"") \
                from None
        if not ended:
            tail = decode(err[-500:]).strip() or "the shell channel closed"
            if out_marks.begin is None and err_marks.begin is None:
                raise Stale(f"the shell ended before the command started: {tail}")
            raise Lost(tail)
        return (out_marks.rc, out[out_marks.begin:out_marks.stop],
                err[err_marks.begin:err_marks.stop])
