"""Building an erasure plan from discovered records, and showing it without personal data."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable

from dsrflow.mapping import BaseMapping
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record


def build_erasure_plan(
    records: Iterable[Record], mappings: dict[str, BaseMapping], today: dt.date
) -> list[PlannedAction]:
    """One action per record, decided by the record's mapping (holds, sharing, erasure mode)."""
    plan = [mappings[r.source].plan_erasure(r, today) for r in records]
    return sorted(plan, key=lambda a: a.record_id)


def record_ref(action: PlannedAction) -> str:
    """A reference to the record that shows no key values (a key may be an e-mail address):
    ``source:location#`` and the first 10 hex digits of the SHA-256 of the record id."""
    digest = hashlib.sha256(action.record_id.encode("utf-8")).hexdigest()[:10]
    return f"{action.source}:{action.location}#{digest}"


def plan_table(plan: Iterable[PlannedAction]) -> list[dict[str, object]]:
    """Rows for the officer's artifact: where, what, why; no field values, no identifiers."""
    return [
        {
            "record": record_ref(action),
            "action": action.action.value,
            "fields": ", ".join(sorted(action.fields)),
            "reason": action.reason or "",
            "keep_until": action.keep_until.isoformat() if action.keep_until else "",
        }
        for action in plan
    ]


def plan_counts(plan: Iterable[PlannedAction]) -> dict[str, int]:
    counts = Counter(action.action.value for action in plan)
    return {
        action.value: counts.get(action.value, 0) for action in Action if counts.get(action.value)
    }
