"""What a source opened again within one request's run may reuse (issue 18).

One request opens a source several times: the preflight, each discovery round, the execution.
For a SQL source each opening built an engine and reflected every mapped table, which costs
more than the subject's lookups. Inside ``run_scope()``, ``scoped(key, build, close)`` gives
the value built first for ``key``; outside a scope it builds anew and the caller owns it, as
before. Kept values are closed when the scope ends.

A context variable, not a global or a thread-local: Prefect runs a flow's tasks in threads
that start from a copy of the flow's context, so they see the scope the flow runs in, while
flows run side by side in threads of their own each keep theirs; and nothing outlives the
request, so another request sees its sources as they are then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# A value is reused for this long after it was built, then built anew: a run that waited (an
# officer's approval pauses it for hours) sees its sources as they are after the wait, and no
# pooled connection idle since before the wait carries its writes.
REUSE_SECONDS = 300.0


@dataclass
class _Kept:
    value: Any
    close: Callable[[Any], None]
    built_at: float


@dataclass
class _Scope:
    kept: dict[Hashable, _Kept] = field(default_factory=dict)
    replaced: list[_Kept] = field(default_factory=list)  # too old, maybe still in use
    locks: dict[Hashable, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    def lock_for(self, key: Hashable) -> threading.Lock:
        # One lock per key: two tasks opening the same source build it once, and tasks
        # opening different sources do not wait for each other.
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())

    def close_all(self) -> None:
        with self.guard:
            self.closed = True
            everything = [*self.replaced, *self.kept.values()]
            self.replaced.clear()
            self.kept.clear()
        errors = []
        for kept in everything:
            try:
                kept.close(kept.value)
            except Exception as exc:  # close the rest; the first failure is raised after
                errors.append(exc)
        if errors:
            raise errors[0]


_current: ContextVar[_Scope | None] = ContextVar("dsrflow_run_scope", default=None)


@contextmanager
def run_scope() -> Iterator[None]:
    """One request's run: sources opened again inside it reuse what their first opening built.
    Entered inside another scope, it joins that one (the outer one closes)."""
    if _current.get() is not None:
        yield
        return
    scope = _Scope()
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)
        scope.close_all()


@dataclass
class Held(Generic[T]):
    """A value from ``scoped``; ``release()`` closes it unless its scope keeps it."""

    value: T
    _close: Callable[[T], None] | None

    def release(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close(self.value)


def scoped(key: Hashable, build: Callable[[], T], close: Callable[[T], None]) -> Held[T]:
    """The value kept for ``key`` in the current scope, built (and kept) if there is none or
    it is older than REUSE_SECONDS; outside a scope a new one, which ``release()`` closes. A
    build that raises keeps nothing: the next opening tries again."""
    scope = _current.get()
    if scope is None or scope.closed:  # a thread that outlived its scope: nothing kept
        return Held(build(), close)
    with scope.lock_for(key):
        kept = scope.kept.get(key)
        if kept is not None and time.monotonic() - kept.built_at <= REUSE_SECONDS:
            return Held(kept.value, None)
        value = build()
        with scope.guard:
            if kept is not None:
                scope.replaced.append(kept)
            scope.kept[key] = _Kept(value, close, time.monotonic())
    return Held(value, None)
