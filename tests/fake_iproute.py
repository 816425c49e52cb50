"""A fake node that simulates just enough of iproute2, bonding and teamd for the
drivers' unit tests: a netdev table that `ip -j addr show`, the preflight read
(`ip -d -j link show; ip -j addr show; $SSH_CONNECTION`) and the delete/restore
commands read and change. Every command is recorded in ``cmds``."""

import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

from laghil.drivers.netdev import SEP as PREFLIGHT_SEP
from laghil.errors import CommandFailed

CAP = Path(__file__).parent / "data" / "captures"


def cap(name):
    return (CAP / name).read_text()


class FakeNode:
    """Records every command; simulates just enough of iproute2/teamd: a netdev
    table that `ip -j addr show` reads and `ip link set` / teamd change."""

    def __init__(self, name="h1", ports=("eth1", "eth2"), teamd_running=None,
                 management=("eth0", "10.0.2.15")):
        self.name = name
        self.cmds = []
        # the session's management interface and local address ($SSH_CONNECTION)
        self.management = management
        self.links = {p: {"ifname": p, "address": f"52:54:00:00:01:0{i + 1}", "mtu": 1500,
                          "up": True, "master": None,
                          "addrs": [f"10.0.{i}.1/24"] if i == 0 else []}
                      for i, p in enumerate(ports)}
        self.teamd = set(teamd_running or ())
        self.fail = None            # substring of a command that should fail

    def _json(self, ifname):
        ln = self.links[ifname]
        return json.dumps([{"ifname": ifname, "address": ln["address"], "mtu": ln["mtu"],
                            "flags": ["BROADCAST", "UP"] if ln["up"] else ["BROADCAST"],
                            **({"master": ln["master"]} if ln["master"] else {}),
                            "addr_info": [{"local": a.split("/")[0],
                                           "prefixlen": int(a.split("/")[1]), "scope": "global"}
                                          for a in ln["addrs"]]}])

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        out, rc = "", 0
        if self.fail and self.fail in cmd:
            rc = 1
        elif m := re.fullmatch(r"ip -j addr show dev (\S+)", cmd):
            out = self._json(m.group(1))
        elif cmd.startswith("ip -d -j link show; echo " + PREFLIGHT_SEP):
            out = self._preflight()
        elif m := re.fullmatch(r"if \[ -e /sys/class/net/(\S+) \]; then ip link del dev \S+; fi",
                               cmd):
            self._delete(m.group(1))
        elif m := re.fullmatch(r"test -e /sys/class/net/(\S+)", cmd):
            rc = 0 if m.group(1) in self.links else 1
        elif m := re.fullmatch(r"teamdctl (\S+) state dump", cmd):
            out = cap("h1-teamdctl-team0-ab.json")
        elif cmd.startswith("if teamd -e"):
            team = shlex.split(cmd)[4]
            if team in self.teamd:
                self.teamd.discard(team)
                self.links.pop(team, None)
                for ln in self.links.values():     # teamd leaves its ports down
                    if ln["master"] == team:
                        ln["master"], ln["up"] = None, False
        else:
            for part in cmd.split(" && "):
                self._apply(shlex.split(part))
        res = SimpleNamespace(node=self.name, command=cmd, rc=rc, stdout=out, stderr="",
                              duration_s=0.0)
        if check and rc:
            raise CommandFailed(self.name, res)
        return res

    def _preflight(self):
        mif, maddr = self.management
        links = [{"ifname": mif, "address": "52:54:00:00:00:01", "flags": ["UP"]}]
        addrs = [{"ifname": mif, "addr_info": [{"local": maddr, "prefixlen": 24,
                                                "scope": "global"}]}]
        for name, ln in self.links.items():
            d = {"ifname": name, "address": ln["address"]}
            if ln["master"]:
                d["master"] = ln["master"]
            if ln.get("kind"):
                d["linkinfo"] = {"info_kind": ln["kind"]}
            if ln.get("lower"):
                d["link"] = ln["lower"]
            links.append(d)
            addrs.append(json.loads(self._json(name))[0])
        ssh = f"10.0.2.2 50022 {maddr} 22"
        return (f"{json.dumps(links)}\n{PREFLIGHT_SEP}\n{json.dumps(addrs)}\n{PREFLIGHT_SEP}\n"
                f"{ssh}\n")

    def _delete(self, name):
        if name not in self.links:
            return
        self.links.pop(name)
        for ln in self.links.values():
            if ln["master"] == name:
                ln["master"] = None

    def _apply(self, a):
        if a[:4] == ["ip", "link", "set", "dev"]:
            ln = self.links[a[4]]
            if a[5] in ("up", "down"):
                ln["up"] = a[5] == "up"
            elif a[5] == "nomaster":
                ln["master"] = None
            elif a[5] == "address":
                ln["address"] = a[6]
            elif a[5] == "mtu":
                ln["mtu"] = int(a[6])
            elif a[5] == "master":
                assert not ln["up"] or self.links[a[6]].get("kind") == "bridge", \
                    f"{a[4]} must be down to be enslaved"
                ln["master"] = a[6]
        elif a[0] == "teamd" and "-d" in a:
            conf = json.loads(a[a.index("-c") + 1])
            team = a[a.index("-t") + 1]
            assert conf["device"] == team
            for p in conf["ports"]:
                assert not self.links[p]["up"], f"teamd: {p} must be down to become a port"
                self.links[p]["master"] = team
                if conf["runner"]["name"] == "activebackup":
                    self.links[p]["address"] = "52:54:00:00:01:01"
            self.links[team] = {"ifname": team, "address": "52:54:00:00:01:01", "mtu": 1500,
                                "up": False, "master": None, "addrs": []}
            self.teamd.add(team)
        elif a[:4] == ["ip", "link", "add", "name"]:
            self.links[a[4]] = {"ifname": a[4], "address": "52:54:00:00:0b:01", "mtu": 1500,
                                "up": False, "master": None, "addrs": [], "kind": a[6]}
        elif a[:3] == ["ip", "addr", "add"]:
            self.links[a[5]]["addrs"].append(a[3])
        elif a[:3] == ["ip", "addr", "del"]:
            self.links[a[5]]["addrs"].remove(a[3])


def preflight_text(ports, management=("eth0", "10.0.2.15")):
    """What the preflight read (laghil.drivers.netdev) prints on a node whose
    ``ports`` are plain netdevs and whose SSH session runs over ``management``."""
    mif, maddr = management
    links = [{"ifname": n, "address": f"52:54:00:00:09:{i:02x}"}
             for i, n in enumerate([mif, *ports])]
    addrs = [{"ifname": mif, "addr_info": [{"local": maddr, "prefixlen": 24,
                                            "scope": "global"}]}]
    return (f"{json.dumps(links)}\n{PREFLIGHT_SEP}\n{json.dumps(addrs)}\n{PREFLIGHT_SEP}\n"
            f"10.0.2.2 50022 {maddr} 22\n")


def is_preflight(cmd):
    return cmd.startswith("ip -d -j link show; echo " + PREFLIGHT_SEP)
