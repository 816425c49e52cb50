"""No file laghil writes, reads back or runs on a node lives at a name someone
else could have chosen (issue 20): every one is in the session's private folder
(SshSession.workdir: mktemp -d, 0700), the lease in a folder of the account's
own. Checked on the sources (no /tmp or /var/tmp name in any string) and by
running the folder's shell text with this machine's /bin/sh."""

import io
import os
import subprocess
import tokenize
from pathlib import Path

import pytest

from laghil.node import private_path
from laghil.transport.workdir import MAKE_WORKDIR, WORKDIR_RE

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("/tmp", "/var/tmp", "/dev/shm")
# where such a name is the point: the folder's own mktemp template (a random
# name, made exclusively), the local namespaces' equivalent, the guest's mounts
ALLOWED = {"laghil/transport/workdir.py": "MAKE_WORKDIR", "laghil/measure/localns.py": "workdir",
           "laghil/vlab/stage2.sh": "mount"}


def _strings(path):
    """(line, text) of every string literal of a Python file; shell: every line."""
    text = path.read_text()
    if path.suffix != ".py":
        return [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if not ln.lstrip().startswith("#")]
    return [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.STRING or t.type == getattr(tokenize, "FSTRING_MIDDLE", -1)]


def test_no_source_names_a_file_in_a_shared_folder():
    found = []
    for top in ("laghil", "fixtures", "suites"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".py", ".sh") or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            if rel == "selftests/safety/test_shared_host.py":
                continue            # plants files at the old names, on purpose
            for line, s in _strings(path):
                if any(f"{d}/" in s for d in SHARED) and rel not in ALLOWED:
                    found.append(f"{rel}:{line}: {s.strip()[:80]}")
    assert not found, ("files at names anyone could choose (use node.path(), the session's "
                       "private folder):\n" + "\n".join(found))


def _make(env):
    r = subprocess.run(["sh", "-c", MAKE_WORKDIR], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_private_folder_is_new_0700_and_in_the_users_runtime_dir_when_it_has_one(tmp_path):
    env = {"PATH": os.environ["PATH"]}
    made = [_make(env), _make(env)]
    try:
        assert made[0] != made[1], "two sessions got one folder"
        for d in made:
            assert WORKDIR_RE.fullmatch(d) and d.startswith("/tmp/laghil."), d
            st = os.stat(d, follow_symlinks=False)
            assert oct(st.st_mode & 0o777) == "0o700" and st.st_uid == os.geteuid()
        run = tmp_path / "run"
        run.mkdir(mode=0o700)
        inside = _make(dict(env, XDG_RUNTIME_DIR=str(run)))
        assert inside.startswith(f"{run}/laghil.") and WORKDIR_RE.fullmatch(inside)
        link = tmp_path / "link"
        link.symlink_to(run)           # a runtime dir that is a link: not used
        made.append(_make(dict(env, XDG_RUNTIME_DIR=str(link))))
        assert made[-1].startswith("/tmp/laghil.")
    finally:
        for d in made:
            os.rmdir(d)


def test_a_file_name_in_the_private_folder_is_one_plain_component():
    class N:
        name = "h1"

        def workdir(self, verify=False):
            return "/tmp/laghil.0123456789"
    assert private_path(N(), "agent-ab12.json") == "/tmp/laghil.0123456789/agent-ab12.json"
    for bad in ("", ".", "..", "../x", "a/b", "a b", "x;rm", "$(id)", "a\n"):
        with pytest.raises(ValueError, match="h1: not a file name"):
            private_path(N(), bad)
    assert not WORKDIR_RE.fullmatch("/tmp/laghil.0123456789\n")
    for bad in ("/tmp/x/../laghil.0123456789", "/tmp/./laghil.0123456789", "tmp/laghil.0123456789",
                "/tmp/laghil.012345678", "/tmp/laghil.0123456789/x", "/tmp/laghil.01234 6789"):
        assert not WORKDIR_RE.fullmatch(bad), bad
    assert WORKDIR_RE.fullmatch("/run/user/1000/laghil.aB3dE5gH7j")
