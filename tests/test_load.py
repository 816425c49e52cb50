"""Background load for failover trials (laghil.measure.load): the usable
capacity per mode, an even split of the flows by the hash oracle, bounded
commands, its undo registered first, and only its own processes ended."""

import pytest

from laghil.measure.load import BackgroundLoad, LoadError, load_plan, parse_pids, usable_capacity

PACKET = {"src_mac": "52:54:00:00:01:01", "dst_mac": "52:54:00:00:02:01",
          "src_ip": "192.168.201.1", "dst_ip": "192.168.201.2"}
RATES = {"eth1": 8e6, "eth2": 8e6}


def test_usable_capacity_is_what_survives_one_member():
    assert usable_capacity(RATES)[0] == 8e6, "a pair: one member's rate"
    assert usable_capacity({"a": 8e6, "b": 8e6, "c": 4e6})[0] == 8e6, "2 left x the lowest"
    assert usable_capacity({"a": 8e6})[0] == 8e6


def test_plan_leaves_room_for_the_probe_and_splits_evenly_where_the_hash_is_known():
    from laghil.lag_hash import member_index
    probe = 4 * 1000 * 106 * 8                  # the failover probe: 4 x 1000 pkt/s x 106 B
    plan = load_plan("hash", RATES, 0.9, "layer3+4", PACKET, probe_bps=probe)
    assert plan.rate_bps == pytest.approx(0.9 * 8e6 - probe) and plan.flows == 4
    assert plan.rate_bps + probe <= 0.9 * 8e6 + 1, "load and probe fit the survivor at 90%"
    per = [member_index("layer3+4", 2, sport=c, dport=5401 + i, **PACKET)
           for i, c in enumerate(plan.client_ports)]
    assert sorted(per) == [0, 0, 1, 1], "two flows per member"
    assert "split evenly by the hash oracle" in plan.describe()
    assert "with one member out" in plan.describe()
    teamd = load_plan("hash", RATES, 0.9, None, PACKET)
    assert teamd.client_ports is None and "split by the LAG" in teamd.describe()
    with pytest.raises(LoadError, match="leaves nothing beside the probe"):
        load_plan("one_active", RATES, 0.1, probe_bps=probe)


def test_pids():
    assert parse_pids("123\n456\n") == [123, 456]
    with pytest.raises(LoadError):
        parse_pids("123\nbash: iperf3: not found\n")


class Node:
    def __init__(self, name, pids="", counters=None):
        self.name, self.pids, self.cmds = name, pids, []
        self.counters = counters or []

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        out = ""
        if "echo $!" in cmd:
            out = self.pids
        elif cmd.startswith("date +%s.%N"):
            out = self.counters.pop(0)
        return type("R", (), {"stdout": out, "rc": 0})()

    def workdir(self, verify=False):
        return f"/tmp/laghil.{self.name:0>10}"

    def path(self, name, verify=False):
        return f"{self.workdir()}/{name}"


def _counters(t, tx):
    lines = [str(t)]
    for m in ("eth1", "eth2"):
        lines += [f"{m} 0", f"{m} {tx}", f"{m} 0", f"{m} 0"]
    return "\n".join(lines) + "\n"


def test_background_load_is_bounded_and_ends_only_its_own(monkeypatch):
    monkeypatch.setattr("laghil.measure.load.time.sleep", lambda s: None)
    plan = load_plan("hash", {"eth1": 16e6, "eth2": 16e6}, 0.9, "layer3+4", PACKET)
    rx = Node("h2", pids="11\n12\n13\n14\n")
    tx = Node("h1", pids="21\n22\n23\n24\n",
              counters=[_counters(100.0, 0), _counters(110.0, 9_000_000)])
    undo = []
    load = BackgroundLoad(tx, rx, "192.168.201.2", plan, 60, ["eth1", "eth2"],
                          defer=lambda fn: undo.append((fn, len(rx.cmds) + len(tx.cmds))))
    load.start()
    assert undo and undo[0][1] == 0, "the stop is registered before anything starts"
    assert rx.cmds[0].count("timeout 90 iperf3 -s -1") == 4
    assert tx.cmds[0].count("timeout 90 iperf3 -c 192.168.201.2 -u -b 3600000") == 4
    assert "--cport" in tx.cmds[0] and "-t 60" in tx.cmds[0]
    res = load.stop()
    assert "kill 21 22 23 24" in " ".join(tx.cmds) and "kill 11 12 13 14" in " ".join(rx.cmds)
    assert res["member_bps"]["eth1"] == pytest.approx(7.2e6)
    n = len(tx.cmds) + len(rx.cmds)
    assert load.stop() is res and len(tx.cmds) + len(rx.cmds) == n, "idempotent"
    with pytest.raises(LoadError):
        BackgroundLoad(tx, rx, "x", plan, 3600, ["eth1"]).start()
