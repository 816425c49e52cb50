"""The agents on the nodes (probe_agent.py, rdma_agent.py, and the modules
beside them: flowstats.py, nodeops.py, verbs.py): uploaded into each SSH
session's private folder, their sha256 checked on the node before every use, so what runs as root is
what this controller sent."""

import hashlib
import threading
from pathlib import Path

from ..errors import LaghilError
from ..names import q
from ..parsing import parser

AGENT_DIR = Path(__file__).parent / "agent"
AGENT_FILES = ("probe_agent.py", "rdma_agent.py", "flowstats.py", "nodeops.py",
               "verbs.py")        # uploaded together

_upload_lock = threading.Lock()


class ProbeError(LaghilError):
    """The probe could not start, or an agent failed; names the node and the cause."""


def agent_sources():
    """({file name: bytes} of the agents and their shared reduction module, a
    short sha256 over all of them)."""
    files = {name: (AGENT_DIR / name).read_bytes() for name in AGENT_FILES}
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name])
    return files, h.hexdigest()[:12]


def ensure_agent(node, entry="probe_agent.py"):
    """The agents in ``node``'s session's private folder (SshSession.workdir:
    mktemp -d, 0700, a name nobody could choose before), uploaded once per
    session and their sha256 checked on the node at every use (one round
    trip): what runs as root is what this controller sent. A node that was
    power cycled (a PDU test) or rebooted has lost the folder: a new one, a new
    upload. Returns the remote path of ``entry``."""
    files, digest = agent_sources()
    want = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    def hashes(d):
        cmd = f"cd {q(d)} 2>/dev/null && sha256sum -- " + " ".join(q(n) for n in sorted(files))
        return parse_sha256sum(node.run(cmd, check=False).stdout)
    with _upload_lock:
        d = node.path(f"agent-{digest}")
        if hashes(d) != want:
            # not there (first use, or the node lost its folder), or not as sent
            d = node.path(f"agent-{digest}", verify=True)
            node.run(f"rm -rf -- {q(d)} && mkdir -m 700 -- {q(d)}")
            for name, data in files.items():
                node.session.upload(data, f"{d}/{name}", 0o755)
            got = hashes(d)
            if got != want:
                bad = sorted(n for n in want if got.get(n) != want[n])
                raise ProbeError(f"{node.name}: the agents uploaded to {d} do not hash as "
                                 f"sent ({', '.join(bad)}): not run")
    return f"{d}/{entry}"


@parser("sha256sum")
def parse_sha256sum(text):
    """``sha256sum`` output -> {file name: hex digest} (text mode lines
    ``<hex>  <name>``, binary ``<hex> *<name>``)."""
    out = {}
    for line in text.splitlines():
        digest, sep, name = line.partition(" ")
        if sep and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            out[name[1:] if name[:1] in (" ", "*") else name] = digest
    return out
