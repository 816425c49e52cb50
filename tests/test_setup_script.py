"""scripts/debian-uri: bookworm-backports comes from the machine's own Debian
mirror (a lab behind a mirror or a proxy installs the same way)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def uri(tmp_path, sources=None, list_=None):
    (tmp_path / "sources.list.d").mkdir(exist_ok=True)
    if sources is not None:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(sources)
    if list_ is not None:
        (tmp_path / "sources.list").write_text(list_)
    return subprocess.run(["bash", str(ROOT / "scripts" / "debian-uri"), str(tmp_path)],
                          capture_output=True, text=True, check=True).stdout.strip()


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://mirror.lab.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.lab.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_the_mirror_of_a_deb822_source_is_used(tmp_path):
    assert uri(tmp_path, DEB822) == "http://mirror.lab.example/debian"


def test_the_mirror_of_a_one_line_source_is_used_options_and_all(tmp_path):
    text = ("deb http://proxy.lab.example:3142/security bookworm-security main\n"
            "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
            "http://proxy.lab.example:3142/debian bookworm main contrib\n")
    assert uri(tmp_path, list_=text) == "http://proxy.lab.example:3142/debian"


def test_debian_s_own_address_when_the_machine_names_none(tmp_path):
    assert uri(tmp_path) == "http://deb.debian.org/debian"
    assert uri(tmp_path, "Types: deb\nURIs: http://x.example/ubuntu\nSuites: jammy\n") == \
        "http://deb.debian.org/debian"
