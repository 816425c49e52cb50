"""NOS switch drivers (EOS, NX-OS): parsers on others' real or documented
output (tests/data/samples/README.md says which), command builders, the
refusals before any change, CLI error lines as refusals, and the undo contract
(registered before the first configuration line is sent)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from laghil.drivers.switch import SwitchError, SwitchRefused
from laghil.drivers.switch.eos import EosSwitch, canonical
from laghil.drivers.switch.eos import parse_portchannel_summary as parse_eos
from laghil.drivers.switch.nos import check_cli_word, cli_error, lag_number
from laghil.drivers.switch.nxos import NxosSwitch
from laghil.drivers.switch.nxos import parse_portchannel_summary as parse_nxos
from laghil.errors import BadName

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


PLATFORMS = [
    (EosSwitch, "ntc-templates--arista_eos_show_port-channel_summary.raw",
     ["Ethernet60", "Ethernet61"], "Ethernet5"),
    (NxosSwitch, "cisco-docs--nxos_show_port-channel_summary.json",
     ["Ethernet1/1", "Ethernet1/2"], "Ethernet1/47"),
]


@pytest.mark.parametrize("cls,show,free,taken", PLATFORMS, ids=["eos", "nxos"])
def test_lag_create_registers_its_undo_before_the_first_line(cls, show, free, taken):
    cli = FakeCli(sample(show))
    drv = cls(_node("sw9", free + [taken]), channel=cli)
    at = []
    lag = drv.lag_create("lglag3", free, "lacp", min_links=2,
                         defer=lambda fn: at.append(list(cli.sent)))
    assert at and all(kind == "show" for kind, _ in at[0]), (
        f"config sent before the undo was registered: {at}")
    (kind, lines), = [s for s in cli.sent if s[0] == "config"]
    assert any("channel-group 3 mode active" in ln for ln in lines)
    assert any("min-links 2" in ln for ln in lines)
    lag.destroy()
    assert any("no channel-group" in ln for ln in cli.sent[-1][1])


@pytest.mark.parametrize("cls,show,free,taken", PLATFORMS, ids=["eos", "nxos"])
def test_lag_create_refuses_what_laghil_did_not_make(cls, show, free, taken):
    cli = FakeCli(sample(show))
    drv = cls(_node("sw9", free + [taken]), channel=cli)
    existing = 125 if cls is EosSwitch else 47
    with pytest.raises(SwitchError, match=f"port-channel {existing} already exists"):
        drv.lag_create(f"lglag{existing}", free, "lacp", defer=lambda fn: None)
    with pytest.raises(SwitchError, match=f"{taken} already in port-channel"):
        drv.lag_create("lglag3", [taken], "lacp", defer=lambda fn: None)
    with pytest.raises(SwitchError, match="not in the lab file"):
        drv.lag_create("lglag3", ["Ethernet99"], "lacp", defer=lambda fn: None)
    assert all(kind == "show" for kind, _ in cli.sent), "nothing configured"


@pytest.mark.parametrize("cls,show,free,taken", PLATFORMS, ids=["eos", "nxos"])
def test_a_cli_error_is_a_refusal_undone_at_once(cls, show, free, taken):
    cli = FakeCli(sample(show), refuse="channel-group 3")
    drv = cls(_node("sw9", free + [taken]), channel=cli)
    undone = []
    with pytest.raises(SwitchRefused) as e:
        drv.lag_create("lglag3", free, "static", defer=undone.append)
    assert "% Invalid input" in e.value.reason
    assert len(undone) == 1 and any("no channel-group" in ln
                                    for kind, lines in cli.sent if kind == "config"
                                    for ln in lines), "the undo ran at once"


@pytest.mark.parametrize("cls", [EosSwitch, NxosSwitch], ids=["eos", "nxos"])
def test_port_shutdown_undo_first(cls):
    cli = FakeCli("")
    drv = cls(_node("sw9", ["Ethernet1/1"]), channel=cli)
    at = []
    drv.port_shutdown("Ethernet1/1", defer=lambda fn: at.append(list(cli.sent)))
    assert at == [[]] and cli.sent == [("config", ["interface Ethernet1/1", "shutdown"])]
