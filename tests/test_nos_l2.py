"""The NOS drivers' L2 domain and member operations (issue 23): what the
via-switch suites call beyond a LAG's create and a port's shutdown. On each of
EOS, NX-OS and Onyx, over a CLI that answers each show command with others'
real or documented output (tests/data/samples/README.md): the switch read
first and what laghil did not make refused before any line is sent, the undo
registered before the first line (and journaled: a later process can replay
it), every undo idempotent. Over an SSH session: tests/test_nos_fakenos.py."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from laghil.drivers.switch import SwitchError, SwitchRefused
from laghil.drivers.switch.eos import EosSwitch, parse_show_vlan
from laghil.drivers.switch.nos import iface_key
from laghil.drivers.switch.nxos import NxosSwitch
from laghil.drivers.switch.onyx import OnyxSwitch
from laghil.drivers.switch.onyx import parse_show_vlan as parse_onyx_vlan
from laghil.journal import UndoRecord

SAMPLES = Path(__file__).parent / "data" / "samples"


def sample(name):
    return (SAMPLES / name).read_text()


# platform -> its show commands' samples, two free ports, a port that is in
# a VLAN other than 1 in the sample (None: the sample has none), an existing
# VLAN, and a LAG of the sample with one of its members
PLATFORMS = {
    "eos": dict(cls=EosSwitch, shows={
        "show vlan": "ntc-templates--arista_eos_show_vlan.raw",
        "show port-channel summary": "ntc-templates--arista_eos_show_port-channel_summary.raw"},
        free=["Ethernet60", "Ethernet61"], in_vlan=("Ethernet1", 10), vlan=20,
        lag=(2000, "Ethernet54/1"), iface="Port-Channel2000"),
    "nxos": dict(cls=NxosSwitch, shows={
        "show vlan": "ntc-templates--cisco_nxos_show_vlan.raw",
        "show port-channel summary | json": "cisco-docs--nxos_show_port-channel_summary.json"},
        free=["Ethernet1/1", "Ethernet1/2"], in_vlan=("Ethernet2/12", 20), vlan=40,
        lag=(47, "Ethernet1/47"), iface="port-channel47", more=["Ethernet1/48"]),
    "onyx": dict(cls=OnyxSwitch, shows={
        "show vlan | json-print": "ansible--onyx_vlan_show.json",
        "show interfaces port-channel summary | json-print": "ansible--onyx_port_channel_show.json"},
        free=["Eth1/1", "Eth1/2"], in_vlan=None, vlan=10, lag=(22, "Eth1/7"),
        iface="port-channel 22"),
}


class Cli:
    """A NOS CLI: each show command answered with its sample; config lines
    recorded (``refuse``: a line containing it gets the NOS's error)."""

    def __init__(self, shows, refuse=None):
        self.shows = {c: sample(f) for c, f in shows.items()}
        self.refuse, self.sent = refuse, []

    def send(self, command):
        self.sent.append(("show", command))
        return self.shows[command]

    def config(self, lines):
        self.sent.append(("config", list(lines)))
        if self.refuse and any(self.refuse in ln for ln in lines):
            return f"{lines[0]}\n% Invalid input detected at '^' marker.\n"
        return "\n".join(lines)

    def lines(self):
        return [ln for kind, lines in self.sent if kind == "config" for ln in lines]


def driver(platform, l2_vlan=3901, **cli):
    p = PLATFORMS[platform]
    ports = p["free"] + [p["lag"][1]] + ([p["in_vlan"][0]] if p["in_vlan"] else []) + \
        p.get("more", [])
    node = SimpleNamespace(name="sw9", session=None, spec=SimpleNamespace(
        ports={q: None for q in ports}, platform=platform, l2_vlan=l2_vlan))
    c = Cli(p["shows"], **cli)
    return p["cls"](node, channel=c), c, p


class Deferred(list):
    """A defer that records what was sent when each undo was registered."""

    def __init__(self, cli):
        super().__init__()
        self.cli, self.sent_before = cli, []

    def __call__(self, undo):
        self.append(undo)
        self.sent_before.append([k for k, _ in self.cli.sent])


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request):
    return request.param


# ---------------------------------------------------------------- parsers
def test_show_vlan_parsed_on_each_platforms_sample():
    eos = parse_show_vlan(sample("ntc-templates--arista_eos_show_vlan.raw"), "arista_eos")
    assert eos == {1: {"eth1"}, 10: {"eth1", "eth2"}, 20: set(), 30: set()}
    nx = parse_show_vlan(sample("ntc-templates--cisco_nxos_show_vlan.raw"), "cisco_nxos")
    assert sorted(nx) == [1, 10, 20, 30, 40, 50] and nx[20] == {"eth2/12"}
    assert len(nx[1]) == 57 and "eth1/33" not in nx[1], "wrapped port lines read, none invented"
    onyx = parse_onyx_vlan(sample("ansible--onyx_vlan_show.json"))
    assert sorted(onyx) == [1, 10, 20] and onyx[1] == {f"eth1/{i}" for i in range(1, 17)}
    with pytest.raises(SwitchError, match="not JSON"):
        parse_onyx_vlan('% Unrecognized command "show vlan".')


def test_one_key_per_interface_whatever_the_spelling():
    assert {iface_key(n) for n in ("Ethernet3", "Et3", "Eth3", "ethernet 3")} == {"eth3"}
    assert {iface_key(n) for n in ("Port-Channel12", "port-channel 12", "Po12")} == {"po12"}
    assert iface_key("Eth1/7") == iface_key("ethernet 1/7") == "eth1/7"


# ---------------------------------------------------------------- L2 domain
def test_l2_domain_reads_first_registers_its_undo_then_configures(platform):
    drv, cli, p = driver(platform)
    d = Deferred(cli)
    undo = drv.bridge_create("lgbr0", p["free"], defer=d)
    assert d == [undo] and set(d.sent_before[0]) == {"show"}, (
        f"config sent before the undo was registered: {d.sent_before}")
    lines = cli.lines()
    assert "vlan 3901" in lines
    for port in p["free"]:
        assert any(port.replace("Eth", "ethernet ").replace("etherneternet ", "Ethernet")
                   in ln and "access vlan 3901" in ln for ln in lines) or \
            f"interface {port}" in lines, f"{port} not made an access port of 3901: {lines}"
    rec = undo.records[0].to_json()
    assert rec["args"] == ["nos_l2_remove", [["3901"], p["free"]]], rec
    UndoRecord.from_json(rec)           # a journal can hold it and replay it
    n = len(cli.sent)
    undo()
    back = [ln for kind, ls in cli.sent[n:] if kind == "config" for ln in ls]
    assert "no vlan 3901" not in back, "the sample has no VLAN 3901: nothing to delete"
    assert any("switchport" in ln for ln in back), f"members back to default: {back}"


def test_tagged_domain_is_a_trunk_of_the_tests_vlans(platform):
    drv, cli, p = driver(platform)
    drv.bridge_create("lgbr0", p["free"][:1], defer=lambda u: None, vlans=[3100, 3200])
    lines = cli.lines()
    assert "vlan 3100" in lines and "vlan 3200" in lines
    assert any("mode trunk" in ln for ln in lines)
    assert any("3200" in ln and "allowed" in ln for ln in lines), lines


def test_l2_domain_refuses_what_is_not_laghils_before_any_line(platform):
    drv, cli, p = driver(platform)
    with pytest.raises(SwitchError, match=f"VLAN {p['vlan']} exists and laghil did not make it"):
        drv.bridge_create("lgbr0", p["free"], defer=lambda u: None, vlans=[p["vlan"]])
    if p["in_vlan"]:
        port, vid = p["in_vlan"]
        with pytest.raises(SwitchError, match=f"{port} is in VLAN {vid}"):
            drv.bridge_create("lgbr0", [port], defer=lambda u: None)
    with pytest.raises(SwitchError, match="not in the lab file"):
        drv.bridge_create("lgbr0", ["Ethernet99/9"], defer=lambda u: None)
    with pytest.raises(SwitchError, match="LAG lglag5 is not on the switch"):
        drv.bridge_create("lgbr0", ["lglag5"], defer=lambda u: None)
    nol2, cli2, _ = driver(platform, l2_vlan=None)
    with pytest.raises(SwitchError, match="needs the lab file's `l2_vlan`"):
        nol2.bridge_create("lgbr0", p["free"], defer=lambda u: None)
    assert cli.lines() == [] and cli2.lines() == [], "nothing configured"


def test_a_refused_l2_line_is_undone_at_once(platform):
    drv, cli, p = driver(platform, refuse="access vlan 3901")
    undone = []
    with pytest.raises(SwitchRefused, match="% Invalid input"):
        drv.bridge_create("lgbr0", p["free"], defer=undone.append)
    assert len(undone) == 1 and cli.sent[-1][0] == "config" and \
        not any("3901" in ln for ln in cli.sent[-1][1]), "the undo ran at once"


def test_a_lag_member_of_the_domain_is_its_port_channel(platform):
    drv, cli, p = driver(platform)
    number, _ = p["lag"]
    drv.bridge_create("lgbr0", [f"lglag{number}"], defer=lambda u: None)
    assert any(p["iface"] in ln for ln in cli.lines()), cli.lines()


# ---------------------------------------------------------------- members
def test_lag_member_out_and_back(platform):
    drv, cli, p = driver(platform)
    number, port = p["lag"]
    d = Deferred(cli)
    undo = drv.lag_member_remove(f"lglag{number}", port, defer=d)
    assert set(d.sent_before[0]) == {"show"}
    assert any("no channel-group" in ln for ln in cli.lines())
    mode = drv.lags()[number].mode          # the sample's: Onyx's port-channel 22 is static
    assert undo.records[0].to_json()["args"] == ["nos_channel_join",
                                                 [f"lglag{number}", port, mode]]
    n = len(cli.sent)
    undo()          # the sample still shows the port in the LAG: nothing to put back
    assert all(k == "show" for k, _ in cli.sent[n:])
    with pytest.raises(SwitchError, match=f"{p['free'][0]} is not in port-channel {number}"):
        drv.lag_member_remove(f"lglag{number}", p["free"][0], defer=lambda u: None)
    with pytest.raises(SwitchError, match="no port-channel 3 "):
        drv.lag_member_remove("lglag3", port, defer=lambda u: None)


def test_a_lag_with_a_port_outside_the_lab_is_not_laghils_to_change():
    """Its number may be a production port-channel's: no member out or in, no
    delete, refused before any line."""
    drv, cli, p = driver("nxos")
    drv.node.spec.ports.pop("Ethernet1/48")
    with pytest.raises(SwitchError, match="refusing to delete LAG lglag47: Ethernet1/48 in it "
                                          "are not ports of the lab file"):
        drv.lag_delete("lglag47", defer=lambda u: None)
    with pytest.raises(SwitchError, match="refusing to take a member out of LAG lglag47"):
        drv.lag_member_remove("lglag47", "Ethernet1/47", defer=lambda u: None)
    with pytest.raises(SwitchError, match="refusing to add a member to LAG lglag47"):
        drv.lag_member_add("lglag47", "Ethernet1/1", defer=lambda u: None)
    assert cli.lines() == []


def test_lag_member_add_refuses_a_port_of_another_lag(platform):
    drv, cli, p = driver(platform)
    number, port = p["lag"]
    with pytest.raises(SwitchError, match=f"it is in port-channel {number}"):
        drv.lag_member_add(f"lglag{number}", port, defer=lambda u: None)
    d = Deferred(cli)
    undo = drv.lag_member_add(f"lglag{number}", p["free"][0], defer=d)
    assert set(d.sent_before[0]) == {"show"}
    word = "active" if drv.lags()[number].mode == "lacp" else "on"
    assert any(f"channel-group {number} mode {word}" in ln for ln in cli.lines()), cli.lines()
    assert undo.records[0].to_json()["args"] == ["nos_channel_leave",
                                             [f"lglag{number}", p["free"][0]]]


def test_lag_delete_undo_rebuilds_it(platform):
    drv, cli, p = driver(platform)
    number, port = p["lag"]
    d = Deferred(cli)
    undo = drv.lag_delete(f"lglag{number}", defer=d)
    assert set(d.sent_before[0]) == {"show"}
    lines = cli.lines()
    assert any(f"no interface {p['iface']}".lower().replace(" ", "")
               == ln.lower().replace(" ", "") for ln in lines), lines
    name, ports, spec = undo.records[0].to_json()["args"][1]
    mode = drv.lags()[number].mode
    assert name == f"lglag{number}" and port in ports and spec == [mode, "none"]
    UndoRecord.from_json(undo.records[0].to_json())
    n = len(cli.sent)
    undo()          # still shown by the sample: the rebuild is idempotent
    assert all(k == "show" for k, _ in cli.sent[n:])
    # rebuilt where the LAG is gone: the LAG, then its L2 membership
    drv.lags = lambda: {}
    drv.nos_lag_rebuild(f"lglag{number}", ports, [mode, "access", "3901"])
    again = cli.sent[-1][1]
    word = "active" if mode == "lacp" else "on"
    assert any(f"channel-group {number} mode {word}" in ln for ln in again), again
    assert any("access vlan 3901" in ln for ln in again), again


def test_what_a_deleted_lag_left_is_read_back(platform):
    drv, cli, p = driver(platform)
    number, port = p["lag"]
    assert drv.left_behind(f"lglag{number}", [port]) == [f"port-channel {number}",
                                                         f"member {port}"]
    assert drv.left_behind("lglag3", p["free"]) == []


# ---------------------------------------------------------------- state reads
def test_eos_lacp_bits_and_partner_from_real_and_documented_json():
    from laghil.drivers.switch.base import IN_USE
    from laghil.drivers.switch.eos import parse_lacp_actor, parse_lacp_partner
    partner = parse_lacp_partner(sample("nanog77-nrfu--eos_show_lacp_neighbor.json"))
    assert partner == {"Ethernet51": (0x3d, "76:83:ef:ed:66:5d"),
                       "Ethernet52": (0x3d, "76:83:ef:ed:66:5d")}
    ok = parse_lacp_actor(sample("anta--eos_show_lacp_interface_detailed_bundled.json"))
    neg = parse_lacp_actor(sample("anta--eos_show_lacp_interface_detailed_negotiating.json"))
    assert ok == {"Ethernet5": 0x3d} and ok["Ethernet5"] & IN_USE == IN_USE
    assert neg == {"Ethernet5": 0x0d}, "in sync, neither collecting nor distributing"
    with pytest.raises(SwitchError, match="not JSON"):
        parse_lacp_actor("% Invalid input")


def test_lacp_system_ids_and_state_bits_in_each_nos_spelling():
    from laghil.drivers.switch.nos import lacp_state, lacp_system_mac
    assert lacp_system_mac("8000,76-83-ef-ed-66-5d") == "76:83:ef:ed:66:5d"        # EOS
    assert lacp_system_mac("32768,5e-2-0-1-0-7") == "5e:02:00:01:00:07"           # NX-OS
    assert lacp_system_mac("0012.3694.03ec") == "00:12:36:94:03:ec"
    with pytest.raises(SwitchError, match="no MAC"):
        lacp_system_mac("8000,not-a-mac")
    assert lacp_state({"activity": True, "timeout": True, "aggregation": True,
                       "synchronization": True, "collecting": True,
                       "distributing": True}) == 0x3f
    with pytest.raises(SwitchError, match="unknown bits"):
        lacp_state({"actvity": True})


def test_eos_lag_state_puts_each_source_on_its_member(monkeypatch):
    """EOS's lag_state: the summary's members, each with the actor state of
    `show lacp interface detailed` and the partner state and system of `show
    lacp neighbor` (the samples name different ports: each lands on its own)."""
    from laghil.drivers.switch.base import LagMember, SwitchLag
    drv, cli, _ = driver("eos")
    cli.shows["show lacp interface detailed | json"] = sample(
        "anta--eos_show_lacp_interface_detailed_bundled.json")
    cli.shows["show lacp neighbor | json"] = sample("nanog77-nrfu--eos_show_lacp_neighbor.json")
    ports = ["Ethernet5", "Ethernet51", "Ethernet52"]
    monkeypatch.setattr(drv, "lags", lambda: {7: SwitchLag("Port-Channel7", "lacp", True, {
        p: LagMember(p, True, True) for p in ports})})
    st = drv.lag_state("lglag7")
    got = {p: (m.actor_state, m.partner_state, m.partner_system) for p, m in st.members.items()}
    assert got == {"Ethernet5": (0x3d, None, None),
                   "Ethernet51": (None, 0x3d, "76:83:ef:ed:66:5d"),
                   "Ethernet52": (None, 0x3d, "76:83:ef:ed:66:5d")}, got


@pytest.mark.parametrize("platform,command,sample_file,port,up", [
    ("eos", "show interfaces status", "ntc-templates--arista_eos_show_interfaces_status.raw",
     "Ethernet3/1/1", True),
    ("eos", "show interfaces status", "ntc-templates--arista_eos_show_interfaces_status.raw",
     "Ethernet3/1/4", False),
    ("nxos", "show interface status", "ntc-templates--cisco_nxos_show_interface_status.raw",
     "Ethernet1/1", False),
    ("onyx", "show interfaces ethernet status | json-print",
     "ansible--onyx_interfaces_status.json", "Eth1/1", False),
])
def test_a_ports_link_state_as_the_nos_says(platform, command, sample_file, port, up):
    drv, cli, _ = driver(platform)
    cli.shows[command] = sample(sample_file)
    drv.node.spec.ports.update({port: None, "Ethernet7/7": None, "Eth1/48": None})
    assert drv.port_oper_up(port) is up
    with pytest.raises(SwitchError, match="is not in `show interface"):
        drv.port_oper_up("Eth1/48" if platform == "onyx" else "Ethernet7/7")
    with pytest.raises(SwitchError, match="not in the lab file"):
        drv.port_oper_up("Ethernet9/9")


def test_mac_tables_of_eos_and_nxos_from_real_output():
    from laghil.drivers.switch.eos import parse_mac_table
    eos = parse_mac_table(sample("ntc-templates--arista_eos_show_mac_address-table.raw"),
                          "arista_eos")
    assert len(eos) == 28, "19 unicast entries, 3 multicast ones on 9 ports"
    assert not [e for e in eos if e["vlan"] == 200], "the sample's 'jenn.3057.8423' row"
    assert eos[0] == {"mac": "00:12:36:94:03:ec", "port": "Et7", "vlan": 3,
                      "flags": ["static"]}
    assert {"mac": "00:1c:82:24:36:d7", "port": "Po2", "vlan": 101,
            "flags": ["dynamic"]} in eos
    nx = parse_mac_table(sample("ntc-templates--cisco_nxos_show_mac_address-table.raw"),
                         "cisco_nxos")
    assert [(e["vlan"], e["port"]) for e in nx] == [(100, "sup-eth1(R)"), (145, "Drop"),
                                                   (145, "Po10")]


@pytest.mark.parametrize("platform,command,sample_file,lag,port,want", [
    ("eos", "show mac address-table", "ntc-templates--arista_eos_show_mac_address-table.raw",
     "lglag2", "Ethernet7", {("Po2", 101), ("Et7", 3)}),
    ("nxos", "show mac address-table", "ntc-templates--cisco_nxos_show_mac_address-table.raw",
     "lglag10", "Ethernet1/1", {("Po10", 145)}),
])
def test_fdb_entries_on_laghils_members_whatever_the_nos_calls_them(
        platform, command, sample_file, lag, port, want):
    """The switch LAG suite asks which entries sit on its LAG (laghil's name)
    and its ports (the lab's names); the NOS prints Po2 and Et7."""
    drv, cli, _ = driver(platform)
    cli.shows[command] = sample(sample_file)
    drv.node.spec.ports[port] = None
    got = {(e["port"], e["vlan"]) for e in drv.fdb_on("lgbr0", [lag, port])}
    assert got == want, got
    assert drv.fdb_on("lgbr0", ["lglag77"]) == []


@pytest.mark.parametrize("platform,version,verdict,model", [
    ("eos", "ntc-templates--arista_eos_show_version.raw", "not_offloaded", "vEOS"),
    ("nxos", "ntc-templates--cisco_nxos_show_version.raw", "unknown", "Nexus9000 C9396PX"),
    ("onyx", "ansible--onyx_show_version.txt", "unknown", "x86onie"),
])
def test_offload_evidence_is_what_the_nos_shows_never_a_guess(platform, version, verdict,
                                                               model):
    """A virtual image of the NOS (the sample's vEOS) forwards in software: a
    software LAG. A hardware model: the members bundled are read but not the
    NOS's hardware LAG table, so no verdict, naming what is missing."""
    drv, cli, p = driver(platform)
    cli.shows["show version"] = sample(version)
    number, port = p["lag"]
    ev = drv.offload_evidence(f"lglag{number}")
    assert (ev.verdict, ev.signals["model (show version)"]) == (verdict, model), ev
    assert port in ev.signals["members bundled"] or verdict == "not_offloaded" or \
        ev.signals["members bundled"] == "none"
    assert bool(ev.missing) == (verdict == "unknown"), ev.missing


def test_nxos_lag_state_reads_each_members_lacp_states():
    """NX-OS: `show lacp interface ethernet X` per member of an LACP
    port-channel (real output quoted on movingpackets.net): actor 0x3d (long
    timeout), partner 0x3f, the partner's system MAC."""
    from laghil.drivers.switch.base import IN_USE
    from laghil.drivers.switch.nxos import parse_lacp_interface
    text = sample("movingpackets--nxos_show_lacp_interface.txt")
    assert parse_lacp_interface(text) == (0x3d, 0x3f, "39:0d:12:c2:2b:40")
    drv, cli, _ = driver("nxos")
    for port in ("1/47", "1/48"):
        cli.shows[f"show lacp interface ethernet {port}"] = text
    st = drv.lag_state("lglag47")
    assert set(st.members) == {"Ethernet1/47", "Ethernet1/48"}
    for m in st.members.values():
        assert (m.actor_state, m.partner_state, m.partner_system) == (
            0x3d, 0x3f, "39:0d:12:c2:2b:40") and m.actor_state & IN_USE == IN_USE
    with pytest.raises(SwitchError, match="no actor/partner oper state"):
        parse_lacp_interface("% Invalid command")
