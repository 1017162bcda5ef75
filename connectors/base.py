"""The protocol every connector offers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, Self, runtime_checkable

from dsrflow.errors import DsrflowError
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
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


# The hint the retention sweep puts on an action it hands over because the record's legal hold
# has ended (flows/retention.py): the sweep's day, ISO.
SWEEP_DAY = "sweep_day"


def hold_checked_on(action: PlannedAction, today: dt.date) -> dt.date:
    """The day a record's legal hold is checked against before it is erased: today, or for
    an action the retention sweep hands over at the end of the record's hold, the sweep's day
    (``as_of``, which every retention rule follows). A record whose hold now ends later than
    that (it changed since planning) is still found held; any other action, whatever its
    ``keep_until``, is checked against today."""
    day = action.hints.get(SWEEP_DAY)
    return max(today, dt.date.fromisoformat(day)) if isinstance(day, str) else today


def not_carried_out(action: PlannedAction) -> ActionResult:
    """The answer, the same in every kind, to an action handed to a method that does not do
    it: a KEEP is skipped with its reason, anything else fails. Never dropped in silence,
    never reported done."""
    if action.action == Action.KEEP:
        return ActionResult(
            record_id=action.record_id,
            outcome=Outcome.SKIPPED,
            detail=f"kept: {action.reason or 'by the plan'}",
        )
    return ActionResult(
        record_id=action.record_id,
        outcome=Outcome.FAILED,
        detail=f"cannot {action.action.value} here",
    )


@runtime_checkable
class Connector(Protocol):
    """What every connector is: a named source, open until closed (a context manager). What
    it can do is which of the protocols below it implements, one per right; a delete-only API
    (an analytics user-deletion endpoint) implements ``Erasing`` without ``Discovering``."""

    name: str

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Discovering(Connector, Protocol):
    def discover(self, subject: Subject) -> Iterator[Record]:
        """Stream every record of the subject; never the whole source in memory. Where the
        source cannot be fully searched, raise ``SourceUnavailable`` (or report what was not
        searched): a missing answer is never "nothing there"."""
        ...


@runtime_checkable
class Erasing(Connector, Protocol):
    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Carry out the delete/redact actions of an approved plan, idempotently: a second run
        finds them done. A write is never blindly resent (connectors/writes.py)."""
        ...


@runtime_checkable
class Rectifying(Connector, Protocol):
    def rectify(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Write the plan's corrections and read each one back."""
        ...


@runtime_checkable
class Restricting(Connector, Protocol):
    def restrict(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Mark the records so that no flow processes them (a source without a mark leaves it
        to the ledger's restriction list: it does not implement this)."""
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
    levels: dict[str, int] = field(default_factory=dict)  # events published per level
    pending: int = 0  # events counted and deleted, published when their period has closed


@runtime_checkable
class Sweeping(Connector, Protocol):
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
        stay. ``dry_run`` counts what would go and changes nothing. ``min_group_size``
        overrides the k of the mapping's aggregations (kinds without aggregation have none)."""
        ...


@dataclass(frozen=True)
class Finding:
    """A place that may hold personal data outside the mapping (``dsr coverage``). It names
    the place and says what was counted there, never what was read. ``place`` is safe to keep
    anywhere (a table.column, a project key, a Drive file id, a Graph user id); ``label`` is
    what the officer knows it by where that may itself be personal data (a spreadsheet's
    title, a mailbox address): shown at the terminal, never stored in Prefect or the ledger."""

    source: str
    what: str  # the kind of place: table, column, project, service_desk, sheet, mailbox
    place: str
    evidence: str  # counts only: "3 of 20 sampled values look like e-mail addresses"
    snippet: str  # the mapping entry (YAML) that would cover it
    label: str | None = None


@runtime_checkable
class Surveying(Connector, Protocol):
    def survey(self) -> list[Finding]:
        """Look for personal data outside the mapping: places the source has that no mapping
        entry names. Reads samples and counts (bounded), never copies contents; a place that
        cannot be looked at raises ``SourceUnavailable`` (not "nothing there")."""
        ...


PROTOCOLS: dict[Capability, type] = {
    Capability.DISCOVER: Discovering,
    Capability.ERASE: Erasing,
    Capability.RECTIFY: Rectifying,
    Capability.RESTRICT: Restricting,
    Capability.SWEEP: Sweeping,
}


def capabilities(connector: object) -> frozenset[Capability]:
    """What a connector can do: the protocols it implements."""
    return frozenset(c for c, protocol in PROTOCOLS.items() if isinstance(connector, protocol))


class Closing:
    """The context-manager half of ``Connector``: ``with open_connector(...) as c:``."""

    def close(self) -> None:
        """Release what the connector holds (clients, connections); idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
