"""Emulator state to JSON and back, exactly, guided by the type annotations of its classes.

For the seed cache (sandbox/seed_cache.py): JSON rather than pickle, so that a file in the
sandbox folder can never run code when it is loaded. JSON has no sets, tuples or dataclasses;
the annotations say which a value was (``frozenset[str]``, ``tuple[str, Stored]``, ``Folder``),
so nothing in the file has to. Decoding is strict: a value that is not what its annotation says
raises ``StateFormatError``, which the cache takes as "generate anew".

A dataclass field whose name starts with ``_`` is a cache of values derived from the others
(``DriveFile._text``, ``Issue._words``): it is not written and starts empty again, as it did
after generating.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any

_PLAIN = (str, int, float, bool)


class StateFormatError(ValueError):
    """A value that does not have the type its annotation says."""


@cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """The kept fields of a dataclass with their resolved annotations."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, hints[f.name]) for f in dataclasses.fields(cls) if not f.name.startswith("_")
    )


def _union_arm(tp: Any, value: Any) -> Any:
    """The annotation a value of ``X | None`` has: None's or X's (one X only)."""
    arms = [a for a in typing.get_args(tp) if a is not type(None)]
    if value is None and len(arms) < len(typing.get_args(tp)):
        return type(None)
    if len(arms) != 1:
        raise StateFormatError(f"cannot tell which of {tp} a value is")
    return arms[0]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _check_plain_json(value: Any) -> Any:
    """Values under ``Any`` must be JSON's own (a tuple would come back a list)."""
    if value is None or type(value) in _PLAIN:
        return value
    if type(value) is list:
        return [_check_plain_json(v) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: _check_plain_json(v) for k, v in value.items()}
    raise StateFormatError(f"{type(value).__name__} is not plain JSON")


def encode(tp: Any, value: Any) -> Any:
    """``value``, annotated ``tp``, as JSON-ready lists, dicts and scalars."""
    if tp is Any:
        return _check_plain_json(value)
    if _is_union(tp):
        return None if value is None else encode(_union_arm(tp, value), value)
    if dataclasses.is_dataclass(tp):
        if type(value) is not tp:
            raise StateFormatError(f"expected {tp.__name__}, got {type(value).__name__}")
        return {name: encode(hint, getattr(value, name)) for name, hint in _fields(tp)}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and args[0] is str and isinstance(value, dict):
        if not all(type(k) is str for k in value):
            raise StateFormatError(f"keys of {tp} must be strings")
        return {k: encode(args[1], v) for k, v in value.items()}
    if origin in (set, frozenset) and isinstance(value, origin):
        return sorted(encode(args[0], v) for v in value)  # sorted: the same state, same bytes
    if origin is list and isinstance(value, list):
        return [encode(args[0], v) for v in value]
    if origin is tuple and isinstance(value, tuple):
        return [encode(t, v) for t, v in zip(_tuple_types(args, len(value)), value, strict=True)]
    if tp in _PLAIN and type(value) is tp:
        return value
    raise StateFormatError(f"{type(value).__name__} where {tp} was expected")


def decode(tp: Any, raw: Any) -> Any:
    """The value annotated ``tp`` that ``encode`` wrote as ``raw`` (parsed JSON)."""
    if tp is Any:
        return raw
    if _is_union(tp):
        arm = _union_arm(tp, raw)
        return None if arm is type(None) else decode(arm, raw)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        fields = _fields(tp)
        if type(raw) is not dict or set(raw) != {name for name, _ in fields}:
            raise StateFormatError(f"not the fields of {tp.__name__}")
        return tp(**{name: decode(hint, raw[name]) for name, hint in fields})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and type(raw) is dict:
        return {k: decode(args[1], v) for k, v in raw.items()}
    if origin in (set, frozenset, list) and type(raw) is list:
        return origin(decode(args[0], v) for v in raw)
    if origin is tuple and type(raw) is list:
        kinds = _tuple_types(args, len(raw))
        return tuple(decode(t, v) for t, v in zip(kinds, raw, strict=True))
    if tp in _PLAIN and type(raw) is tp:
        return raw
    raise StateFormatError(f"{type(raw).__name__} where {tp} was expected")


def _tuple_types(args: tuple[Any, ...], length: int) -> tuple[Any, ...]:
    if len(args) == 2 and args[1] is Ellipsis:
        return (args[0],) * length
    if len(args) != length:
        raise StateFormatError(f"a tuple of {length} where {len(args)} were expected")
    return args
