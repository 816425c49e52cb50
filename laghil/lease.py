"""A lease held on the lab itself, not on the controller.

The controller's flock (:mod:`laghil.lock`) only keeps out runs on the same
machine; two CI runners on two machines would drive one rack at once. So a run
also holds a lease file on every host of the lab (``lease-<lab>.json`` in a folder
only the lab account can write: :data:`LEASE_DIR_SH`), written atomically under the node's own ``flock``, with the holder (controller
host, pid, run id), its start and its expiry **by the node's clock** (no clock
skew between controllers), renewed by a thread while the run lives over its own
SSH connection (a long command on the test's session does not delay it).

A second controller is refused with the holder's identity and how long the
lease has left; a holder that stopped renewing (SIGKILL, a lost runner) lets
its lease expire; ``laghil lab unlock --force`` breaks one and says whose it was.
"""

import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from .errors import LaghilError
from .names import check_name
from .parsing import parser

DEFAULT_TTL_S = 60.0
# The lease's folder on a node: /var/lib/laghil for root, else the account's own
# ~/.local/state/laghil; made 0700 on first use, refused (exit 6, "LEASEDIR ...")
# when it is a symbolic link or not the account's: nobody else can plant, link
# or rewrite a file in it. (Before 2026-12-07: /var/tmp, where anyone could.)
LEASE_DIR_SH = ('if [ "$(id -u)" = 0 ]; then D=/var/lib/laghil; '
                'else D="${HOME:?}/.local/state/laghil"; fi; '
                '[ -L "$D" ] && { echo "LEASEDIR $D is a symbolic link"; exit 6; }; '
                'mkdir -p -m 700 "$D" 2>/dev/null; '
                '{ [ -d "$D" ] && [ ! -L "$D" ] && [ -O "$D" ]; } || '
                '{ echo "LEASEDIR $D is not this account\'s folder"; exit 6; }; '
                'chmod 700 "$D"; ')


class LeaseHeld(LaghilError):
    """Another controller holds the lab's lease."""

    def __init__(self, message, holder=None):
        super().__init__(message)
        self.holder = holder


class LeaseError(LaghilError):
    pass


@dataclass(frozen=True)
class Holder:
    controller: str
    pid: int
    run: str
    since: int          # node clock, seconds
    expires: int        # node clock, seconds
    lab: str = ""

    def describe(self, now=None):
        left = "" if now is None else (f", {self.expires - now} s left" if self.expires > now
                                       else f", expired {now - self.expires} s ago")
        return (f"controller {self.controller} pid {self.pid} run {self.run} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(self.since))} UTC{left}")


def pid_alive(pid):
    """Does process ``pid`` run on this machine?"""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def check_run_id(run_id):
    if not re.fullmatch(r"[0-9a-f]{6,32}", str(run_id)):
        raise LeaseError(f"run id {run_id!r}: 6-32 lower-case hex digits")
    return run_id


def lease_file_sh(lab_name):
    """Shell text: the lease folder checked (made) and ``f`` set to the lab's
    lease file in it; use as ``{lease_file_sh(lab)} ...$f...``."""
    return f"{LEASE_DIR_SH}f=\"$D\"/lease-{check_name(lab_name, 'lab name')}.json; "


def lease_command(lab_name, holder_json, run_id, ttl, force=False):
    check_run_id(run_id)
    """The node-side acquire/renew, one round trip: under ``flock`` on the node,
    take the lease if it is free, expired or already ours (``force``: whatever
    it is); replace the file atomically. Prints ``OK <now>`` or ``HELD <now>
    <json>``, and ``PREV <json>`` for a lease it replaced (not ours)."""
    f = lease_file_sh(lab_name)
    ttl = int(ttl)
    h = holder_json.replace("'", "")
    return (
        f"{f}exec 9>>\"$f.lock\" || exit 5; flock -w 5 9 || {{ echo NOLOCK; exit 4; }}; "
        "now=$(date +%s); since=$now; "
        "if [ -s \"$f\" ]; then "
        "  run=$(sed -n 's/.*\"run\": *\"\\([^\"]*\\)\".*/\\1/p' \"$f\"); "
        "  exp=$(sed -n 's/.*\"expires\": *\\([0-9]*\\).*/\\1/p' \"$f\"); "
        f"  if [ \"$run\" = {run_id} ]; then "
        "    since=$(sed -n 's/.*\"since\": *\\([0-9]*\\).*/\\1/p' \"$f\"); "
        f"  elif [ \"${{exp:-0}}\" -gt \"$now\" ] && [ {1 if force else 0} = 0 ]; then "
        "    echo \"HELD $now $(cat \"$f\")\"; exit 3; "
        "  else echo \"PREV $(cat \"$f\")\"; fi; "
        "fi; "
        f"printf '%s\\n' '{h}' | sed \"s/@SINCE@/$since/; s/@EXPIRES@/$((now + {ttl}))/\" "
        "> \"$f.tmp\" && mv -f -T \"$f.tmp\" \"$f\" && echo \"OK $now\"")


def release_command(lab_name, run_id):
    """Remove the lease if it is ours (a lease someone else took stays)."""
    check_run_id(run_id)
    f = lease_file_sh(lab_name)
    return (f"{f}exec 9>>\"$f.lock\" || exit 0; flock -w 5 9 || exit 0; "
            f"grep -q '\"run\": *\"{run_id}\"' \"$f\" 2>/dev/null && rm -f \"$f\"; true")


@parser('the lease file')
def parse_holder(text):
    """A lease file's JSON -> Holder (pure); LeaseError naming what is wrong."""
    try:
        d = json.loads(text)
        return Holder(str(d["controller"]), int(d["pid"]), str(d["run"]), int(d["since"]),
                      int(d["expires"]), str(d.get("lab", "")))
    except (ValueError, KeyError, TypeError) as e:
        raise LeaseError(f"lease file is not a laghil lease ({type(e).__name__}: {e}): "
                         f"{text[:200]!r}") from None


@parser('the lease command')
def parse_lease_reply(text):
    """(status, node_now, holder, previous) from :func:`lease_command`'s output."""
    status, now, holder, prev = None, None, None, None
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "OK":
            status, now = "ok", int(rest.split()[0])
        elif word == "HELD":
            n, _, js = rest.partition(" ")
            status, now, holder = "held", int(n), parse_holder(js)
        elif word == "PREV":
            try:
                prev = parse_holder(rest)
            except LeaseError:
                prev = None
        elif word == "NOLOCK":
            status = "nolock"
        elif word == "LEASEDIR":
            raise LeaseError(f"the lease folder {rest} (refused: nothing written)")
    if status is None:
        raise LeaseError(f"no answer from the lease command: {text[:200]!r}")
    return status, now, holder, prev


class Lease:
    """The lab's lease on each of ``nodes`` ({name: session}); ``acquire()``,
    then ``start_renewing()``; ``release()`` at the end."""

    def __init__(self, lab_name, sessions, ttl=DEFAULT_TTL_S, run_id=None, say=print):
        if ttl < 3:
            raise LeaseError(f"lease ttl {ttl} s: at least 3 s")
        self.lab_name = lab_name
        self.sessions = dict(sessions)
        self.ttl = float(ttl)
        self.run_id = check_run_id(run_id or uuid.uuid4().hex[:12])
        # LAGHIL_CONTROLLER names this controller (default: the host name), e.g.
        # a CI runner's name when several share a machine
        self.controller = re.sub(r"[^A-Za-z0-9._-]", "_", os.environ.get("LAGHIL_CONTROLLER")
                                 or socket.gethostname())
        self.pid = os.getpid()
        self.say = say
        self.held = []
        self.broken = []            # leases a --force replaced: [(node, Holder)]
        self._stop = threading.Event()
        self._thread = None
        self.renew_failures = []

    def _holder_json(self):
        return json.dumps({"lab": self.lab_name, "controller": self.controller, "pid": self.pid,
                           "run": self.run_id, "since": "@SINCE@", "expires": "@EXPIRES@"}
                          ).replace('"@SINCE@"', "@SINCE@").replace('"@EXPIRES@"', "@EXPIRES@")

    def _take(self, name, force=False):
        r = self.sessions[name].run(lease_command(self.lab_name, self._holder_json(), self.run_id,
                                                  self.ttl, force), check=False, timeout=20)
        status, now, holder, prev = parse_lease_reply(r.stdout)
        if status == "held" and not force and holder.controller == self.controller \
                and not pid_alive(holder.pid):
            # this controller's own run, killed (its pid is gone): no need to
            # wait for its lease to expire
            self.say(f"lease of lab {self.lab_name} on {name}: its holder, pid {holder.pid} "
                     f"on this controller ({self.controller}), no longer runs; taking it over")
            return self._take(name, force=True)
        if status == "held":
            raise LeaseHeld(f"lab {self.lab_name!r} is leased on {name} by "
                            f"{holder.describe(now)}; wait for it, or break it with "
                            f"`laghil lab unlock --lab {self.lab_name} --force`", holder)
        if status != "ok":
            raise LeaseError(f"{name}: lease of lab {self.lab_name!r}: the node's flock on "
                             f"its lease file's .lock did not answer in 5 s")
        if prev is not None and prev.run != self.run_id:
            self.broken.append((name, prev))
        return now

    def acquire(self, force=False):
        """Take the lease on every node (sorted order); refused on one, the ones
        taken are given back and LeaseHeld names the holder."""
        try:
            for name in sorted(self.sessions):
                self._take(name, force)
                self.held.append(name)
        except BaseException:
            self.release()
            raise
        for name, prev in self.broken:
            self.say(f"lease of lab {self.lab_name} on {name}: replaced "
                     f"{'a broken' if force else 'an expired'} lease of {prev.describe()}")
        return self

    def renew(self):
        for name in self.held:
            self._take(name)

    def start_renewing(self):
        """Renew every ttl/3 in a daemon thread until :meth:`release`."""
        def loop():
            while not self._stop.wait(self.ttl / 3):
                try:
                    self.renew()
                except LaghilError as e:
                    self.renew_failures.append(str(e))
        self._thread = threading.Thread(target=loop, name=f"lease-{self.lab_name}", daemon=True)
        self._thread.start()
        return self

    def release(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for name in list(self.held):
            try:
                self.sessions[name].run(release_command(self.lab_name, self.run_id), check=False,
                                        timeout=20)
            except LaghilError:
                pass        # it expires by itself
            self.held.remove(name)
        for sess in self.sessions.values():
            close = getattr(sess, "close", None)
            if close is not None:
                close()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def read_leases(lab_name, sessions):
    """{node: (Holder or None, node_now)} (a lease file nobody holds: None)."""
    out = {}
    for name in sorted(sessions):
        f = lease_file_sh(lab_name)
        r = sessions[name].run(f"{f}date +%s; cat \"$f\" 2>/dev/null; true", timeout=20)
        now_s, _, body = r.stdout.partition("\n")
        out[name] = (parse_holder(body) if body.strip() else None, int(now_s.strip()))
    return out


def break_leases(lab_name, sessions):
    """Remove the lab's lease files; [(node, Holder)] of what was there."""
    found = read_leases(lab_name, sessions)
    for name in sorted(sessions):
        f = lease_file_sh(lab_name)
        sessions[name].run(f"{f}exec 9>>\"$f.lock\"; flock -w 5 9; rm -f \"$f\"; true",
                           timeout=20)
    return [(n, h) for n, (h, _) in found.items() if h is not None]
