"""The lab file's cables: two port ends each, and the ways laghil may break
them (:class:`Fault`). Part of the lab model (:mod:`.model`)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from .fields import FAULT_KINDS, CableEnd, Name, NodeName, PortRef, _Model



class Fault(_Model):
    """One way to break a cable.

    YAML forms: ``link_down``, ``switch_shutdown``, ``virtual_pull`` or
    ``{pdu_outlet: "pdu1:4"}``; code reads ``kind`` and, for ``pdu_outlet``,
    ``pdu`` and ``outlet``.
    """

    kind: Literal[FAULT_KINDS]  # type: ignore[valid-type]
    pdu: Optional[NodeName] = None
    outlet: Optional[Annotated[int, Field(ge=1)]] = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value):
        expected = ("expected one of link_down, switch_shutdown, virtual_pull "
                    "or {pdu_outlet: \"<pdu>:<outlet>\"}")
        if isinstance(value, str):
            if value not in FAULT_KINDS or value == "pdu_outlet":
                raise ValueError(f"unknown fault {value!r}; {expected}")
            return {"kind": value}
        if isinstance(value, dict) and "kind" not in value:
            if list(value) != ["pdu_outlet"]:
                raise ValueError(f"unknown fault {value!r}; {expected}")
            pdu, sep, outlet = str(value["pdu_outlet"]).rpartition(":")
            if not sep or not pdu or not outlet.isdigit():
                raise ValueError(f"pdu_outlet {value['pdu_outlet']!r} must be \"<pdu>:<outlet number>\"")
            return {"kind": "pdu_outlet", "pdu": pdu, "outlet": int(outlet)}
        return value  # already normalised (e.g. a model_dump)

    @model_validator(mode="after")
    def _pdu_fields(self):
        if (self.kind == "pdu_outlet") != (self.pdu is not None and self.outlet is not None):
            raise ValueError("pdu and outlet are given with, and only with, kind pdu_outlet")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {
            "title": "Fault",
            "description": "How a cable can be broken.",
            "anyOf": [
                {"enum": ["link_down", "switch_shutdown", "virtual_pull"]},
                {
                    "type": "object",
                    "properties": {"pdu_outlet": {"type": "string", "pattern": r"^[^:]+:[0-9]+$"}},
                    "required": ["pdu_outlet"],
                    "additionalProperties": False,
                },
            ],
        }

    def __str__(self):
        return f"pdu_outlet {self.pdu}:{self.outlet}" if self.kind == "pdu_outlet" else self.kind


class Cable(_Model):
    """A cable between two ports, and the ways laghil may break it."""

    name: Name
    ends: tuple[CableEnd, CableEnd]
    faults: list[Fault] = Field(default_factory=list)
    speed: Optional[Annotated[int, Field(gt=0)]] = None  # Mb/s
    description: Optional[str] = None

    @property
    def a(self) -> PortRef:
        """The first end."""
        return PortRef(*self.ends[0].split(":", 1))

    @property
    def b(self) -> PortRef:
        """The second end."""
        return PortRef(*self.ends[1].split(":", 1))

    @property
    def refs(self) -> tuple[PortRef, PortRef]:
        return (self.a, self.b)

    def other_end(self, node: str, port: str) -> PortRef:
        """The end that is not ``node:port``."""
        here = PortRef(node, port)
        if here == self.a:
            return self.b
        if here == self.b:
            return self.a
        raise ValueError(f"cable {self.name!r} does not end at {here}")

    def touches(self, node: str) -> bool:
        return node in (self.a.node, self.b.node)

    @property
    def fault_kinds(self) -> list[str]:
        return [f.kind for f in self.faults]

    def has_fault(self, kind: str) -> bool:
        return kind in self.fault_kinds
