"""The field checks the OpenAI and Anthropic request parsers share: an optional field's JSON type.

Each parser words its own errors (``Invalid type for 'n': ...`` vs ``n: expected ...``), so it
passes the function that builds its type error; what counts as which type is decided here once.

>>> def error(name, expected, value):
...     return InvalidRequest(f"{name}: expected {expected}, got {got(value)}", param=name)
>>> optional({"n": 2, "t": 1}, "t", float, error), optional({}, "n", int, error)
(1.0, None)
>>> optional({"n": True}, "n", int, error)
Traceback (most recent call last):
...
inferplane.errors.InvalidRequest: n: expected an integer, got bool
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inferplane.errors import InvalidRequest

#: What a parser's type error says it expected, by the Python type a field must have.
KINDS: dict[type, str] = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}

#: A parser's type error: ``(the field's name, what was expected, the value sent)``.
TypeErrorFor = Callable[[str, str, Any], InvalidRequest]


def optional(body: dict[str, Any], name: str, kind: type, type_error: TypeErrorFor,
             prefix: str = "") -> Any:
    """``body[name]`` if present and not null, checked against ``kind`` (a bool is no number;
    an integer is a ``float``, returned as one); else ``type_error(prefix + name, ...)``."""
    value: Any = body.get(name)
    if value is None:
        return None
    accepted: tuple[type, ...] = (int, float) if kind is float else (kind,)
    if not isinstance(value, accepted) or (isinstance(value, bool) and kind is not bool):
        raise type_error(prefix + name, KINDS[kind], value)
    return float(body[name]) if kind is float else value


def got(value: Any) -> str:
    """The type a client sent, as the errors name it: ``null`` or the Python type's name."""
    return "null" if value is None else type(value).__name__
