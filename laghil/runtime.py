"""A lab in use: its model, its SSH sessions, its nodes, cables and (virtual) rack.

Usable from scripts and from the pytest plugin alike:

    with LabRuntime(load_lab("virtual")) as rt:   # boots the virtual rack if needed
        rt.node("h1").run("ip -br link")
        rt.cable("h1-h2-a").pull(defer=undo)   # undo: a callable that keeps the revert
"""

import os
import secrets

from .cable import CableControl
from .errors import LabError, UnknownNode
from .node import Node
from .transport.cmdlog import CommandLog
from .transport.redact import MIN_SECRET_LEN, Redactor
from .transport.pool import Sessions


class LabRuntime:
    def __init__(self, lab, log=None, redactor=None, mode="shell", env=None, say=print):
        self.lab = lab
        self.log = log if log is not None else CommandLog()
        self.redactor = redactor if redactor is not None else Redactor()
        self.env = dict(os.environ if env is None else env)
        self.pdu_agents = []
        self.say = say
        self.rack = None
        self.started_rack = False
        self.boot_seconds = None
        if lab.rack_backed:
            from .vlab.rack import Rack
            self.rack = Rack(lab, log=say)
            for pdu in lab.pdus.values():  # the virtual PDU gets a per-run community
                if pdu.model == "virtual" and pdu.community_env and not self.env.get(pdu.community_env):
                    self.env[pdu.community_env] = secrets.token_hex(12)
        self._register_secrets()
        self.sessions = Sessions(self._target, log=self.log, redactor=self.redactor, mode=mode)
        self._nodes = {}
        # a callable(fault label) -> why it may not be injected now, or None: the
        # pytest plugin refuses a fault in a test not marked disruptive
        self.disruption_guard = None
        self.lease_held = None      # the Lease a session holds on the lab (pytest plugin)

    def _register_secrets(self):
        """Every secret the lab names (passwords, SNMP communities) is redacted
        everywhere. One too short to be masked (a log would show it) is refused
        before anything uses it, naming its variable, never its value."""
        named = [getattr(spec.management, "password_env", None)
                 for spec in [*self.lab.hosts.values(), *self.lab.switches.values()]]
        named += [getattr(spec, attr, None)
                  for spec in [*self.lab.pdus.values(), *self.lab.bmcs.values()]
                  for attr in ("community_env", "password_env")]
        for env in named:
            value = self.env.get(env) if env else None
            if value and not self.redactor.add(value):
                raise LabError(f"lab {self.lab.name!r}", [
                    f"the secret in ${env} has {len(value)} character(s): too short to be "
                    f"masked in logs and reports (at least {MIN_SECRET_LEN}); refused before "
                    "any use"])

    def _target(self, name):
        return self.lab.ssh_target(name, env=self.env)

    # ---- lifecycle -----------------------------------------------------------------
    def start(self, boot=True, pdus=True, detach=False):
        """Make the lab usable: boot the virtual rack if it is not up (and remember to
        stop it); ``pdus``: start its virtual PDUs too (else :meth:`start_pdus` later,
        once the lab's lease is held: two controllers must not both serve them);
        ``detach``: a rack booted here outlives this process (``--keep-rack``)."""
        if self.rack is not None and boot:
            was_up = self.rack.is_running()
            self.boot_seconds = self.rack.up(detach=detach, reuse=True)
            self.started_rack = self.boot_seconds > 0 and not was_up
            if pdus:
                self.start_pdus()
        return self

    def start_pdus(self):
        if self.rack is not None and not self.pdu_agents:
            self._start_virtual_pdus()
        return self

    def _start_virtual_pdus(self):
        """The virtual rack's PDU: a real SNMP agent on 127.0.0.1 whose outlets power guests."""
        from .vlab.snmp_pdu import VirtualPdu
        for name, pdu in self.lab.pdus.items():
            if pdu.model == "virtual":
                agent = VirtualPdu(self.lab, self.rack, pdu_name=name, env=self.env)
                agent.start()
                self.pdu_agents.append(agent)

    def lease(self, ttl=None, run_id=None):
        """The lab's lease (:mod:`laghil.lease`) on every host, over SSH sessions
        of its own (a long command on a test's session never delays a renewal);
        not yet acquired."""
        from .lease import DEFAULT_TTL_S, Lease
        from .transport.ssh import SshSession
        sessions = {n: SshSession(self._target(n), log=CommandLog(self.redactor, logger_level=None),
                                  redactor=self.redactor) for n in self.lab.hosts}
        return Lease(self.lab.name, sessions, ttl=ttl or DEFAULT_TTL_S, run_id=run_id,
                     say=self.say)

    def close(self, stop_rack=None):
        for agent in self.pdu_agents:
            agent.stop()
        self.pdu_agents.clear()
        for session in self.sessions:          # every session's private folder
            try:
                session.remove_workdir()
            except Exception as e:             # a node that is gone: nothing to remove
                self.say(f"laghil: {session.name}: private folder not removed: {e}")
        self.sessions.close_all()
        if self.rack is not None and (self.started_rack if stop_rack is None else stop_rack):
            self.rack.down()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- parts -----------------------------------------------------------------------
    def node(self, name):
        if name not in self._nodes:
            if name in self.lab.hosts:
                spec, role = self.lab.hosts[name], "host"
            elif name in self.lab.switches:
                spec, role = self.lab.switches[name], "switch"
            else:
                self.lab.node(name)  # raises UnknownNode naming the lab and known nodes
                raise UnknownNode(f"lab {self.lab.name!r}: {name!r} is not a host or switch")
            self._nodes[name] = Node(name, spec, role, self.sessions.get(name))
        return self._nodes[name]

    @property
    def hosts(self):
        return [self.node(n) for n in self.lab.hosts]

    @property
    def switches(self):
        return [self.node(n) for n in self.lab.switches]

    @property
    def ssh_nodes(self):
        return self.hosts + self.switches

    @property
    def shell_nodes(self):
        """The nodes that take shell commands (:attr:`laghil.node.Node.has_shell`)."""
        return [n for n in self.ssh_nodes if n.has_shell]

    def cable(self, a, b=None, index=0):
        """A cable by name, or the ``index``-th cable between nodes ``a`` and ``b``."""
        if b is None:
            c = self.lab.cable(a)
        else:
            between = self.lab.cables_between(a, b)
            if len(between) <= index:
                raise UnknownNode(f"lab {self.lab.name!r}: no cable #{index} between {a} and {b} "
                                  f"({len(between)} cable(s))")
            c = between[index]
        return CableControl(self, c)

    @property
    def cables(self):
        return [self.cable(c.name) for c in self.lab.cables]
