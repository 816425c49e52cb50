"""Load a lab file, reporting every problem as ``file:line: field: message``.

The YAML is composed into nodes (which carry line numbers) and turned into
plain Python data by hand, recording the line of every key and list item and
catching duplicate keys, which PyYAML would silently overwrite. Schema errors
(pydantic) and cross-check problems are then mapped back to those lines and
raised together as one :class:`~laghil.errors.LabError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import yaml
from pydantic import ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..errors import LabError
from .model import Lab, format_loc
from ..paths import shipped_dir

_MERGE_TAG = "tag:yaml.org,2002:merge"


# --------------------------------------------------------------------------
# Finding lab files

def default_labs_dir() -> Path:
    """``$LAGHIL_LABS_DIR``, else the checkout's ``labs/``, else the copy installed
    inside the package (laghil/labs)."""
    return shipped_dir("labs", "LAGHIL_LABS_DIR")


def available_labs(labs_dir: Union[str, Path, None] = None) -> list[str]:
    """Names of the labs in ``labs_dir`` (files ``<name>.yaml``), sorted."""
    d = Path(labs_dir) if labs_dir is not None else default_labs_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def _resolve(name_or_path, labs_dir) -> Path:
    text = str(name_or_path)
    is_path = (isinstance(name_or_path, Path) or os.sep in text or "/" in text
               or text.endswith((".yaml", ".yml")))
    if is_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise LabError(_display(path), ["lab file not found"])
        return path
    d = Path(labs_dir) if labs_dir is not None else default_labs_dir()
    path = d / f"{text}.yaml"
    if not path.is_file():
        labs = available_labs(d)
        raise LabError(_display(d), [f"unknown lab {text!r}; available labs: "
                                     f"{', '.join(labs) or '(none)'}"])
    return path


def _display(path: Path) -> str:
    """The path relative to the working directory when it is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


# --------------------------------------------------------------------------
# YAML with line numbers

class _Problem(Exception):
    def __init__(self, line, loc, message):
        super().__init__(message)
        self.line, self.loc, self.message = line, loc, message


class _Builder:
    """Turn a composed YAML node tree into plain data plus a key path -> line map."""

    def __init__(self):
        self.lines: dict[tuple, int] = {(): 1}
        self.problems: list[_Problem] = []
        self._constructor = SafeConstructor()
        self._stack: set[int] = set()

    def build(self, node, path=()):
        if isinstance(node, ScalarNode):
            return self._constructor.construct_object(node, deep=True)
        if id(node) in self._stack:
            raise _Problem(_line(node), path, "recursive YAML alias")
        self._stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.lines[_key(path + (i,))] = _line(item)
                    out.append(self.build(item, path + (i,)))
                return out
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            raise _Problem(_line(node), path, f"unsupported YAML node {node.tag}")
        finally:
            self._stack.discard(id(node))

    def _mapping(self, node, path):
        out, first = {}, {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                raise _Problem(_line(key_node), path, "mapping keys must be plain scalars")
            key = self._constructor.construct_object(key_node)
            line = _line(key_node)
            if key in first:
                self.problems.append(_Problem(
                    line, path + (key,), f"duplicate key {key!r}, first defined at line {first[key]}"))
                continue
            first[key] = line
            self.lines[_key(path + (key,))] = line
            out[key] = self.build(value_node, path + (key,))
        # "<<: *anchor" merges: explicit keys win, merged keys keep their own lines.
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, MappingNode):
                    raise _Problem(_line(src), path, "'<<' merges only mappings")
                for key, value in self._mapping(src, path).items():
                    out.setdefault(key, value)
        return out


def _key(loc) -> tuple:
    """Line map keys are tuples of strings so that int/str spellings of a key agree."""
    return tuple(str(part) for part in loc)


def _line(node) -> int:
    return node.start_mark.line + 1


def _line_of(lines: dict, loc: tuple) -> int:
    """The line of ``loc``, else of its nearest enclosing key that has one."""
    parts = _key(loc)
    while parts not in lines:
        parts = parts[:-1]
    return lines[parts]


# --------------------------------------------------------------------------
# Errors -> lines

def _message(err: dict) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "extra_forbidden":
        return f"unknown field {err['loc'][-1]!r}"
    if err["type"] == "missing":
        return "required field is missing"
    value = err.get("input")
    if err["type"] not in ("value_error", "assertion_error") and isinstance(value, (str, int, float)):
        shown = repr(value)
        msg += f" (got {shown if len(shown) <= 40 else shown[:37] + '...'})"
    return msg


def _problem_line(file: str, line: int, loc: tuple, message: str) -> str:
    field = format_loc(loc)
    return f"{file}:{line}: {field}: {message}" if field else f"{file}:{line}: {message}"


def _validation_problems(file, lines, exc: ValidationError) -> list[tuple[int, str]]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if loc and loc[-1] == "[key]":  # a bad dict key: point at the key itself
            loc = loc[:-1]
        out.append((_line_of(lines, loc), _problem_line(file, _line_of(lines, loc), loc, _message(err))))
    return out


# --------------------------------------------------------------------------
# Public entry points

def load_lab(name_or_path: Union[str, Path], labs_dir: Union[str, Path, None] = None) -> Lab:
    """Load and check a lab: a bare name (``rack3``) from ``labs_dir``, or a path.

    ``twin:NAME`` (or ``twin:PATH``): the virtual twin of that physical lab
    (:mod:`laghil.lab.twin`).

    Raises LabError listing every problem, one ``file:line: field: message`` each.
    """
    from .twin import PREFIX, is_twin_name, twin_of
    if is_twin_name(str(name_or_path)):
        return twin_of(load_lab(str(name_or_path)[len(PREFIX):], labs_dir))
    path = _resolve(name_or_path, labs_dir)
    file = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LabError(file, [f"{file}: cannot read lab file: {e}"]) from None
    data, lines = _parse(file, text)
    try:
        lab = Lab.model_validate(data, context={"defer_cross_checks": True})
    except ValidationError as e:
        problems = _validation_problems(file, lines, e)
        raise LabError(file, [p for _, p in sorted(problems, key=lambda x: x[0])]) from None
    cross = [(_line_of(lines, p.loc), _problem_line(file, _line_of(lines, p.loc), p.loc, p.message))
             for p in lab.cross_check()]
    if cross:
        raise LabError(file, [p for _, p in sorted(cross, key=lambda x: x[0])])
    lab._source = str(path)
    return lab


def _parse(file: str, text: str) -> tuple[dict, dict]:
    """YAML text -> (data, key path -> line). Raises LabError on YAML problems."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        what = ": ".join(x for x in (e.context, e.problem) if x)
        raise LabError(file, [f"{file}:{line}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as e:
        raise LabError(file, [f"{file}:1: YAML error: {e}"]) from None
    if root is None:
        raise LabError(file, [f"{file}:1: the lab file is empty"])
    if not isinstance(root, MappingNode):
        raise LabError(file, [f"{file}:{_line(root)}: a lab file is a mapping (name:, kind:, hosts:...)"])
    builder = _Builder()
    try:
        data = builder.build(root)
    except _Problem as p:
        builder.problems.append(p)
    except yaml.YAMLError as e:  # e.g. an unknown !tag
        mark = getattr(e, "problem_mark", None)
        builder.problems.append(_Problem(mark.line + 1 if mark else 1, (), f"YAML error: {getattr(e, 'problem', e)}"))
    if builder.problems:
        # Stop here: with keys overwritten, later errors would mislead.
        ordered = sorted(builder.problems, key=lambda p: p.line)
        raise LabError(file, [_problem_line(file, p.line, p.loc, p.message) for p in ordered])
    return data, builder.lines


def lab_schema() -> dict:
    """JSON Schema of a lab file (for editors and documentation)."""
    return Lab.model_json_schema()
