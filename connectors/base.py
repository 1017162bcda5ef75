"""The protocol every connector offers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

from dsrflow.plan import ExecutionReport, PlannedAction
from dsrflow.records import Record
from dsrflow.request import Subject


class Capability(StrEnum):
    DISCOVER = "discover"
    ERASE = "erase"
    RECTIFY = "rectify"
    RESTRICT = "restrict"


class SourceUnavailable(RuntimeError):
    """A source that cannot be reached or keeps failing: the request must not pass as complete."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"source {source!r} is unavailable: {reason}")


@runtime_checkable
class Connector(Protocol):
    """Every connector discovers; the ones whose ``capabilities`` say so also erase, rectify
    and restrict (``ErasingConnector``)."""

    name: str
    capabilities: frozenset[Capability]

    def discover(self, subject: Subject) -> Iterator[Record]:
        """Stream every record of the subject; never the whole source in memory."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ErasingConnector(Connector, Protocol):
    def erase(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        """Carry out delete/redact actions of a plan, idempotently: a second run is a no-op."""
        ...
