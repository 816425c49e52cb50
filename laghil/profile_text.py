"""A derived profile written as text that keeps its base's comments.

``laghil profile derive`` produces a profile as data (laghil.derive). Written
with a plain YAML dump, the base's comments (what each threshold means, how a
platform term such as igb's link-down delay was measured) would be lost, and
the virtual rack's own profile is the command's output. So the text is the
base file's, block by block: every top-level section the derivation leaves
as it was (thresholds, rdma, switch_lag, load...) is copied with its
comments; ``allowances`` is copied per kind where no case of that kind was
derived (``linkdown_ms``: a platform term with its measurement beside it) and
written anew where one was; ``name``, ``version``, ``description``,
``platform`` and ``derivations`` are the derivation's. Lines this module
writes start with ``# [derived]`` and are dropped when the output is the
base of a later derivation. The result is checked: it loads to exactly the
derived data, or nothing is written.
"""

import re

import yaml

MARK = "# [derived]"
NOTES = {"platform": "the runs' lab, kernels, NICs (node:port) and QEMU",
         "derivations": "per allowance kind and case: the healthy repetitions it was derived "
                        "from and the rule (laghil/derive.py)"}


def _key(line, indent):
    m = re.match(rf"^ {{{indent}}}([A-Za-z0-9_.@:+-]+):(\s|$)", line)
    return m[1] if m else None


def split_blocks(lines, indent):
    """[(key, [lines])] of the mapping entries at ``indent`` spaces; the comment
    and blank lines above an entry belong to it; what comes before the first
    entry is (None, lines)."""
    blocks, pending, cur = [], [], None
    for line in lines:
        k = _key(line, indent)
        if k is not None:
            if cur is not None:
                blocks.append(cur)
            elif pending:
                blocks.append((None, pending))
                pending = []
            cur = (k, pending + [line])
            pending = []
        elif cur is not None and (line.startswith(" " * (indent + 1)) and line.strip()
                                  and not line.lstrip().startswith("#")):
            cur[1].extend(pending + [line])     # the entry's own body
            pending = []
        else:
            pending.append(line)
    if cur is not None:
        cur[1].extend(pending)
        blocks.append(cur)
    elif pending:
        blocks.append((None, pending))
    return blocks


def _dump(key, value, indent=0):
    text = yaml.safe_dump({key: value}, sort_keys=False, width=100, allow_unicode=True)
    pad = " " * indent
    return [pad + line if line else line for line in text.splitlines()]


def _parts(body, indent):
    """(the comment lines above an entry, the entry's own lines)."""
    i = next(i for i, x in enumerate(body) if _key(x, indent) is not None)
    return body[:i], body[i:]


def _same(entry, key, value, indent=0):
    try:
        return yaml.safe_load("\n".join(x[indent:] for x in entry)) == {key: value}
    except yaml.YAMLError:
        return False


def render(derived, base_text, header):
    """The text of ``derived`` (laghil.derive.derive_profile's dict) laid on
    ``base_text`` (its base profile's file); ``header``: comment lines for the
    top. ValueError when the text would not load back to ``derived``."""
    lines = [x for x in base_text.splitlines() if not x.lstrip().startswith(MARK)]
    derived_kinds = set(derived.get("derivations") or {})
    out = [f"{MARK} {h}" for h in header]
    done = set()
    for key, body in split_blocks(lines, 0):
        if key is None:
            out += body
            continue
        if key not in derived:
            continue            # a section the derivation dropped
        done.add(key)
        lead, entry = _parts(body, 0)
        if key == "allowances":
            out += lead + ([f"{MARK} per kind: the derived cases (their derivation under "
                            "`derivations`), and the base's mode", f"{MARK} keys and "
                            "defaults for what the runs did not measure"]
                           if derived_kinds else [])
            out += ["allowances:"] + _allowances(entry[1:], derived["allowances"], derived_kinds)
            continue
        out += lead + ([f"{MARK} {NOTES[key]}"] if key in NOTES else [])
        out += entry if _same(entry, key, derived[key]) else _dump(key, derived[key])
    for key, value in derived.items():
        if key not in done:
            out += ([""] + ([f"{MARK} {NOTES[key]}"] if key in NOTES else [])
                    + _dump(key, value))
    text = "\n".join(out).rstrip("\n") + "\n"
    if yaml.safe_load(text) != derived:
        raise ValueError("the profile's text does not load back to the derived profile")
    return text


def _allowances(entry, allowances, derived_kinds):
    """The lines under ``allowances:``: a kind the derivation did not touch as
    the base wrote it (its comments kept), every other one written anew below
    its base comments."""
    out, seen = [], set()
    for kind, body in split_blocks(entry, 2):
        if kind is None:
            out += body
            continue
        if kind not in allowances:
            continue
        seen.add(kind)
        lead, kentry = _parts(body, 2)
        out += lead
        out += (kentry if kind not in derived_kinds and _same(kentry, kind, allowances[kind], 2)
                else _dump(kind, allowances[kind], indent=2))
    for kind, table in allowances.items():
        if kind not in seen:
            out += _dump(kind, table, indent=2)
    return out
