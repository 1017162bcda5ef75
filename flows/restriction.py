"""Art. 18 in one place: the records every sweep and every change request leaves alone.

A restricted subject's data may only be stored (Art. 18(2)). Whose data that is comes from the
ledger's restriction list, one person per restriction request, and their records are found by
discovery in every source alike:

- the retention sweep hands each connector those records (``protected``) and the connector
  keeps them, whatever their age (``protected_records``);
- a change request (erasure, rectification, consent withdrawal) of another subject keeps whole
  any record it would delete that is also a restricted subject's or names them, and any
  record whose redaction would clear a field that names them (``spare_restricted``): that
  would erase the restricted person's part too. Redacting only the requester's own part of
  such a record, or correcting it, leaves the restricted person's part as it was, so those
  actions go ahead. The erasure the sweep carries out when a legal hold ends follows the same
  rule: such an action waits in the queue until the restriction ends.

The subject's own request is processing they asked for: their own restriction never holds it
back (``restricted_subjects`` leaves them out; flows/tasks.restriction_notice tells the
officer), and an erasure ends their restriction (Ledger.forget_subject).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors import Connector, Discovering, SourceUnavailable
from dsrflow.config import Config
from dsrflow.identifiers import Identifier
from dsrflow.ledger import Ledger
from dsrflow.mapping import BaseMapping
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record, native_id_text
from dsrflow.request import Subject
from flows.discovery import discover_everywhere

# Why a record another subject's request would delete or clear stays (plan and receipt).
KEPT_REASON = (
    "also the record of a person whose processing is restricted (Art. 18): it may only be "
    "stored, so it is kept whole while the restriction lasts"
)


def restricted_subjects(ledger: Ledger, excluding: Subject | None = None) -> list[Subject]:
    """The restricted people, one per restriction request, with every identifier that request
    restricted; ``excluding``: the subject of the request being answered (their own request
    goes ahead), left out when it shares an identifier with a restriction."""
    own = {str(i) for i in excluding.identifiers} if excluding else set()
    return [
        subject_of(identifiers)
        for _, identifiers in sorted(ledger.restrictions_by_request().items())
        if not identifiers & own
    ]


def subject_of(identifiers: Iterable[str]) -> Subject:
    """A subject from the ledger's ``kind:value`` texts (already normalised when recorded)."""
    parsed = [Identifier(kind=k, value=v) for k, _, v in (t.partition(":") for t in identifiers)]
    parsed.sort(key=str)
    return Subject(
        emails=tuple(i.value for i in parsed if i.kind == "email"),
        phones=tuple(i.value for i in parsed if i.kind == "phone"),
        others=tuple(i for i in parsed if i.kind not in ("email", "phone")),
    )


def protected_records(connector: Connector, name: str, restricted: Restricted) -> list[Record]:
    """The restricted subjects' records in one source (found once, by ``restricted_in``), for
    its sweep to keep. A source that cannot find them cannot be swept: it would process what
    may only be stored."""
    if not restricted.identifiers:
        return []
    if not isinstance(connector, Discovering):
        raise SourceUnavailable(
            name, "restricted subjects' records cannot be found to be kept out of the sweep"
        )
    return restricted.records_in(name)


# native_id parts that say whose the record is, not where it is: a Drive row's ``holds`` is a
# digest of the identifiers the subject's discovery matched (connectors/drive/rows.py), so the
# same row found for two people carries two; the rest places it.
SUBJECT_PARTS = frozenset({"holds"})

Place = tuple[str, str, str]


def place(source: str, location: str, native_id: dict[str, Any]) -> Place:
    """Where a record is, the same whoever's discovery found it."""
    return (
        source,
        location,
        native_id_text({k: v for k, v in native_id.items() if k not in SUBJECT_PARTS}),
    )


def names(identifiers: Iterable[Identifier], value: Any) -> bool:
    """Whether ``value`` holds one of ``identifiers``. Compared as text, loosely (an address
    inside a longer one counts, a phone by its last 8 digits): keeping too much is the safe
    side."""
    text = json.dumps(value, default=str).lower()
    digits = re.sub(r"\D", "", text)
    for identifier in identifiers:
        if identifier.kind == "phone":
            wanted = re.sub(r"\D", "", identifier.value)[-8:]
            if wanted and wanted in digits:
                return True
        elif identifier.value.lower() in text:
            return True
    return False


@dataclass(frozen=True)
class Restricted:
    """What a change request of another subject must not destroy: the restricted subjects'
    records (by ``place``, with the fields that name them) and their identifiers."""

    places: Mapping[Place, frozenset[str]] = field(default_factory=dict)
    identifiers: frozenset[Identifier] = frozenset()
    records: tuple[Record, ...] = ()  # as their discovery found them, for a sweep to keep

    def records_in(self, source: str) -> list[Record]:
        return [r for r in self.records if r.source == source]

    def fields_naming_them(self, at: Place, record: Record | None) -> frozenset[str]:
        """The fields of the record at ``at`` that name a restricted subject: as their own
        discovery read it, and as ``record`` (another subject's reading) holds it in clear
        (discovery masks other people's identifiers, so that reading alone is not enough)."""
        seen = record.fields.items() if record else ()
        clear = {k for k, v in seen if names(self.identifiers, v)}
        return self.places.get(at, frozenset()) | clear


def restricted_in(
    config: Config, mappings: dict[str, BaseMapping], subjects: list[Subject]
) -> Restricted:
    """The restricted subjects' records, in every source, and their identifiers (discovery
    raises rather than answer partly, so a source that cannot be searched stops the request)."""
    places: dict[Place, frozenset[str]] = {}
    identifiers: set[Identifier] = set()
    records: list[Record] = []
    for subject in subjects:
        discovery = discover_everywhere(config, mappings, subject, label="restricted")
        theirs = discovery.subject.identifiers
        identifiers |= theirs
        records += discovery.records
        for r in discovery.records:
            at = place(r.source, r.location, r.native_id)
            naming = frozenset(k for k, v in r.fields.items() if names(theirs, v))
            places[at] = places.get(at, frozenset()) | naming
    return Restricted(places, frozenset(identifiers), tuple(records))


def destroys_restricted(
    action: PlannedAction, restricted: Restricted, record: Record | None = None
) -> bool:
    """Whether ``action`` (on ``record``, when known) would destroy a restricted subject's
    data: delete a record that is theirs too or names them, or clear a field that names them."""
    at = place(action.source, action.location, action.native_id)
    naming = restricted.fields_naming_them(at, record)
    if action.action == Action.DELETE:
        return at in restricted.places or bool(naming)
    if action.action == Action.REDACT:
        return bool(naming & set(action.fields))
    return False


def spare_restricted(
    plan: list[PlannedAction], records: Iterable[Record], restricted: Restricted
) -> list[PlannedAction]:
    """The plan with every action that would destroy a restricted subject's data turned into
    KEEP, saying why (the officer sees it before approving; the receipt says it was kept)."""
    by_id = {r.record_id: r for r in records}
    return [
        action.model_copy(
            update={"action": Action.KEEP, "fields": {}, "hints": {}, "reason": KEPT_REASON}
        )
        if destroys_restricted(action, restricted, by_id.get(action.record_id))
        else action
        for action in plan
    ]


__all__ = [
    "KEPT_REASON",
    "Restricted",
    "destroys_restricted",
    "names",
    "place",
    "protected_records",
    "restricted_in",
    "restricted_subjects",
    "spare_restricted",
    "subject_of",
]
