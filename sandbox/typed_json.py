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
from collections.abc import Callable
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
    return _decoder(tp)(raw)


Decoder = Callable[[Any], Any]


@cache
def _decoder(tp: Any) -> Decoder:
    """A function decoding values annotated ``tp``: the annotation is read once per type, not
    once per value (a warm start decodes some 40,000 values)."""
    if tp is Any:
        return lambda raw: raw
    if _is_union(tp):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(arms) != 1 or len(typing.get_args(tp)) != 2:
            raise StateFormatError(f"cannot tell which of {tp} a value is")
        arm = _decoder(arms[0])
        return lambda raw: None if raw is None else arm(raw)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_decoder(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict:
        value = _decoder(args[1])
        return lambda raw: {k: value(v) for k, v in _expect(raw, dict).items()}
    if origin in (set, frozenset, list):
        item = _decoder(args[0])
        return lambda raw: origin(item(v) for v in _expect(raw, list))
    if origin is tuple:
        return _tuple_decoder(args)
    if tp in _PLAIN:
        return lambda raw: _expect(raw, tp)
    raise StateFormatError(f"cannot decode {tp}")


def _dataclass_decoder(cls: type) -> Decoder:
    fields = _fields(cls)
    names = {name for name, _ in fields}

    def build(raw: Any) -> Any:
        if type(raw) is not dict or raw.keys() != names:
            raise StateFormatError(f"not the fields of {cls.__name__}")
        return cls(**{name: _decoder(hint)(raw[name]) for name, hint in fields})

    return build


def _tuple_decoder(args: tuple[Any, ...]) -> Decoder:
    def build(raw: Any) -> tuple[Any, ...]:
        kinds = _tuple_types(args, len(_expect(raw, list)))
        return tuple(_decoder(t)(v) for t, v in zip(kinds, raw, strict=True))

    return build


def _expect(raw: Any, kind: type) -> Any:
    if type(raw) is not kind:
        raise StateFormatError(f"{type(raw).__name__} where {kind.__name__} was expected")
    return raw


def _tuple_types(args: tuple[Any, ...], length: int) -> tuple[Any, ...]:
    if len(args) == 2 and args[1] is Ellipsis:
        return (args[0],) * length
    if len(args) != length:
        raise StateFormatError(f"a tuple of {length} where {len(args)} were expected")
    return args
