"""A lab host reached as a non-root account with sudo: a command that times out
is ended, as root, with everything it started, and the error says how. The
command runs as root through sudo; a kill sent as the login user could not
reach it (issue 20: the timeout's kill used to be sent without sudo, and the
error said the process group was killed while the command ran on).

The rack's guests have such an account (``laghil``, sudo without a password,
the run's key; laghil/vlab/stage2.sh), as lab hosts have; the lab entry is the
node's own with that user and ``sudo``."""

import dataclasses
import secrets
import time

import pytest

from laghil.errors import CommandTimeout
from laghil.pairs import needs_of
from laghil.transport.framing import KILL_AFTER_S
from laghil.transport.ssh import SshSession
from pytest_laghil.lag import pick_path

pytestmark = [pytest.mark.ci, pytest.mark.requires("bonding", count=2)]

ACCOUNT = "laghil"
TIMEOUT_S = 2.0


@pytest.mark.parametrize("mode", ["shell", "exec"])
def test_a_timed_out_sudo_command_is_gone_from_the_process_table(request, lab, node, defer,
                                                                  mode):
    path = pick_path(request, lab, needs_of("bond", None))
    h = node(path.a)
    if h.run(f"command -v sudo >/dev/null && id -u {ACCOUNT}", check=False).rc:
        pytest.skip(f"{h.name}: no account {ACCOUNT!r} with sudo (the virtual rack's guests "
                    "have one; a lab host needs one for this test)")
    # a process no one else has: sleep for 600.<random> s, SIGTERM ignored
    mark = f"600.{secrets.randbelow(10**6):06d}"
    pattern = f"sleep {mark}"
    defer(h.run, f"pkill -KILL -f {pattern!r} 2>/dev/null; true", check=False)
    target = dataclasses.replace(h.session.target, user=ACCOUNT, sudo=True)
    session = SshSession(target, h.session.log, mode=mode)
    defer(session.close)
    assert session.run("id -u", sudo=False).stdout.strip() != "0", (
        f"{h.name}: {ACCOUNT} is root; the test needs a non-root account")

    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as err:
        session.run(f"id -u; trap '' TERM; sleep {mark}", timeout=TIMEOUT_S)
    took = time.monotonic() - t0
    out = err.value.result.stdout.strip()
    assert out == "0", f"{h.name}: the command did not run as root through sudo (id -u: {out!r})"
    msg = str(err.value)
    assert "through sudo" in msg, f"the error does not say what ended the command: {msg}"

    # the command ignores SIGTERM: SIGKILL follows KILL_AFTER_S later, as root
    deadline = time.monotonic() + KILL_AFTER_S + 5.0
    while True:
        left = h.run(f"pgrep -a -f {pattern!r}", check=False).stdout.strip()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, (f"{h.name} ({mode} mode): {left!r} still runs "
                      f"{time.monotonic() - t0:.1f} s after a {TIMEOUT_S:g} s timeout "
                      f"(the error said: {msg})")
    assert took < TIMEOUT_S + KILL_AFTER_S + session.timeout_grace + 3.0, (
        f"the timeout took {took:.1f} s to be reported")
