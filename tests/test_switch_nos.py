"""NOS switch drivers (EOS, NX-OS): parsers on others' real or documented
output (tests/data/samples/README.md says which), command builders, the
refusals before any change, CLI error lines as refusals, and the undo contract
(registered before the first configuration line is sent)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from laghil.drivers.switch import SwitchError, SwitchLag, SwitchRefused
from laghil.drivers.switch.eos import EosSwitch, canonical
from laghil.drivers.switch.eos import parse_portchannel_summary as parse_eos
from laghil.drivers.switch.nos import check_cli_word, cli_error, lag_number
from laghil.drivers.switch.nxos import NxosSwitch
from laghil.drivers.switch.nxos import parse_portchannel_summary as parse_nxos
from laghil.errors import BadName

from fake_iproute import is_preflight, preflight_text

SAMPLES = Path(__file__).parent / "data" / "samples"


def sample(name):
    return (SAMPLES / name).read_text()


def test_eos_summary_from_a_real_switch():
    lags = parse_eos(sample("ntc-templates--arista_eos_show_port-channel_summary.raw"))
    assert len(lags) == 19
    po = lags[2000]
    assert po.name == "Port-Channel2000" and po.mode == "lacp" and po.oper_up
    assert po.members["Ethernet54/1"].selected, "PG+: bundled, in sync"
    down = lags[125]
    assert not down.oper_up and sorted(down.members) == [f"Ethernet{i}" for i in
                                                         (25, 26, 27, 28, 29)]
    assert not any(m.selected or m.oper_up for m in down.members.values())


def test_nxos_summary_documented_json():
    lags = parse_nxos(sample("cisco-docs--nxos_show_port-channel_summary.json"))
    assert sorted(lags) == [12, 47, 48]
    assert lags[12].members == {} and not lags[12].oper_up and lags[12].mode == "static"
    assert lags[47].selected == ["Ethernet1/47", "Ethernet1/48"] and lags[47].oper_up
    one = lags[48].members["Ethernet1/49"]
    assert not one.oper_up and not one.selected, "a one-row member table is an object"
    with pytest.raises(SwitchError, match="not JSON"):
        parse_nxos("% Invalid command at '^' marker.")


def test_cli_words_and_lag_numbers():
    assert check_cli_word("Ethernet1/47", "port") == "Ethernet1/47"
    for bad in ("Eth1/1\nreload", "Eth1/1 ; reload", "", "1/1", "Po1|include"):
        with pytest.raises(BadName):
            check_cli_word(bad, "port")
    assert lag_number("lglag2") == 2
    with pytest.raises(SwitchError):
        lag_number("lglag")
    assert canonical("Et5") == "Ethernet5" and canonical("Po105") == "Port-Channel105"


def test_cli_error_lines():
    assert cli_error("switch(config-if)# channel-group 5 mode active\n% Invalid input\n") \
        == "% Invalid input"
    assert cli_error("ERROR: port-channel 4097 out of range\n").startswith("ERROR:")
    # Onyx (found by its session over FakeNOS, tests/test_nos_fakenos.py)
    assert cli_error('sw [standalone: master] (config) # foo\n% Unrecognized command "foo".\n'
                     ) == '% Unrecognized command "foo".'
    assert cli_error("switch(config)# interface Ethernet5\nswitch(config-if)#\n") is None


class FakeCli:
    """A CLI channel: answers show commands with a sample, records config lines."""

    def __init__(self, show, refuse=None):
        self.show, self.refuse, self.sent = show, refuse, []

    def send(self, command):
        self.sent.append(("show", command))
        return self.show

    def config(self, lines):
        self.sent.append(("config", list(lines)))
        if self.refuse and any(self.refuse in ln for ln in lines):
            return f"{lines[0]}\n% Invalid input detected at '^' marker.\n"
        return "\n".join(lines)


def _node(name, ports):
    spec = SimpleNamespace(ports={p: None for p in ports}, platform="x")
    return SimpleNamespace(name=name, spec=spec, session=None)


from laghil.drivers.switch.onyx import OnyxSwitch  # noqa: E402

PLATFORMS = [
    (EosSwitch, "ntc-templates--arista_eos_show_port-channel_summary.raw",
     ["Ethernet60", "Ethernet61"], "Ethernet5"),
    (NxosSwitch, "cisco-docs--nxos_show_port-channel_summary.json",
     ["Ethernet1/1", "Ethernet1/2"], "Ethernet1/47"),
    (OnyxSwitch, "ansible--onyx_port_channel_show.json", ["Eth1/1", "Eth1/2"], "Eth1/7"),
]
IDS = ["eos", "nxos", "onyx"]
EXISTING = {EosSwitch: 125, NxosSwitch: 47, OnyxSwitch: 22}


@pytest.mark.parametrize("cls,show,free,taken", PLATFORMS, ids=IDS)
def test_lag_create_registers_its_undo_before_the_first_line(cls, show, free, taken):
    cli = FakeCli(sample(show))
    drv = cls(_node("sw9", free + [taken]), channel=cli)
    at = []
    ml = None if cls is OnyxSwitch else 2
    lag = drv.lag_create("lglag3", free, "lacp", min_links=ml,
                         defer=lambda fn: at.append(list(cli.sent)))
    assert at and all(kind == "show" for kind, _ in at[0]), (
        f"config sent before the undo was registered: {at}")
    (kind, lines), = [s for s in cli.sent if s[0] == "config"]
    assert any("channel-group 3 mode active" in ln for ln in lines)
    assert ml is None or any("min-links 2" in ln for ln in lines)
    assert (lag.switch, lag.name, lag.members, lag.mode) == ("sw9", "lglag3", tuple(free), "lacp")
    _shows_lag(drv, 3)          # (the sample does not change: as the switch would show it)
    lag.destroy()
    assert any("no channel-group" in ln for ln in cli.sent[-1][1])


def _shows_lag(drv, number):
    """The switch shows port-channel ``number`` once a configuration was sent."""
    real = drv.lags

    def lags():
        made = any(kind == "config" for kind, _ in drv.cli.sent)
        return {**real(), **({number: SwitchLag(f"port-channel{number}", "lacp", True, {})}
                             if made else {})}
    drv.lags = lags


@pytest.mark.parametrize("cls,show,free,taken", PLATFORMS, ids=IDS)
def test_removing_a_lag_is_idempotent_and_a_cli_error_is_named(cls, show, free, taken):
    cli = FakeCli(sample(show))
    drv = cls(_node("sw9", free + [taken]), channel=cli)
    lag = drv.lag_create("lglag3", free, "lacp", defer=lambda fn: None)
    n = len(cli.sent)
    lag.destroy()                           # port-channel 3 is not on the switch: nothing sent
    assert all(kind == "show" for kind, _ in cli.sent[n:]), cli.sent[n:]
    _shows_lag(drv, 3)
    cli.refuse = "no channel-group"
    with pytest.raises(SwitchRefused, match="switch sw9: remove LAG lglag3: % Invalid input"):
        lag.destroy()


@pytest.mark.parametrize("cls,show,free,taken", PLATFORMS, ids=IDS)
def test_lag_create_refuses_what_laghil_did_not_make(cls, show, free, taken):
    cli = FakeCli(sample(show))
    drv = cls(_node("sw9", free + [taken]), channel=cli)
    existing = EXISTING[cls]
    with pytest.raises(SwitchError, match=f"port-channel {existing} already exists"):
        drv.lag_create(f"lglag{existing}", free, "lacp", defer=lambda fn: None)
    with pytest.raises(SwitchError, match=f"{taken} already in port-channel"):
        drv.lag_create("lglag3", [taken], "lacp", defer=lambda fn: None)
    with pytest.raises(SwitchError, match="not in the lab file"):
        drv.lag_create("lglag3", ["Ethernet99"], "lacp", defer=lambda fn: None)
    assert all(kind == "show" for kind, _ in cli.sent), "nothing configured"


@pytest.mark.parametrize("cls,show,free,taken", PLATFORMS, ids=IDS)
def test_a_cli_error_is_a_refusal_undone_at_once(cls, show, free, taken):
    cli = FakeCli(sample(show), refuse="channel-group 3 mode")
    drv = cls(_node("sw9", free + [taken]), channel=cli)
    _shows_lag(drv, 3)          # what a refused config left: the port-channel it made
    undone = []
    with pytest.raises(SwitchRefused) as e:
        drv.lag_create("lglag3", free, "static", defer=undone.append)
    assert "% Invalid input" in e.value.reason
    assert len(undone) == 1 and any("no channel-group" in ln
                                    for kind, lines in cli.sent if kind == "config"
                                    for ln in lines), "the undo ran at once"


@pytest.mark.parametrize("cls,port", [(EosSwitch, "Ethernet1/1"), (NxosSwitch, "Ethernet1/1"),
                                      (OnyxSwitch, "Eth1/1")], ids=IDS)
def test_port_shutdown_undo_first(cls, port):
    cli = FakeCli("")
    drv = cls(_node("sw9", [port]), channel=cli)
    at = []
    drv.port_shutdown(port, defer=lambda fn: at.append(list(cli.sent)))
    assert at == [[]] and len(cli.sent) == 1 and cli.sent[0][0] == "config"
    assert "shutdown" in " ".join(cli.sent[0][1]) and "no shutdown" not in " ".join(cli.sent[0][1])


def test_every_nos_driver_is_covered():
    from laghil.drivers.switch import DRIVERS, LinuxSwitch
    from laghil.drivers.switch.sonic import SonicSwitch
    assert {c for c in DRIVERS.values() if not issubclass(c, LinuxSwitch)} == \
        {c for c, *_ in PLATFORMS} | {SonicSwitch}


def test_onyx_summary_json_print():
    from laghil.drivers.switch.onyx import parse_portchannel_summary as parse_onyx
    lags = parse_onyx(sample("ansible--onyx_port_channel_show.json"))
    assert list(lags) == [22]
    po = lags[22]
    assert po.name == "Po22" and po.mode == "static" and not po.oper_up
    assert po.members["Eth1/7"] == po.members["Eth1/7"].__class__("Eth1/7", False, False)
    # newer Onyx: a list of one-key objects
    newer = '[{"Flags": {}}, {"3 Po3(U)": [{"Type": "LACP", "Member Ports": "Eth1/1(P) Eth1/2(P)"}]}]'
    po3 = parse_onyx(newer)[3]
    assert po3.mode == "lacp" and po3.oper_up and po3.selected == ["Eth1/1", "Eth1/2"]
    with pytest.raises(SwitchError, match="not EthN/M"):
        parse_onyx('{"1 Po1(U)": [{"Type": "LACP", "Member Ports": "Eth1/1(P);reload"}]}')


def test_onyx_lines():
    from laghil.drivers.switch.onyx import OnyxSwitch
    cli = FakeCli(sample("ansible--onyx_port_channel_show.json"))
    drv = OnyxSwitch(_node("sw3", ["Eth1/1", "Eth1/2", "Eth1/7"]), channel=cli)
    at = []
    drv.lag_create("lglag3", ["Eth1/1", "Eth1/2"], "lacp",
                   defer=lambda fn: at.append(list(cli.sent)))
    assert all(k == "show" for k, _ in at[0])
    lines = cli.sent[-1][1]
    assert lines[:3] == ["interface port-channel 3", "exit",
                         "interface ethernet 1/1 channel-group 3 mode active"]
    with pytest.raises(SwitchError, match="Eth1/7 already in port-channel 22"):
        drv.lag_create("lglag4", ["Eth1/7"], "static", defer=lambda fn: None)


# ------------------------------------------------------------------ SONiC (teamd over a shell)
CAP = Path(__file__).parent / "data" / "captures"


def test_sonic_summary_and_teamd_state():
    from laghil.drivers.switch.sonic import lag_from_teamd, parse_portchannel_summary
    lags = parse_portchannel_summary(sample("sonic-utilities--show_interfaces_portchannel.txt"))
    assert sorted(lags) == [1, 2, 3, 4, 1001]
    assert not lags[1].oper_up and lags[1].members["Ethernet112"].selected is False
    assert lags[2].oper_up and lags[2].selected == ["Ethernet116"]
    assert lags[4].members == {} and lags[1001].members == {}
    # a PortChannel is a teamd team: its state dump is teamd's (our capture of a lacp team)
    lag = lag_from_teamd("PortChannel0001", (CAP / "h1-teamdctl-team1-lacp.json").read_text())
    assert lag.mode == "lacp" and lag.selected, lag
    assert all(m.actor_state is not None for m in lag.members.values())


class ShellNode:
    """A SONiC switch's shell: `show interfaces portchannel` from the sample."""

    def __init__(self, ports):
        self.name = "sw5"
        self.spec = SimpleNamespace(ports={p: None for p in ports}, platform="sonic")
        self.cmds = []

    def run(self, cmd, check=True, **kw):
        self.cmds.append(cmd)
        if is_preflight(cmd):       # the management check before a port is shut
            return SimpleNamespace(stdout=preflight_text(self.spec.ports), stderr="", rc=0)
        out = sample("sonic-utilities--show_interfaces_portchannel.txt") \
            if cmd == "show interfaces portchannel" else ""
        return SimpleNamespace(stdout=out, stderr="", rc=0)


def test_sonic_changes_undo_first_and_refuse_what_is_not_laghils():
    from laghil.drivers.switch.sonic import SonicSwitch
    node = ShellNode(["Ethernet0", "Ethernet4", "Ethernet116"])
    drv = SonicSwitch(node)
    at = []
    drv.lag_create("lglag7", ["Ethernet0", "Ethernet4"], "lacp", min_links=1,
                   defer=lambda fn: at.append(list(node.cmds)))
    assert at[0] == ["show interfaces portchannel"], "only the read before the undo"
    assert node.cmds[1] == "sudo config portchannel add PortChannel0007 --fast-rate true " \
                           "--min-links 1"
    assert node.cmds[2:] == ["sudo config portchannel member add PortChannel0007 Ethernet0",
                             "sudo config portchannel member add PortChannel0007 Ethernet4"]
    with pytest.raises(SwitchError, match="PortChannel0002 already exists"):
        drv.lag_create("lglag2", ["Ethernet0"], "lacp", defer=lambda fn: None)
    with pytest.raises(SwitchError, match="Ethernet116 already in PortChannel0002"):
        drv.lag_create("lglag8", ["Ethernet116"], "lacp", defer=lambda fn: None)
    n = len(node.cmds)
    at.clear()
    drv.port_shutdown("Ethernet0", defer=lambda fn: at.append(len(node.cmds)))
    # one read (is it the management interface?) before the undo, no change
    assert at == [n + 1] and is_preflight(node.cmds[n]), node.cmds[n:]
    assert node.cmds[-1] == "sudo config interface shutdown Ethernet0"


@pytest.mark.parametrize("cls,name,version", [
    (EosSwitch, "ntc-templates--arista_eos_show_version.raw", "4.14.7M"),
    (NxosSwitch, "ntc-templates--cisco_nxos_show_version.raw", "6.1(2)I3(1)"),
    (OnyxSwitch, "ansible--onyx_show_version.txt", "3.6.5000"),
], ids=IDS)
def test_describe_reads_the_nos_version(cls, name, version):
    drv = cls(_node("sw9", []), channel=FakeCli(sample(name)))
    d = drv.describe()
    assert d["platform"] == cls.platform and d["version"] == version
    assert d["lag_limit"].startswith("unknown"), "a limit laghil did not read is not invented"


@pytest.mark.parametrize("cls,mgmt,port", [(EosSwitch, "Management1", "Ethernet1/1"),
                                           (NxosSwitch, "mgmt0", "Ethernet1/1"),
                                           (OnyxSwitch, "mgmt0", "Eth1/1")])
def test_a_port_shutdown_outside_the_lab_or_on_management_is_refused(cls, mgmt, port):
    cli = FakeCli("")
    # a lab file that (wrongly) lists the management port as a test port
    drv = cls(_node("sw9", [port, mgmt]), channel=cli)
    with pytest.raises(SwitchError, match=f"switch sw9: refusing to shut {mgmt}: it is the "
                                          f"{cls.platform} management port"):
        drv.port_shutdown(mgmt, defer=lambda fn: pytest.fail("an undo for a refused shutdown"))
    with pytest.raises(SwitchError, match="switch sw9: port 'Ethernet9/9' is not in the lab file"):
        drv.port_shutdown("Ethernet9/9", defer=lambda fn: None)
    assert cli.sent == [], "refused before any command"


def test_sonic_refuses_its_management_port_and_a_port_outside_the_lab():
    from laghil.drivers.switch.sonic import SonicSwitch
    node = ShellNode(["Ethernet0", "eth0"])
    drv = SonicSwitch(node)
    with pytest.raises(SwitchError, match="refusing to shut eth0: it is the sonic management"):
        drv.port_shutdown("eth0", defer=lambda fn: None)
    with pytest.raises(SwitchError, match="'Ethernet8' is not in the lab file"):
        drv.port_shutdown("Ethernet8", defer=lambda fn: None)
    assert node.cmds == []
