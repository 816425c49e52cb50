"""How the controller reaches a lab's node: the SshTarget of a host or switch
(jump hosts resolved, the password read from its environment variable, the
virtual rack's own key and known_hosts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

from ..errors import LabError
from ..transport.target import SshTarget
from ..vlab.paths import lab_state_dir


def vlab_state_dir(lab_name: str, env: Optional[Mapping[str, str]] = None) -> Path:
    """Where the virtual rack keeps its state (SSH key, known_hosts, guest files)."""
    return lab_state_dir(lab_name, env)


def ssh_target(lab, node_name: str, env: Optional[Mapping[str, str]] = None,
               _chain: tuple = ()) -> SshTarget:
    """What the transport needs to reach ``node_name`` (jump hosts resolved).

    The password is read from ``env`` (default ``os.environ``) through
    ``management.password_env``. For a virtual lab a missing key_file or
    known_hosts is the virtual rack's own, under :func:`vlab_state_dir`.
    """
    from .model import Host, Switch
    env = os.environ if env is None else env
    node = lab.node(node_name)
    if not isinstance(node, (Host, Switch)):
        raise LabError(lab._where(), [f"node {node_name!r} is a {type(node).__name__.lower()}, "
                                       "not reachable over SSH"])
    if node_name in _chain:
        raise LabError(lab._where(), [f"jump hosts loop: {' -> '.join(_chain + (node_name,))}"])
    m = node.management
    key_file, known_hosts = m.key_file, m.known_hosts
    if lab.rack_backed:
        state = vlab_state_dir(lab.name, env)
        key_file = key_file or str(state / "id_ed25519")
        known_hosts = known_hosts or str(state / "known_hosts")
    password = None
    if m.password_env:
        password = env.get(m.password_env) or None
        if password is None and not key_file:
            raise LabError(lab._where(), [
                f"node {node_name!r}: environment variable {m.password_env} "
                "(management.password_env) is not set and no key_file is given"])
    jump = None
    if m.jump:
        jump = ssh_target(lab, m.jump, env, _chain + (node_name,))
    return SshTarget(
        name=node_name,
        address=m.address,
        port=m.port,
        user=m.user,
        key_file=os.path.expanduser(key_file) if key_file else None,
        password=password,
        known_hosts=os.path.expanduser(known_hosts) if known_hosts else None,
        accept_unknown_host_keys=m.accept_unknown_host_keys,
        connect_timeout=m.connect_timeout,
        command_timeout=m.command_timeout,
        boot_timeout=m.boot_timeout,
        sudo=m.sudo,
        jump=jump,
    )
