"""Building an erasure plan from discovered records, and showing it without personal data."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Collection, Iterable

from dsrflow.errors import DsrflowError
from dsrflow.identifiers import normalise_email, normalise_phone
from dsrflow.mapping import BaseMapping
from dsrflow.mapping.common import CATEGORY_PATTERN, DeleteOnly, LegalBasis
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record
from dsrflow.request import Subject


def build_erasure_plan(
    records: Iterable[Record],
    mappings: dict[str, BaseMapping],
    today: dt.date,
    subject: Subject | None = None,
) -> list[PlannedAction]:
    """One action per record, decided by the record's mapping (holds, sharing, erasure mode);
    with ``subject``, also the deletions of the delete-only sources, which have no records."""
    plan = [with_after_hold(mappings[r.source], r, today) for r in records]
    if subject is not None:
        plan += recordless_deletions(mappings, subject)
    return sorted(plan, key=lambda a: a.record_id)


def with_after_hold(mapping: BaseMapping, record: Record, today: dt.date) -> PlannedAction:
    """The record's action; one kept under a legal hold until a date also carries what its
    mapping plans for it on that date (``hints.after_hold``), which the ledger queues for the
    retention sweep (flows/changes.py ``after_hold``). Done here, once for every kind, so that
    no source's held records are left without an erasure at the hold's end."""
    action = mapping.plan_erasure(record, today)
    if action.action != Action.KEEP or action.keep_until is None:
        return action
    after = mapping.plan_erasure(record, action.keep_until)
    then = {"action": after.action.value, "fields": after.fields, "hints": after.hints}
    return action.model_copy(update={"hints": {**action.hints, "after_hold": then}})


def recordless_deletions(
    mappings: dict[str, BaseMapping], subject: Subject, purposes: set[str] | None = None
) -> list[PlannedAction]:
    """What the delete-only sources (``DeleteOnly``) delete for ``subject``. With
    ``purposes`` (a consent withdrawal): only sources whose every category rests on consent
    to one of them, since their deletion takes everything they hold under the id. A source
    without an identifier of the subject to delete by says so in the plan (and the receipt):
    nothing filed there is not the same as nothing there."""
    plan = []
    for name, mapping in mappings.items():
        if not isinstance(mapping, DeleteOnly):
            continue
        if purposes is not None and not rests_on_consent(mapping, purposes):
            continue
        plan += mapping.plan_deletions(name, subject) or [
            PlannedAction(
                record_id=f"{name}:-:no-identifier",
                source=name,
                location="-",
                native_id={},
                action=Action.NOT_APPLICABLE,
                reason="no identifier this source deletes by is known for the subject (it "
                "cannot be searched by address): nothing was asked of it",
            )
        ]
    return plan


def rests_on_consent(mapping: BaseMapping, purposes: set[str]) -> bool:
    uses = mapping.categories.values()
    return bool(uses) and all(
        use.legal_basis == LegalBasis.CONSENT and use.consent_purpose in purposes for use in uses
    )


def record_ref(action: PlannedAction) -> str:
    """A reference to the record that shows no key values (a key may be an e-mail address):
    ``source:location#`` and the first 10 hex digits of the SHA-256 of the record id."""
    digest = hashlib.sha256(action.record_id.encode("utf-8")).hexdigest()[:10]
    return f"{action.source}:{action.location}#{digest}"


# A plan table must fit a laptop screen: longer reasons are cut (the plan file has them whole).
REASON_WIDTH = 70


def plan_table(
    plan: Iterable[PlannedAction], shared: Collection[str] = ()
) -> list[dict[str, object]]:
    """Rows for the officer's artifact: where, what, why, whether the record also belongs to
    someone else (``shared``: record ids) and until when a hold keeps it; no field values, no
    identifiers."""
    return [
        {
            "record": record_ref(action),
            "action": action.action.value,
            "shared": "yes" if action.record_id in shared else "",
            "keep until": action.keep_until.isoformat() if action.keep_until else "",
            "reason": _cut(action.reason or ""),
            "fields": ", ".join(sorted(action.fields)),
        }
        for action in plan
    ]


def _cut(text: str) -> str:
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "…"


def plan_notices(plan: Iterable[PlannedAction], shared: Collection[str] = ()) -> list[str]:
    """What the officer must see before approving: shared records and the legal holds with
    their end dates (the summary artifact lists these above the counts)."""
    plan = list(plan)
    lines = []
    together = [a for a in plan if a.record_id in shared]
    if together:
        kinds = Counter(a.action.value for a in together)
        lines.append(
            f"{len(together)} record(s) also belong to someone else: "
            + ", ".join(f"{n} {action}" for action, n in sorted(kinds.items()))
            + " (column *shared*)"
        )
    holds = Counter((a.keep_until.isoformat(), a.reason or "") for a in plan if a.keep_until)
    for (until, reason), n in sorted(holds.items()):
        lines.append(f"{n} record(s) kept until {until}: {_cut(reason)}")
    return lines


def plan_counts(plan: Iterable[PlannedAction]) -> dict[str, int]:
    counts = Counter(action.action.value for action in plan)
    return {
        action.value: counts.get(action.value, 0) for action in Action if counts.get(action.value)
    }


# Corrections an officer may name by a short field name; any data category works as well.
CORRECTABLE = {
    "email": "user.contact.email",
    "name": "user.name",
    "phone": "user.contact.phone",
}


class CorrectionError(DsrflowError, ValueError):
    """A rectification's correction that is not ``field=value`` of a correctable field."""


def parse_corrections(pairs: Iterable[str], phone_region: str = "NO") -> dict[str, str]:
    """``["email=new@example.com", "name=Kari N."]`` -> category -> validated new value."""
    corrections: dict[str, str] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        field, value = field.strip(), value.strip()
        if not sep or not field or not value:
            raise CorrectionError(f"correction {pair!r} must look like field=value")
        category = CORRECTABLE.get(field, field)
        if category == "user.contact.email":
            value = normalise_email(value)
        elif category == "user.contact.phone":
            value = normalise_phone(value, phone_region)
        elif not CATEGORY_PATTERN.match(category):
            raise CorrectionError(
                f"cannot correct {field!r}: use {', '.join(CORRECTABLE)} or a data category"
            )
        corrections[category] = value
    if not corrections:
        raise CorrectionError("a rectification needs at least one correction (field=value)")
    return corrections


def build_rectification_plan(
    records: Iterable[Record], mappings: dict[str, BaseMapping], corrections: dict[str, str]
) -> list[PlannedAction]:
    plan = [
        action
        for r in records
        if (action := mappings[r.source].plan_rectification(r, corrections)) is not None
    ]
    return sorted(plan, key=lambda a: a.record_id)


CONSENT_PURPOSES = ("analytics", "config_collection")


def build_consent_plan(
    records: Iterable[Record],
    mappings: dict[str, BaseMapping],
    purposes: set[str],
    now: dt.datetime,
    subject: Subject | None = None,
) -> list[PlannedAction]:
    """Each record's mapping decides; with ``subject``, the delete-only sources that held data
    on the withdrawn consent alone file their deletions too (Art. 7(3) with Art. 17(1)(b))."""
    plan = [
        action
        for r in records
        if (action := mappings[r.source].plan_consent_withdrawal(r, purposes, now)) is not None
    ]
    if subject is not None:
        plan += recordless_deletions(mappings, subject, purposes)
    return sorted(plan, key=lambda a: a.record_id)


def build_restriction_plan(records: Iterable[Record]) -> list[PlannedAction]:
    return sorted(
        (
            PlannedAction(
                record_id=r.record_id,
                source=r.source,
                location=r.location,
                native_id=r.native_id,
                action=Action.RESTRICT,
                reason="processing restricted (Art. 18)",
            )
            for r in records
        ),
        key=lambda a: a.record_id,
    )
