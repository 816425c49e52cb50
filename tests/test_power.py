"""PDU power control over SNMP, against the virtual rack's real SNMP agent.

No QEMU: the agent (laghil.vlab.snmp_pdu) runs on a free UDP port of
127.0.0.1 with a fake backend (a dict of outlet states), and PduControl drives
it through a small lab file written to tmp_path.
"""

import socket
import threading
import re
import time

import pytest

from laghil.errors import RackError
from laghil.lab import load_lab
from laghil.power import PduControl, PowerError, UnknownOutlet, apc_rpdu2, apc_sporlet, raritan_px
from laghil.power.snmp import snmp_get, snmp_set_int
from laghil.transport.redact import MASK, SECRETS
from laghil.vlab.snmp_pdu import FakeBackend, RackBackend, SnmpPduAgent, VirtualPdu

COMMUNITY = "lab-pdu-community-7f3a"
WRONG = "not-the-community-91c2"
VAR = "LAGHIL_TEST_PDU_COMMUNITY"
FAST = dict(timeout=0.5, retries=1)   # one SNMP request waits at most 1 s in all
BOUND = 0.5 * 2 + 1.5                 # ... plus generous scheduling slack

LAB = """\
name: powertest
kind: virtual
hosts:
  h1:
    management: {{address: 127.0.0.1, port: 22901}}
    ports: {{eth1: {{mac: "52:54:00:00:09:01", speed: 10000}}}}
  h2:
    management: {{address: 127.0.0.1, port: 22902}}
    ports: {{eth1: {{mac: "52:54:00:00:09:02", speed: 10000}}}}
switches:
  sw1:
    platform: linux
    management: {{address: 127.0.0.1, port: 22903}}
    ports: {{swp1: {{mac: "52:54:00:00:09:03", speed: 10000}}}}
pdus:
  vpdu:
    model: virtual
    address: 127.0.0.1
    port: {port}
    community_env: {var}
    outlets:
      1: {{feeds: h1}}
      2: {{feeds: h2}}
      3: {{feeds: sw1}}
      4: {{label: "mgmt switch", protected: true}}
  nocomm:
    model: apc-rpdu2
    address: 127.0.0.1
    port: {port}
    outlets:
      1: {{feeds: h1}}
cables:
  - {{name: h1-sw1, ends: ["h1:eth1", "sw1:swp1"], faults: [link_down]}}
"""


def write_lab(tmp_path, port):
    path = tmp_path / "powertest.yaml"
    path.write_text(LAB.format(port=port, var=VAR))
    return load_lab(path)


def free_udp_port():
    """A UDP port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backend():
    return FakeBackend([1, 2, 3, 4])


@pytest.fixture
def agent(backend):
    with SnmpPduAgent(backend, [1, 2, 3, 4], COMMUNITY, port=0, name="vpdu",
                      reboot_duration=0.3) as a:
        yield a


@pytest.fixture
def lab(tmp_path, agent):
    return write_lab(tmp_path, agent.port)


@pytest.fixture
def pdu(lab, monkeypatch):
    monkeypatch.setenv(VAR, COMMUNITY)
    return PduControl(lab, "vpdu", **FAST)


def assert_no_secret(err):
    for secret in (COMMUNITY, WRONG):
        assert secret not in str(err), f"community leaked into error: {err}"
        assert secret not in repr(err), f"community leaked into error repr: {err!r}"


# ---- PduControl against the agent ----------------------------------------------

def test_off_then_on_is_read_back_and_returns_the_instant_of_the_change(pdu, backend):
    assert pdu.state(1) is True
    before = time.time()
    t_off = pdu.off(1)
    after = time.time()
    assert before <= t_off <= after, f"off instant {t_off} outside [{before}, {after}]"
    assert pdu.state(1) is False and backend.states[1] is False
    assert pdu.last_switch.outlet == 1 and pdu.last_switch.on is False
    assert pdu.last_switch.sent <= pdu.last_switch.acked <= pdu.last_switch.confirmed

    before = time.time()
    t_on = pdu.on(1)
    after = time.time()
    assert t_off <= before <= t_on <= after
    assert pdu.state(1) is True and backend.states[1] is True
    assert backend.sets == [(1, False), (1, True)]
    assert all(backend.states[n] for n in (2, 3, 4)), "other outlets must not change"


def test_outlet_feeds_its_node(pdu):
    assert pdu.outlets == [1, 2, 3, 4]
    assert [pdu.feeds(n) for n in (1, 2, 3, 4)] == ["h1", "h2", "sw1", None]
    assert pdu.outlet_of("sw1") == 3
    with pytest.raises(PowerError, match="no outlet of pdu vpdu feeds node 'h9'"):
        pdu.outlet_of("h9")


def test_protected_outlet_is_refused_before_anything_is_sent(pdu, backend, monkeypatch):
    def must_not_send(*args, **kwargs):
        raise AssertionError("power_set called for a protected outlet")

    monkeypatch.setattr(apc_rpdu2, "power_set", must_not_send)
    with pytest.raises(PowerError) as err:
        pdu.off(4)
    assert str(err.value) == ("outlet 4 of pdu vpdu is protected (feeds 'mgmt switch'): "
                              "refusing to switch it off")
    assert backend.sets == [], f"the PDU saw sets: {backend.sets}"
    assert backend.states[4] is True


def test_unknown_outlet_and_unknown_pdu_are_clear_errors(pdu, lab, backend):
    with pytest.raises(UnknownOutlet) as err:
        pdu.off(9)
    assert str(err.value) == "pdu vpdu has no outlet 9 in lab 'powertest'; outlets: 1, 2, 3, 4"
    with pytest.raises(UnknownOutlet):
        pdu.state("x")
    with pytest.raises(PowerError, match="lab 'powertest' has no pdu 'pdu9'; pdus: vpdu, nocomm"):
        PduControl(lab, "pdu9")
    assert backend.sets == []


def test_wrong_community_fails_within_the_timeout_without_naming_it(lab, agent, backend,
                                                                     monkeypatch):
    monkeypatch.setenv(VAR, WRONG)
    pdu = PduControl(lab, "vpdu", **FAST)
    for action in (pdu.state, pdu.off):
        start = time.monotonic()
        with pytest.raises(PowerError) as err:
            action(1)
        elapsed = time.monotonic() - start
        assert elapsed < BOUND, f"gave up after {elapsed:.2f} s, bound {BOUND} s"
        msg = str(err.value)
        assert f"vpdu (127.0.0.1:{agent.port})" in msg
        assert "no response within 1 s (wrong community or unreachable)" in msg
        assert "1.3.6.1.4.1.318.1.1.26.9.2." in msg, f"OID missing: {msg}"
        assert_no_secret(err.value)
    assert backend.sets == [], "an agent must ignore a wrong community"


def test_missing_community_variable_names_the_variable_and_the_pdu(lab, monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    with pytest.raises(PowerError) as err:
        PduControl(lab, "vpdu")
    msg = str(err.value)
    assert VAR in msg and "vpdu" in msg and "not set" in msg, msg

    with pytest.raises(PowerError, match="nocomm .*gives no community_env"):
        PduControl(lab, "nocomm")


def test_nothing_listening_fails_within_the_timeout(tmp_path, monkeypatch):
    port = free_udp_port()
    monkeypatch.setenv(VAR, COMMUNITY)
    pdu = PduControl(write_lab(tmp_path, port), "vpdu", **FAST)
    start = time.monotonic()
    with pytest.raises(PowerError) as err:
        pdu.off(1)
    elapsed = time.monotonic() - start
    assert elapsed < BOUND, f"gave up after {elapsed:.2f} s, bound {BOUND} s"
    assert f"vpdu (127.0.0.1:{port})" in str(err.value)
    assert "no response" in str(err.value)
    assert_no_secret(err.value)


def test_outlet_that_does_not_switch_fails_read_back_within_verify_timeout(tmp_path, monkeypatch):
    class StuckRelay(FakeBackend):
        def on_set(self, outlet, on):
            self.sets.append((outlet, on))  # acknowledged, never switched

    stuck = StuckRelay([1, 2, 3, 4])
    with SnmpPduAgent(stuck, [1, 2, 3, 4], COMMUNITY, port=0) as a:
        monkeypatch.setenv(VAR, COMMUNITY)
        pdu = PduControl(write_lab(tmp_path, a.port), "vpdu", verify_timeout=0.6,
                         poll_interval=0.1, **FAST)
        start = time.monotonic()
        with pytest.raises(PowerError) as err:
            pdu.off(2)
        assert time.monotonic() - start < 0.6 + BOUND
    assert re.search(r"outlet 2 did not read back off after the command: not within 0\.6 s "
                     r"\(\d+ polls\); last seen: on$", str(err.value)), str(err.value)
    assert stuck.sets == [(2, False)]


def test_community_is_registered_with_the_redactor(pdu):
    assert COMMUNITY in SECRETS
    assert SECRETS.redact(f"snmpset -c {COMMUNITY}") == f"snmpset -c {MASK}"
    assert COMMUNITY not in repr(pdu)


# ---- the model modules -------------------------------------------------------

def test_apc_rpdu2_module_speaks_the_rpdu2_oids_over_snmp(agent, backend):
    port = agent.port
    apc_rpdu2.power_set("127.0.0.1", port, COMMUNITY, 2, False)
    assert backend.sets == [(2, False)]
    assert apc_rpdu2.power_get("127.0.0.1", port, COMMUNITY, 2) is False
    assert apc_rpdu2.power_get("127.0.0.1", port, COMMUNITY, 3) is True
    # The raw values, as an APC rPDU2 gives them.
    status, control = "1.3.6.1.4.1.318.1.1.26.9.2.3.1.5", "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5"
    assert snmp_get("127.0.0.1", port, COMMUNITY, f"{status}.2") == 1      # off
    assert snmp_get("127.0.0.1", port, COMMUNITY, f"{status}.3") == 2      # on
    assert snmp_get("127.0.0.1", port, COMMUNITY, f"{control}.2") == 2     # immediateOff
    assert snmp_get("127.0.0.1", port, COMMUNITY, f"{status}.3", version="1") == 2  # SNMP v1
    snmp_set_int("127.0.0.1", port, COMMUNITY, f"{control}.2", 1)          # immediateOn
    assert backend.states[2] is True


def test_agent_refuses_bad_writes_and_unknown_objects(agent, backend):
    port, control = agent.port, apc_rpdu2.CONTROL_OID
    with pytest.raises(PowerError, match="wrongValue"):
        snmp_set_int("127.0.0.1", port, COMMUNITY, f"{control}.1", 7)
    with pytest.raises(PowerError, match="notWritable"):
        snmp_set_int("127.0.0.1", port, COMMUNITY, f"{apc_rpdu2.STATUS_OID}.1", 1)
    with pytest.raises(PowerError, match="notWritable"):
        snmp_set_int("127.0.0.1", port, COMMUNITY, f"{control}.9", 2)   # no outlet 9
    with pytest.raises(PowerError, match="no such object"):
        apc_rpdu2.power_get("127.0.0.1", port, COMMUNITY, 9)
    assert backend.sets == []
    assert "virtual PDU" in snmp_get("127.0.0.1", port, COMMUNITY, "1.3.6.1.2.1.1.1.0")


def test_immediate_reboot_switches_off_then_on_after_the_reboot_duration(agent, backend):
    snmp_set_int("127.0.0.1", agent.port, COMMUNITY, f"{apc_rpdu2.CONTROL_OID}.3",
                 apc_rpdu2.CMD_REBOOT)
    assert backend.states[3] is False
    deadline = time.monotonic() + 3
    while not backend.states[3] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.sets == [(3, False), (3, True)]


class FakeSnmp:
    """Stands in for the SNMP layer of a model module: records sets, answers gets."""

    def __init__(self, answer=None):
        self.sets, self.gets, self.answer = [], [], answer

    def set_int(self, host, port, community, oid, value, timeout=None, **kw):
        self.sets.append((oid, value, kw.get("version")))

    def get(self, host, port, community, oid, timeout=None, **kw):
        self.gets.append((oid, kw.get("version")))
        return self.answer


@pytest.mark.parametrize("module, control, status, on, off, state_on, state_off, version", [
    (raritan_px, "1.3.6.1.4.1.13742.6.4.1.2.1.2.1", "1.3.6.1.4.1.13742.6.4.1.2.1.3.1",
     1, 0, 7, 8, "2c"),
    (apc_sporlet, "1.3.6.1.4.1.318.1.1.4.4.2.1.3", "1.3.6.1.4.1.318.1.1.4.4.2.1.3",
     1, 2, 1, 2, "1"),
    (apc_rpdu2, "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5", "1.3.6.1.4.1.318.1.1.26.9.2.3.1.5",
     1, 2, 2, 1, "2c"),
])
def test_model_module_sets_and_reads_the_right_oids(monkeypatch, module, control, status,
                                                   on, off, state_on, state_off, version):
    fake = FakeSnmp()
    import laghil.power.snmp as snmp_layer   # where the per-model MIB tables send from
    monkeypatch.setattr(snmp_layer, "snmp_set_int", fake.set_int)
    monkeypatch.setattr(snmp_layer, "snmp_get", fake.get)
    module.power_set("pdu.example", 161, COMMUNITY, 5, True)
    module.power_set("pdu.example", 161, COMMUNITY, 5, False)
    assert fake.sets == [(f"{control}.5", on, version), (f"{control}.5", off, version)]
    fake.answer = state_on
    assert module.power_get("pdu.example", 161, COMMUNITY, 6) is True
    fake.answer = state_off
    assert module.power_get("pdu.example", 161, COMMUNITY, 6) is False
    assert fake.gets == [(f"{status}.6", version)] * 2
    fake.answer = 4
    with pytest.raises(PowerError, match="unexpected") as err:
        module.power_get("pdu.example", 161, COMMUNITY, 6, name="pdu7")
    assert "pdu7 (pdu.example:161)" in str(err.value)
    assert_no_secret(err.value)


# ---- the virtual PDU ----------------------------------------------------------

def test_agent_port_in_use_is_a_clear_error(agent):
    with pytest.raises(RackError, match=f"cannot listen on UDP 127.0.0.1:{agent.port}"):
        SnmpPduAgent(FakeBackend([1]), [1], COMMUNITY, port=agent.port).start()


def test_virtual_pdu_with_fake_backend_serves_the_lab_outlets(tmp_path, monkeypatch):
    monkeypatch.setenv(VAR, COMMUNITY)
    lab = write_lab(tmp_path, 161)
    with VirtualPdu(lab, None, port=0) as vpdu:
        assert isinstance(vpdu.backend, FakeBackend) and vpdu.outlets == {1, 2, 3, 4}
        apc_rpdu2.power_set("127.0.0.1", vpdu.port, COMMUNITY, 3, False)
        assert vpdu.backend.sets == [(3, False)]
        assert apc_rpdu2.power_get("127.0.0.1", vpdu.port, COMMUNITY, 3) is False
    assert not vpdu.running


class FakeRack:
    """What RackBackend needs of a Rack: plans, power_off/on, is_powered."""

    def __init__(self, guests, boot_seconds=0.5):
        self.plans = {g: None for g in guests}
        self.powered = set(guests)
        self.calls = []
        self.boot_seconds = boot_seconds
        self.booted = threading.Event()

    def is_powered(self, node):
        return node in self.powered

    def power_off(self, node):
        self.calls.append(("off", node))
        self.powered.discard(node)
        return time.time()

    def power_on(self, node, timeout=240.0):
        self.calls.append(("on", node))
        time.sleep(self.boot_seconds)
        self.powered.add(node)
        self.booted.set()
        return self.boot_seconds


def test_virtual_pdu_on_rack_reports_on_at_once_and_boots_in_background(tmp_path, monkeypatch):
    monkeypatch.setenv(VAR, COMMUNITY)
    rack = FakeRack(["h1", "h2", "sw1"], boot_seconds=2.0)
    with VirtualPdu(write_lab(tmp_path, 161), rack, port=0) as vpdu:
        pdu = PduControl(write_lab(tmp_path, vpdu.port), "vpdu", **FAST)
        assert isinstance(vpdu.backend, RackBackend)
        assert pdu.state(2) is True                       # from rack.is_powered
        pdu.off(2)
        assert rack.calls == [("off", "h2")] and not rack.is_powered("h2")
        start = time.monotonic()
        pdu.on(2)                                         # relay on: read back at once
        assert time.monotonic() - start < 1.5, "on() must not wait for the boot"
        assert not rack.booted.is_set() and pdu.state(2) is True
        assert rack.booted.wait(5) and rack.is_powered("h2")
        assert rack.calls == [("off", "h2"), ("on", "h2")]
        assert vpdu.backend.errors == []


def test_every_fault_kind_a_lab_file_may_name_has_its_injector():
    from laghil.faults import FAULT_KINDS as INJECTORS, PULL_PREFERENCE
    from laghil.lab import FAULT_KINDS
    assert set(INJECTORS) == set(FAULT_KINDS)
    assert set(PULL_PREFERENCE) <= set(FAULT_KINDS) and "pdu_outlet" not in PULL_PREFERENCE
