"""Switches with a vendor CLI (a NOS), not a POSIX shell: the CLI channel, the
checks every command word passes, and the base of the NOS drivers.

A vendor CLI is not a shell: nothing is quoted or wrapped; instead every word
laghil puts into a command (a port, a LAG number) must match :data:`CLI_WORD`,
so that no input can add a command. The channel is netmiko's (a maintained
library that knows each NOS's prompts, paging and config mode) over the lab's
SSH target, through its jump host when it has one; the password comes from the
lab's ``password_env`` and is redacted from every log like every other secret.

A NOS driver is builders (pure: the config lines of one change and of its
undo) and parsers (pure: the NOS's output -> :class:`~.base.SwitchLag`),
tested on sample output; this base runs them: it reads the switch first and
refuses a LAG number or a port that is not laghil's, registers the undo, sends
the change, and turns a CLI error line into :class:`~.base.SwitchRefused`.
"""

import os
import re
import shutil
import tempfile

from ...parsing import parser
from ...transport.connect import verified_host_key
from .base import (CLI_WORD, MadeLag, SwitchDriver, SwitchError, SwitchRefused,  # noqa: F401
                   check_cli_word)

# lines with which a NOS says a command failed (EOS/NX-OS/Onyx "% ...", Onyx
# '% Unrecognized command "..."', NX-OS "ERROR:")
ERROR_LINE = re.compile(r"^\s*(% ?(Invalid|Incomplete|Ambiguous|Unrecognized|Error|Cannot|Port"
                        r"|Interface)"
                        r"|ERROR:|Error:)", re.M)


def lag_number(name, low=1, high=4096):
    """laghil's LAG name (``lglag2``) -> the NOS's port-channel number (2)."""
    m = re.search(r"(\d+)$", name or "")
    n = int(m.group(1)) if m else None
    if n is None or not low <= n <= high:
        raise SwitchError(f"LAG name {name!r}: needs a trailing number in {low}..{high} for "
                          "the switch's port-channel")
    return n


@parser('show version')
def parse_version(text, pattern):
    """The NOS version out of ``show version`` (group 1 of ``pattern``), or None."""
    m = re.search(pattern, text or "", re.M) if pattern else None
    return m.group(1).strip() if m else None


def cli_error(output):
    """The first line of ``output`` with which the NOS refused a command, or None."""
    m = ERROR_LINE.search(output or "")
    if not m:
        return None
    start = output.rfind("\n", 0, m.start()) + 1
    end = output.find("\n", m.start())
    return output[start:end if end >= 0 else None].strip()


class NetmikoChannel:
    """A CLI session to a NOS (netmiko ``device_type``) over the node's SSH
    target; connected on first use. ``send`` runs one show command,
    ``config`` a list of configuration lines in config mode."""

    def __init__(self, session, device_type):
        self.session, self.device_type = session, device_type
        self._conn = None

    def _connect(self):
        try:
            from netmiko import ConnectHandler
        except ImportError:
            raise SwitchError(f"switch {self.session.name}: the NOS drivers need netmiko "
                              "(pip install laghil[nos])") from None
        t = self.session.target
        kw = dict(device_type=self.device_type, host=t.address, port=t.port, username=t.user,
                  timeout=t.connect_timeout, conn_timeout=t.connect_timeout)
        if t.password:
            kw["password"] = t.password
        if t.key_file:
            kw.update(use_keys=True, key_file=t.key_file)
        # the host key checked as laghil's own sessions check it (HostKeyError
        # naming the node otherwise); netmiko is then given that key and no other,
        # strictly (it would accept any key by default: a password to whoever answers)
        hostname, key = verified_host_key(self.session)
        folder = tempfile.mkdtemp(prefix="laghil-known-")          # 0700, this user's
        known = os.path.join(folder, "known_hosts")
        with open(known, "w") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        kw.update(ssh_strict=True, system_host_keys=False, alt_host_keys=True,
                  alt_key_file=known)
        if t.jump is not None and self.session.jump is not None:
            kw["sock"] = self.session.jump.open_tunnel(t.address, t.port, t.connect_timeout,
                                                       t.name)
        try:
            conn = ConnectHandler(**kw)
            if not conn.check_enable_mode():     # a NOS that logs in unprivileged
                conn.enable()
            self._conn = conn
        except Exception as e:  # noqa: BLE001 - netmiko's many connection errors
            msg = self.session.redactor.redact(str(e)) if self.session.redactor else str(e)
            raise SwitchError(f"switch {t.name}: CLI session ({self.device_type}) to "
                              f"{t.address}:{t.port} failed: {msg}") from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self._conn

    def send(self, command):
        conn = self._conn or self._connect()
        return conn.send_command(command)

    def config(self, lines):
        conn = self._conn or self._connect()
        return conn.send_config_set(list(lines))

    def close(self):
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


class NosSwitch(SwitchDriver):
    """Base of the NOS drivers: subclasses give ``device_type`` and the
    builders / parsers; the flow (read, refuse, undo first, change, check) is here."""

    device_type = None
    has_shell = False

    def __init__(self, node, channel=None):
        super().__init__(node)
        self.cli = channel or NetmikoChannel(node.session, self.device_type)

    # ---- builders (pure), per platform
    def lag_create_lines(self, number, ports, mode, lacp_rate, min_links):
        raise NotImplementedError

    def lag_delete_lines(self, number, ports):
        raise NotImplementedError

    def shutdown_lines(self, port, down):
        raise NotImplementedError

    version_command = "show version"
    version_pattern = None          # a regex whose group 1 is the NOS version

    def describe(self):
        text = self.cli.send(self.version_command)
        return {"platform": self.platform, "version": parse_version(text, self.version_pattern),
                "lag_limit": "unknown: not read by laghil's driver"}

    # ---- reads, per platform
    def lags(self):
        """{number: SwitchLag} of every LAG on the switch."""
        raise NotImplementedError

    def snapshot(self):
        lags = {f"port-channel{n}": {"members": sorted(lag.members), "mode": lag.mode}
                for n, lag in sorted(self.lags().items())}
        return {"lags": lags, "unread": [f"port admin state, VLANs and addresses (not read by "
                                         f"laghil's {self.platform} driver)"]}

    # ---- the flow
    def _config(self, lines, what):
        out = self.cli.config(lines)
        err = cli_error(out)
        if err:
            raise SwitchRefused(f"switch {self.node.name}: {what}: {err}", err)
        return out

    def port_shutdown(self, port, *, defer):
        port = self.check_shut_port(port)
        defer(self.port_up_undo(port))
        self._config(self.shutdown_lines(port, True), f"shutdown {port}")

    def lag_remove(self, name, ports):
        """Remove port-channel ``name`` laghil made over ``ports``: nothing when it is
        gone already (the undo is idempotent), else the removal, its CLI reply
        checked (SwitchRefused naming the switch and the NOS's error)."""
        number = lag_number(name)
        ports = [self._port(p) for p in ports]
        if number not in self.lags():
            return
        self._config(self.lag_delete_lines(number, ports), f"remove LAG {name}")

    def port_no_shutdown(self, port):
        self._config(self.shutdown_lines(self._port(port), False), f"no shutdown {port}")

    def lag_create(self, name, ports, mode, *, defer, lacp_rate="fast", min_links=None, **_):
        if mode not in ("static", "lacp"):
            raise SwitchError(f"switch {self.node.name}: LAG mode {mode!r} (static or lacp)")
        number = lag_number(name)
        ports = [self._port(p) for p in ports]
        have = self.lags()
        why = []
        if number in have:
            why.append(f"port-channel {number} already exists and laghil did not make it")
        for n, lag in have.items():
            taken = sorted(set(ports) & set(lag.members))
            if taken:
                why.append(f"{', '.join(taken)} already in port-channel {n}")
        if why:
            raise SwitchError(f"switch {self.node.name}: refusing to create LAG {name} over "
                              f"{', '.join(ports)}: " + "; ".join(why))

        undo = self.lag_remove_undo(name, ports)
        defer(undo)
        try:
            self._config(self.lag_create_lines(number, ports, mode, lacp_rate, min_links),
                         f"LAG {name} ({mode}) over {', '.join(ports)}")
        except SwitchRefused as e:
            undo()
            left = [f"port-channel {number}"] if number in self.lags() else []
            raise SwitchRefused(str(e), e.reason, left) from None
        return MadeLag(self.node.name, name, tuple(ports), mode,
                       lambda: self.lag_remove(name, ports))

    def lag_state(self, name):
        number = lag_number(name)
        lag = self.lags().get(number)
        if lag is None:
            raise SwitchError(f"switch {self.node.name}: no port-channel {number} ({name})")
        return lag


