"""Parts of the mapping format that every kind of source shares."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Protocol, runtime_checkable

from dateutil.relativedelta import relativedelta
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record
from dsrflow.request import Subject

CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


def _check_category(value: str) -> str:
    if not CATEGORY_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a data category: use dotted lower-case names such as "
            "user.contact.email"
        )
    return value


DataCategory = Annotated[str, AfterValidator(_check_category)]


class Strict(BaseModel):
    """Mappings are hand-written: a misspelt key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalBasis(StrEnum):
    """GDPR Art. 6(1)(a)-(f)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class CategoryUse(Strict):
    """Why a category of data is held: the Art. 15(1)(a), (d) information."""

    purposes: list[str] = Field(min_length=1)
    legal_basis: LegalBasis
    consent_purpose: str | None = Field(
        default=None,
        description="for legal_basis consent: the consent purpose it rests on, e.g. analytics",
    )
    retention: str = Field(min_length=1, description="period or the criteria that fix it")

    @model_validator(mode="after")
    def _consent_needs_purpose(self) -> CategoryUse:
        if self.legal_basis == LegalBasis.CONSENT and not self.consent_purpose:
            raise ValueError("legal_basis consent needs consent_purpose (e.g. analytics)")
        return self


class Duration(Strict):
    years: int = Field(default=0, ge=0)
    months: int = Field(default=0, ge=0)
    days: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _not_zero(self) -> Duration:
        if not (self.years or self.months or self.days):
            raise ValueError("a duration needs years, months or days")
        return self

    def as_delta(self) -> relativedelta:
        return relativedelta(years=self.years, months=self.months, days=self.days)

    def _parts(self) -> list[tuple[int, str]]:
        return [
            (n, unit) for n, unit in ((self.years, "y"), (self.months, "m"), (self.days, "d")) if n
        ]

    def short(self) -> str:
        """``3y6m`` for three years and six months."""
        return "".join(f"{n}{unit}" for n, unit in self._parts())

    def in_words(self) -> str:
        """``3 years 6 months``."""
        words = {"y": "year", "m": "month", "d": "day"}
        return " ".join(f"{n} {words[u]}{'s' if n != 1 else ''}" for n, u in self._parts())


class MaskingStrategy(StrEnum):
    """What erasure does to one column (the registry lives with the executing connector)."""

    SET_NULL = "set_null"
    HMAC_SHA256 = "hmac_sha256"
    FIXED_TEXT = "fixed_text"
    KEEP = "keep"


class Masking(Strict):
    strategy: MaskingStrategy
    value: str | None = Field(default=None, description="the text written by fixed_text")

    @model_validator(mode="after")
    def _fixed_needs_value(self) -> Masking:
        if self.strategy == MaskingStrategy.FIXED_TEXT and self.value is None:
            raise ValueError("strategy fixed_text needs a value")
        if self.strategy != MaskingStrategy.FIXED_TEXT and self.value is not None:
            raise ValueError(f"strategy {self.strategy.value} takes no value")
        return self


class LegalHold(Strict):
    """A law obliges the controller to keep these records for a time (e.g. Bookkeeping Act §13)."""

    reason: str = Field(min_length=1)
    duration: Duration
    counts_from: str = Field(description="the field whose date the duration counts from")
    round_to_year_end: bool = Field(
        default=False, description="count from the end of that financial year, as §13 does"
    )

    def ends_on(self, start: dt.date) -> dt.date:
        """The first day the record may be erased, counting from ``start``."""
        if self.round_to_year_end:
            start = dt.date(start.year, 12, 31)
        return start + self.duration.as_delta()


GROUP_SOURCE = re.compile(
    r"^(day\((?P<day>\w+)\)|(?P<table>\w+)\.(?P<joined>\w+)|(?P<column>\w+))$"
)


def _check_group_source(value: str) -> str:
    if not GROUP_SOURCE.match(value):
        raise ValueError(
            f"{value!r} is not a group source: use a column, day(column) or table.column "
            "(a table this one references)"
        )
    return value


PERIODS = ("day", "week", "month", "quarter")  # finest first


class Family(Strict):
    """How a dimension's values generalise to their family: a table of values, else the part
    before a separator, else ``otherwise``."""

    values: dict[str, str] = Field(
        default_factory=dict, description="value -> its family, e.g. login: session"
    )
    separator: str | None = Field(
        default=None,
        min_length=1,
        description="a value not in 'values' belongs to the family named by its part before "
        "this separator (issue_created -> issue with '_'); without it, or when the value has "
        "none, to 'otherwise'",
    )
    otherwise: str = Field(default="other", description="the family of every other value")

    def of(self, value: object) -> str:
        text = "" if value is None else str(value)
        if text in self.values:
            return self.values[text]
        if self.separator and self.separator in text:
            return text.split(self.separator, 1)[0]
        return self.otherwise


class AggregationLevel(Strict):
    """One step up the hierarchy: the time bucket and the dimensions generalised."""

    name: str | None = Field(
        default=None,
        description="what the level column says for rows of this level; default: the period "
        "and the generalisations, e.g. 'month, event family, all products'",
    )
    period: Literal["day", "week", "month", "quarter"] = Field(
        description="the time bucket: day, week (Monday to Sunday, cut at the boundaries of the "
        "coarsest level's period), month or quarter; the row's time column holds its first day"
    )
    families: list[str] = Field(
        default_factory=list,
        description="aggregate columns generalised to their family (see the aggregation's "
        "'families')",
    )
    merge: dict[str, str] = Field(
        default_factory=dict,
        description="aggregate column -> the one value all its values become, "
        "e.g. product: all products",
    )

    @property
    def label(self) -> str:
        parts = [self.period, *[f"{c} family" for c in self.families]]
        return self.name or ", ".join(parts + list(self.merge.values()))


class Aggregation(Strict):
    """Retention by aggregation: counts per group, never of fewer than k events.

    Without ``levels`` (the original daily fold): a group smaller than k is folded into an
    'other' bucket of its day, an 'other' bucket still smaller than k is suppressed, and later
    sweeps add to the counts already there. With ``levels``: each group climbs the levels until
    it reaches k, what is below k at the last level is one remainder count per period of that
    level, and a period is published once, when it has closed, and never changed
    (connectors/sql/aggregation.py)."""

    into: str = Field(description="the table that receives the aggregates")
    group_by: dict[str, Annotated[str, AfterValidator(_check_group_source)]] = Field(
        min_length=1,
        description="aggregate column -> column, day(column) or referenced_table.column",
    )
    count_column: str = Field(default="count", description="aggregate column of the counts")
    min_group_size: int = Field(default=5, ge=2, description="k: smaller groups become 'other'")
    other_value: str = Field(
        default="other",
        description="what a folded group is called; with levels, the value of every column of "
        "a remainder row",
    )
    levels: list[AggregationLevel] | None = Field(
        default=None,
        min_length=1,
        description="the hierarchy, finest first: each level's period is the same as or "
        "coarser than the one before and it generalises at least what the one before did",
    )
    level_column: str | None = Field(
        default=None,
        description="with levels: the aggregate column that names a row's level (its label, or "
        "'remainder'); part of the aggregate table's key with the group_by columns",
    )
    families: dict[str, Family] = Field(
        default_factory=dict,
        description="aggregate column -> how its values generalise to a family",
    )

    @model_validator(mode="after")
    def _check_levels(self) -> Aggregation:
        if self.levels is None:
            if self.level_column or self.families:
                raise ValueError("level_column and families need levels")
            return self
        problems = []
        if not self.level_column:
            problems.append("levels need a level_column")
        times = [k for k, v in self.group_by.items() if v.startswith("day(")]
        if len(times) != 1:
            problems.append("levels need exactly one group_by entry of the form day(column)")
        dimensions = set(self.group_by) - set(times)
        for name in self.families:
            if name not in dimensions:
                problems.append(f"families.{name}: not a group_by column other than the day")
        previous: AggregationLevel | None = None
        for i, level in enumerate(self.levels):
            for name in [*level.families, *level.merge]:
                if name not in dimensions:
                    problems.append(f"levels.{i}: {name!r} is not a group_by column (not the day)")
            for name in level.families:
                if name not in self.families:
                    problems.append(f"levels.{i}.families: {name!r} has no entry under families")
            if previous is not None and (
                PERIODS.index(level.period) < PERIODS.index(previous.period)
                or not set(previous.merge) <= set(level.merge)
                or not set(previous.families) <= set(level.families) | set(level.merge)
            ):
                problems.append(f"levels.{i}: finer than the level before it")
            previous = level
        labels = [level.label for level in self.levels]
        if len(set(labels)) != len(labels) or "remainder" in labels:
            problems.append("levels: every level needs its own name (and none is 'remainder')")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Retention(Strict):
    max_age: Duration
    counts_from: str
    aggregate: Aggregation | None = None


class BaseMapping(Strict):
    """What every mapping has: the categories it uses and why they are held (Art. 15(1)).

    Each kind of source subclasses this with its own ``kind`` literal and its own layout.
    """

    description: str | None = None
    categories: dict[DataCategory, CategoryUse]
    # A kind whose records the controller cannot change (the Marketplace's are Atlassian's):
    # its plans only keep, so no right needs the source to write (dsrflow/preflight.py).
    read_only: ClassVar[bool] = False
    # Identifier kinds this kind's discovery resolves by itself and looks up by in the same
    # search (Jira: the accounts of the addresses it is given). A later discovery round need
    # not look this source up again by the ones it reported itself (flows/discovery.py).
    resolves_kinds: ClassVar[frozenset[str]] = frozenset()

    def lookup_kinds(self) -> frozenset[str] | None:
        """The identifier kinds this source looks a person up by. When a discovery round finds
        new identifiers, the next round searches only the sources that look up by one of their
        kinds, and only with them (flows/discovery.py). None: not known, so the source is
        searched again in every round with every identifier."""
        return None

    def subject_at_hold_end(
        self, subject: Subject, plan: Sequence[PlannedAction]
    ) -> Subject | None:
        """What the erasure of this kind's held records needs of the subject when their hold
        ends (queued with them, dropped once done); None, the default: nothing, as a record
        is found by its id alone. A kind that recognises the subject in what it changes
        (Jira pseudonymises them in texts) says what it needs."""
        return None

    def declares(self, category: str) -> bool:
        return self.use_of(category) is not None

    def use_of(self, category: str) -> CategoryUse | None:
        """The use declared for ``category`` or its nearest declared parent."""
        parts = category.split(".")
        for n in range(len(parts), 0, -1):
            use = self.categories.get(".".join(parts[:n]))
            if use:
                return use
        return None

    def collected_from(self, location: str) -> str:
        """Art. 15(1)(g): where the data at ``location`` came from."""
        return "the data subject"

    def plan_erasure(self, record: Record, today: dt.date) -> PlannedAction:
        """What erasure does to one record. The default: delete what is the subject's alone;
        keep what also belongs to others, flagged for the officer. Kinds refine this."""
        if record.shared:
            return plan_action(record, Action.KEEP, reason=shared_reason(record))
        return plan_action(record, Action.DELETE)

    def plan_rectification(
        self, record: Record, corrections: dict[str, str]
    ) -> PlannedAction | None:
        """Correcting a record; by default a source cannot, and says so in the plan."""
        return plan_action(
            record,
            Action.NOT_APPLICABLE,
            reason=f"records in {record.source} are not rectified (kind {self.kind_name()})",
        )

    def plan_consent_withdrawal(
        self, record: Record, purposes: set[str], now: dt.datetime
    ) -> PlannedAction | None:
        """What withdrawing consent for ``purposes`` does to a record; None: nothing."""
        return None

    def kind_name(self) -> str:
        return str(getattr(self, "kind", "unknown"))


def shared_reason(record: Record) -> str:
    return "also belongs to others (" + ", ".join(record.shared_with) + "); officer to review"


def plan_action(record: Record, action: Action, **values: Any) -> PlannedAction:
    return PlannedAction(
        record_id=record.record_id,
        source=record.source,
        location=record.location,
        native_id=record.native_id,
        action=action,
        **values,
    )


@runtime_checkable
class DeleteOnly(Protocol):
    """A mapping of a source whose API deletes what it holds under the subject's identifiers
    but cannot look a person up (Google Analytics' user deletion). There are no records to plan
    from, so erasure and consent withdrawal plan from the subject (dsrflow/planning.py), and an
    access answer says why nothing is listed."""

    def plan_deletions(self, source: str, subject: Subject) -> list[PlannedAction]:
        """One deletion per identifier of the subject the source deletes by; none without."""
        ...

    def explain_access(self, subject: Subject) -> str:
        """What an access export says of this source in place of its records."""
        ...
