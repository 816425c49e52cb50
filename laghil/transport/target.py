"""What the transport needs to reach one node; built from the lab model."""

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class SshTarget:
    name: str                      # node name, used in every error and log line
    address: str
    port: int = 22
    user: str = "root"
    key_file: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)  # a secret: never logged
    known_hosts: Optional[str] = None  # path; None = ~/.ssh/known_hosts
    accept_unknown_host_keys: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    boot_timeout: float = 0.0      # wait this long for a node that went away mid-run
    sudo: bool = False             # prefix commands with sudo -n when user is not root
    jump: Optional["SshTarget"] = None
