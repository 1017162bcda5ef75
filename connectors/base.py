"""The protocol every connector offers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from dsrflow.errors import DsrflowError
from dsrflow.plan import ExecutionReport, PlannedAction
from dsrflow.records import Record
from dsrflow.request import Subject


class Capability(StrEnum):
    DISCOVER = "discover"
    ERASE = "erase"
    RECTIFY = "rectify"
    RESTRICT = "restrict"
    SWEEP = "sweep"


class SourceUnavailable(DsrflowError, RuntimeError):
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


@dataclass
class SweepResult:
    """What one retention rule did (or, in a dry run, would do) in one place of a source."""

    table: str  # where: a table, a mail folder, a Jira project, a spreadsheet layout
    rule: str
    cutoff: str
    rows: int = 0
    groups: int = 0
    suppressed: int = 0
    batches: int = 0
    protected: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class SweepingConnector(Connector, Protocol):
    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """Apply the mapping's retention rules as of ``now``. ``protected`` are records of
        restricted subjects (found by ``discover``): they are stored, not processed, so they
        stay. ``dry_run`` counts what would go and changes nothing."""
        ...
