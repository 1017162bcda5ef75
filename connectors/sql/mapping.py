"""The mapping of a SQL database: where personal data sits and how tables link up."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from dsrflow.identifiers import IdentifierKindName
from dsrflow.mapping.common import (
    BaseMapping,
    DataCategory,
    LegalHold,
    Masking,
    MaskingStrategy,
    Retention,
    Strict,
    plan_action,
    shared_reason,
)
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record


class Direction(StrEnum):
    """Which way discovery may follow a reference (the Fides sense of the words).

    ``to``: from a row of this table to the row it points at (contacts.customer_id -> customers).
    ``from``: from the referenced row to the rows of this table that point at it
    (contacts.id -> licenses.technical_contact_id, declared on licenses).
    ``both``: either way.
    """

    TO = "to"
    FROM = "from"
    BOTH = "both"


class Identity(Strict):
    """A column that holds one of the subject's identifiers, matched exactly once normalised.

    ``email`` and ``phone`` are compared by their keys (dsrflow.identifiers); any other kind
    (e.g. ``jira_account_id``) as exact text.
    """

    column: str
    kind: IdentifierKindName
    lookup_column: str | None = Field(
        default=None,
        description=(
            "email only: a column holding `column` trimmed of all whitespace and lower-cased "
            "by the database (e.g. a generated column with its own index); the pre-filter "
            "compares it instead of lower(column), so any padding is found"
        ),
    )

    normalised: bool = Field(
        default=False,
        description=(
            "email and phone: every stored value of `column` is already in the form the "
            "pre-filter compares, i.e. lower(column) = column in every row (e-mail; as the "
            "database's own lower() gives it) or no separators (phone: spaces, dashes, dots, "
            "brackets, slashes); the pre-filter is then a plain `column IN (...)` that an "
            "ordinary index on the column serves. `dsr mapping check --db URL` verifies it"
        ),
    )

    @model_validator(mode="after")
    def _lookup_for_email(self) -> Identity:
        if self.lookup_column is not None and self.kind != "email":
            raise ValueError("lookup_column is only for identities of kind email")
        if self.normalised and self.lookup_column is not None:
            raise ValueError("give either lookup_column or normalised, not both")
        if self.normalised and self.kind not in ("email", "phone"):
            raise ValueError("normalised is only for identities of kind email or phone")
        return self


class Reference(Strict):
    column: str = Field(description="the column of this table")
    target: str = Field(description="table.column it refers to", pattern=r"^[^.\s]+\.[^.\s]+$")
    direction: Direction

    @property
    def target_table(self) -> str:
        return self.target.split(".", 1)[0]

    @property
    def target_column(self) -> str:
        return self.target.split(".", 1)[1]


class Column(Strict):
    category: DataCategory
    erase: Masking | None = Field(
        default=None, description="what redaction does to this column; default set_null"
    )


class ConsentRecords(Strict):
    """Marks the table that records consents: withdrawal sets ``withdrawn_column`` to now."""

    purpose_column: str
    withdrawn_column: str


class RestrictionMark(Strict):
    """How rows are marked restricted in this table (Art. 18), e.g. a boolean column."""

    column: str
    value: str | bool | int = True


class RowErasure(StrEnum):
    DELETE = "delete"
    REDACT = "redact"


class Table(Strict):
    description: str | None = None
    primary_key: list[str] = Field(min_length=1)
    identities: list[Identity] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    columns: dict[str, Column] = Field(default_factory=dict)
    default_category: DataCategory = Field(
        default="system.operations", description="the category of columns not listed"
    )
    collected_from: str = Field(
        default="the data subject", description="Art. 15(1)(g): where the data came from"
    )
    erasure: RowErasure = RowErasure.DELETE
    legal_hold: LegalHold | None = None
    retention: Retention | None = None
    expands_identity: list[Identity] = Field(
        default_factory=list,
        description="columns whose values become identifiers of the subject for every source",
    )
    consent_records: ConsentRecords | None = Field(
        default=None, description="this table records consents (purpose, withdrawal time)"
    )
    restriction: RestrictionMark | None = Field(
        default=None, description="how a restricted row is marked here; none: ledger only"
    )

    def strategy_of(self, column: str) -> str:
        spec = self.columns.get(column)
        return spec.erase.strategy.value if spec and spec.erase else MaskingStrategy.SET_NULL.value

    def redactions(self, fields: dict[str, object]) -> dict[str, str]:
        """Column -> strategy for every column of personal data in a row, keys and links kept."""
        protected = set(self.primary_key) | {r.column for r in self.references}
        return {
            column: self.strategy_of(column)
            for column in fields
            if column not in protected
            and self.category_of(column).split(".")[0] == "user"
            and self.strategy_of(column) != MaskingStrategy.KEEP.value
        }

    def category_of(self, column: str) -> str:
        spec = self.columns.get(column)
        return spec.category if spec else self.default_category

    def is_personal(self) -> bool:
        """Whether rows of this table belong to a person (any column under ``user``)."""
        categories = [c.category for c in self.columns.values()] + [self.default_category]
        return bool(self.identities) or any(
            c == "user" or c.startswith("user.") for c in categories
        )


class SqlMapping(BaseMapping):
    kind: Literal["sql"]
    db_schema: str | None = Field(default=None, description="database schema, e.g. public")
    tables: dict[str, Table] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_check(self) -> SqlMapping:
        problems: list[str] = []
        for name, table in self.tables.items():
            where = f"tables.{name}"
            for i, ref in enumerate(table.references):
                if ref.target_table not in self.tables:
                    problems.append(
                        f"{where}.references.{i}.target: table {ref.target_table!r} "
                        "is not in this mapping"
                    )
            for column, spec in table.columns.items():
                if not self.declares(spec.category):
                    problems.append(
                        f"{where}.columns.{column}.category: {spec.category!r} is not "
                        "declared under categories (nor is any parent of it)"
                    )
            if not self.declares(table.default_category):
                problems.append(
                    f"{where}.default_category: {table.default_category!r} is not declared "
                    "under categories"
                )
        if not any(t.identities for t in self.tables.values()):
            problems.append("tables: no table has identities, so nothing can be found")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def lookup_kinds(self) -> frozenset[str]:
        """The kinds of the identity columns: discovery's seeds (references then follow)."""
        return frozenset(i.kind for t in self.tables.values() for i in t.identities)

    def collected_from(self, location: str) -> str:
        table = self.tables.get(location)
        return table.collected_from if table else super().collected_from(location)

    def plan_erasure(self, record: Record, today: dt.date) -> PlannedAction:
        """Legal holds first, then: shared rows lose only the subject's identifying columns
        (or are kept for the officer), the subject's own rows are deleted or redacted."""
        table = self.tables[record.location]
        if table.legal_hold:
            start = as_date(record.fields.get(table.legal_hold.counts_from))
            if start is not None:
                until = table.legal_hold.ends_on(start)
                if until > today:
                    # What it is due at ``until``: dsrflow/planning.py (every kind alike).
                    return plan_action(
                        record, Action.KEEP, reason=table.legal_hold.reason, keep_until=until
                    )
        if record.shared:
            own = {i.column: table.strategy_of(i.column) for i in table.identities}
            if own and record.matched:
                return plan_action(record, Action.REDACT, fields=own, reason=shared_reason(record))
            return plan_action(record, Action.KEEP, reason=shared_reason(record))
        if table.erasure == RowErasure.DELETE:
            return plan_action(record, Action.DELETE)
        return plan_action(record, Action.REDACT, fields=table.redactions(record.fields))

    def plan_rectification(
        self, record: Record, corrections: dict[str, str]
    ) -> PlannedAction | None:
        """Set every column of a corrected category (``user.contact.email`` -> new value)."""
        table = self.tables[record.location]
        changes = {
            column: corrections[category]
            for column in record.fields
            if (category := table.category_of(column)) in corrections
            and column not in table.primary_key
            and record.fields[column] != corrections[category]
        }
        return plan_action(record, Action.RECTIFY, fields=changes) if changes else None

    def plan_consent_withdrawal(
        self, record: Record, purposes: set[str], now: dt.datetime
    ) -> PlannedAction | None:
        """Consent records get their withdrawal time (now, never back-dated; kept as proof).
        Elsewhere, the columns whose only legal basis was a withdrawn consent are erased; the
        whole row when nothing else of the person is left in it."""
        table = self.tables[record.location]
        if table.consent_records:
            marks = table.consent_records
            if record.fields.get(marks.purpose_column) not in purposes:
                return None
            if record.fields.get(marks.withdrawn_column) is not None:
                return None  # already withdrawn: its time stays as it is
            stamp = now.astimezone(dt.UTC).isoformat()
            return plan_action(
                record,
                Action.RECTIFY,
                fields={marks.withdrawn_column: stamp},
                reason="consent withdrawn",
            )
        personal = table.redactions(record.fields)
        withdrawn = {
            column: strategy
            for column, strategy in personal.items()
            if (use := self.use_of(table.category_of(column))) and use.consent_purpose in purposes
        }
        if not withdrawn:
            return None
        reason = "consent withdrawn: " + ", ".join(sorted(purposes))
        if set(withdrawn) == set(personal) and not record.shared:
            return plan_action(record, Action.DELETE, reason=reason)
        return plan_action(record, Action.REDACT, fields=withdrawn, reason=reason)


def as_date(value: object) -> dt.date | None:
    """A date from a record field (ISO text after ``portable_value``) or a column value."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
