"""Every validator of a name that reaches a shell or a switch CLI takes the
whole string: ``re.match`` with ``$`` accepted a trailing newline, and a
newline in a command line is a second command (issue 20)."""

import pytest

from laghil.drivers.sriov import SriovError, vf_command
from laghil.drivers.switch.base import check_cli_word
from laghil.drivers.vflag import check_pci
from laghil.errors import BadName, LaghilError
from laghil.lab.fields import _env_name, _switch_port
from laghil.names import check_ifname, check_name


@pytest.mark.parametrize("check, good", [
    (check_ifname, "eth0"), (check_name, "h1"), (lambda v: check_cli_word(v, "port"), "Eth1/1"),
    (check_pci, "0000:01:00.0"), (_switch_port, "swp1"), (_env_name, "PDU_COMMUNITY")])
def test_a_trailing_newline_or_a_second_line_is_refused(check, good):
    assert check(good) == good
    for bad in (good + "\n", good + "\nreboot", "\n" + good, good + "\r"):
        with pytest.raises((BadName, LaghilError, ValueError)):
            check(bad)


def test_a_vf_mac_with_a_newline_never_reaches_the_command():
    assert vf_command("eth1", 0, mac="02:00:00:00:00:01") == \
        "ip link set dev eth1 vf 0 mac 02:00:00:00:00:01"
    for bad in ("02:00:00:00:00:01\n", "02:00:00:00:00:01\nreboot", 5):
        with pytest.raises(SriovError, match="not a MAC address"):
            vf_command("eth1", 0, mac=bad)


def test_a_secret_too_short_to_mask_is_refused_naming_its_variable_not_its_value():
    from laghil.errors import LabError
    from laghil.lab import load_lab
    from laghil.runtime import LabRuntime
    with pytest.raises(LabError) as e:
        LabRuntime(load_lab("virtual"), env={"LAGHIL_VPDU_COMMUNITY": "zq"})
    assert "$LAGHIL_VPDU_COMMUNITY has 2 character(s)" in str(e.value)
    assert "zq" not in str(e.value).replace("LAGHIL_VPDU_COMMUNITY", "")
    rt = LabRuntime(load_lab("virtual"), env={"LAGHIL_VPDU_COMMUNITY": "zq7"})
    assert rt.redactor.redact("community zq7") == "community ***"


def test_a_report_shows_no_secret_even_with_pytest_l_locals():
    """What pytest prints of a failure (``-l``: every local of every frame, the
    exception's repr) and captured output pass the lab's redactor last."""
    from types import SimpleNamespace

    from fixtures.lab import redact_report
    from laghil.transport.redact import Redactor
    red = Redactor(["c0mmun1ty-x"])
    tb = ("    def on(self, outlet):\n        community = 'c0mmun1ty-x'\n"
          "community  = 'c0mmun1ty-x'\nE   PowerError: pdu3: timeout")
    rep = SimpleNamespace(longrepr=tb, sections=[("Captured stdout call", "snmp c0mmun1ty-x")])
    redact_report(rep, red)
    assert "c0mmun1ty-x" not in rep.longrepr and "***" in rep.longrepr
    assert rep.sections == [("Captured stdout call", "snmp ***")]
    skip = SimpleNamespace(longrepr=("f.py", 3, "needs c0mmun1ty-x"), sections=[])
    redact_report(skip, red)
    assert skip.longrepr == ("f.py", 3, "needs ***")
