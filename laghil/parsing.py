"""The one error every parser of tool output raises on output it cannot read.

Parsers stay pure functions of the text. :func:`parser` wraps one so that
whatever the text (truncated, fields missing, wrong types, junk lines), the
caller gets either a result or a :class:`ParseError` naming the tool, the node
(``node=``, else the node a command's output came from: ``Result.stdout`` is a
:class:`~laghil.transport.framing.NodeText`), and how the output starts; never an
IndexError, KeyError or TypeError from deep inside.
"""

import functools

from .errors import LaghilError

# what a parser may raise from deep inside on output it does not understand: the
# usual IndexError, KeyError, TypeError, ValueError, and a library's own (TextFSM)
_RAW = Exception


class ParseError(LaghilError, ValueError):
    """Tool output laghil cannot read; names the tool and, when known, the node."""

    def __init__(self, tool, problem, node=None, head=""):
        self.tool, self.node, self.problem = tool, node, problem
        where = f"{node}: " if node else ""
        start = f" (output starts {head[:80]!r})" if head else " (empty output)"
        super().__init__(f"{where}cannot parse the output of {tool}: {problem}{start}")


def parser(tool):
    """Decorator: ``fn(text, ...)`` raises ParseError naming ``tool`` (and
    ``node=`` when given) instead of a raw exception; laghil's own errors pass
    through (as a ParseError naming the node, when one is given and the error
    does not name it yet)."""
    def wrap(fn):
        @functools.wraps(fn)
        def parse(*args, node=None, **kwargs):
            if node is None and args:
                node = getattr(args[0], "node", None)   # a command's output knows its node
            try:
                return fn(*args, **kwargs)
            except ParseError as e:
                if node and not e.node:
                    raise ParseError(e.tool, e.problem, node, _head(args)) from e
                raise
            except LaghilError as e:
                if node and not str(e).startswith(f"{node}:"):
                    raise ParseError(tool, str(e), node, _head(args)) from e
                raise
            except _RAW as e:
                raise ParseError(tool, f"{type(e).__name__}: {e}", node, _head(args)) from e
        parse.tool = tool
        return parse
    return wrap


def _head(args):
    if not args:
        return ""
    a = args[0]
    if isinstance(a, bytes):
        return a[:80].decode("latin-1")
    return a if isinstance(a, str) else repr(a)[:80]
