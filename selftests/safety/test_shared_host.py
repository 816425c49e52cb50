"""A lab host is shared: another user of it must not get laghil (root) to run,
read or overwrite a file of theirs. Every name laghil used before its private
folders (issue 20) is planted by an unprivileged user of the node (``nobody``):
the agents' folder with a probe agent that would leave a mark if run, the
lease file (a holder that would block the run) and its temporary (a symbolic
link to a file of the planter's). A probe on the node's loopback and a lease
renewal must neither run, read nor write any of them; what laghil uses
instead is a folder of its own, mode 0700, at a name nobody could choose."""

import secrets

import pytest

from laghil.lease import lease_file_sh
from laghil.measure.agents import agent_sources
from laghil.measure.probe import Probe
from laghil.names import q
from laghil.pairs import needs_of
from laghil.undo_actions import WORKDIR_RE
from pytest_laghil.lag import pick_path

pytestmark = [pytest.mark.ci, pytest.mark.requires("bonding", count=2)]

NOBODY = 65534
PLANTER = f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups"


def _as_nobody(node, script):
    node.run(f"{PLANTER} sh -c {q(script)}")


def _facts(node, paths):
    """{path: (owner uid, type, sha256 or link target)} of ``paths`` (None: absent)."""
    out = {}
    for p in paths:
        r = node.run(f"if [ -L {q(p)} ]; then echo $(stat -c %u {q(p)}) link $(readlink {q(p)}); "
                     f"elif [ -e {q(p)} ]; then echo $(stat -c %u {q(p)}) file "
                     f"$(sha256sum < {q(p)} | cut -d' ' -f1); fi", check=False)
        out[p] = tuple(r.stdout.split()) or None
    return out


def test_files_planted_at_laghils_old_names_are_not_run_read_or_written(request, lab, lab_rt,
                                                                      node, defer):
    path = pick_path(request, lab, needs_of("bond", None))
    h = node(path.a)
    if h.run("command -v setpriv", check=False).rc:
        pytest.skip(f"{h.name}: no setpriv to plant files as an unprivileged user")
    tok = secrets.token_hex(4)
    _files, digest = agent_sources()
    old_agents = f"/tmp/laghil-agent-{digest}"
    mark = f"/tmp/laghil-planted-{tok}.ran"
    victim = f"/tmp/laghil-victim-{tok}"
    old_lease = f"/var/tmp/laghil-lease-{lab.name}.json"
    planted = [f"{old_agents}/{n}" for n in ("probe_agent.py", "rdma_agent.py", "flowstats.py")]
    planted += [old_lease, f"{old_lease}.tmp", f"{old_lease}.lock", victim]
    # their removal first (as root: the planter's files are not laghil's, the test's are)
    defer(h.run, "rm -rf -- " + " ".join(q(p) for p in [old_agents, mark, *planted]), check=False)
    already = [p for p in [old_agents, old_lease, f"{old_lease}.tmp"]
               if h.run(f"[ -e {q(p)} ] || [ -L {q(p)} ]", check=False).rc == 0]
    assert not already, f"{h.name}: {already} exist before the test: not planting over them"
    evil = f"import os\nopen({mark!r}, 'w').write(str(os.getuid()))\n"
    holder = ('{"lab": "%s", "controller": "planter", "pid": 1, "run": "e0e0e0", '
              '"since": 1, "expires": 4102444800}' % lab.name)
    _as_nobody(h, f"mkdir -p {q(old_agents)} && "
                  + " && ".join(f"printf %s {q(evil)} > {q(p)}" for p in planted[:3])
                  + f" && printf victim > {q(victim)} && printf %s {q(holder)} > {q(old_lease)}"
                  + f" && : > {q(old_lease)}.lock && ln -s {q(victim)} {q(old_lease)}.tmp")
    before = _facts(h, planted)
    assert all(v is not None and v[0] == str(NOBODY) for v in before.values()), before

    lab_rt.lease_held.renew()                       # the lease written again, now
    probe = Probe(h, h, "127.0.0.1", flows=1, rate_pps=200, duration_s=1.0, base_port=47900)
    defer(probe.stop_undo())
    res = probe.run()                               # the agents uploaded and run, now
    after = _facts(h, planted)
    ran = h.run(f"cat {q(mark)} 2>/dev/null", check=False).stdout.strip()
    assert not ran, f"{h.name}: the planted agent ran (as uid {ran})"
    changed = {p: (before[p], after[p]) for p in planted if before[p] != after[p]}
    assert not changed, f"{h.name}: planted files changed by the run: {changed}"
    assert res.flows[0]["rx_count"] > 0, f"the probe on {h.name}'s loopback delivered nothing"

    wd = h.workdir()
    st = h.run(f"stat -c '%a %u %F' {q(wd)}").stdout.split(maxsplit=2)
    assert WORKDIR_RE.fullmatch(wd) and st[0] == "700" and st[1] != str(NOBODY), (
        f"{h.name}: laghil's private folder {wd}: mode {st[0]} owner {st[1]}")
    lease = h.run(f"{lease_file_sh(lab.name)}stat -c '%a %U' \"$D\"; cat \"$f\"").stdout
    mode, _, rest = lease.partition("\n")
    assert mode.split()[0] == "700" and '"controller": "planter"' not in rest, (
        f"{h.name}: the lease folder is {mode!r} and holds {rest[:200]!r}")
