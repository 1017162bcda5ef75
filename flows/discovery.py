"""Discovery in every source, concurrently, repeated until the subject's identities reach a
fixed point. Used by every request flow.

Round one searches every source with the identifiers the request gives. When a round finds
new identifiers (a Jira account id, a phone number in a contact row), the next round searches
only the sources that look people up by one of their kinds (``BaseMapping.lookup_kinds``), and
only with the new ones: what a source was asked before it is not asked again. A source that
found the new identifiers itself and searched by them in the same pass (Jira's accounts,
``BaseMapping.resolves_kinds``) is not asked again either. The records of every round are
merged once (dsrflow/merge.py folds a record found twice), and what a source could not search
in any round stays reported.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from prefect import get_run_logger

from connectors.third_parties import mask_phone
from dsrflow.config import Config
from dsrflow.errors import DsrflowError
from dsrflow.identifiers import Identifier, mask_email
from dsrflow.mapping import BaseMapping
from dsrflow.mapping.common import DeleteOnly
from dsrflow.merge import fold_records
from dsrflow.records import Record
from dsrflow.request import Subject
from flows.tasks import Found, discover_source

MAX_EXPANSION_ROUNDS = 5


class ExpansionError(DsrflowError):
    """Discovery kept finding new identifiers: a mapping's ``expands_identity`` runs away."""


@dataclass(frozen=True)
class Search:
    """One source's search in one round: with which identifiers (and the whole subject the
    records are judged against), or why it is not searched. Says kinds and counts only."""

    source: str
    subject: Subject | None  # None: not searched this round
    known: Subject | None  # the whole subject, where ``subject`` holds only new identifiers
    why: str


@dataclass(frozen=True)
class Round:
    number: int
    searches: tuple[Search, ...]

    @property
    def searched(self) -> list[str]:
        return [s.source for s in self.searches if s.subject is not None]

    def describe(self) -> str:
        """``round 2: searching onprem (1 phone new); not searching mail (cannot look up by
        phone)``: what the run log says (kinds and counts, never identifiers)."""
        parts = [f"{s.source} ({s.why})" for s in self.searches if s.subject is not None]
        skipped = [f"{s.source} ({s.why})" for s in self.searches if s.subject is None]
        text = f"round {self.number}: searching " + (", ".join(parts) or "no source")
        return text + ("; not searching " + ", ".join(skipped) if skipped else "")


@dataclass(frozen=True)
class Discovery:
    records: list[Record]
    subject: Subject  # with the identifiers found on the way
    rounds: int
    not_searched: dict[str, list[str]] = field(default_factory=dict)  # source -> what, why
    log: tuple[Round, ...] = ()  # which sources each round searched, and why not the others


def found_identifiers(records: Iterable[Record]) -> set[Identifier]:
    found = set()
    for record in records:
        for text in record.expands:
            kind, _, value = text.partition(":")
            found.add(Identifier(kind=kind, value=value))
    return found


def holding(subject: Subject, identifiers: Iterable[Identifier]) -> Subject:
    """A subject holding only ``identifiers`` (already normalised: the sources' exact
    comparisons and look-alike rules apply to them unchanged)."""
    chosen = sorted(set(identifiers), key=str)
    return Subject(
        emails=tuple(i.value for i in chosen if i.kind == "email"),
        phones=tuple(i.value for i in chosen if i.kind == "phone"),
        others=tuple(i for i in chosen if i.kind not in ("email", "phone")),
        name=subject.name,
    )


def _counted(identifiers: Iterable[Identifier]) -> str:
    counts = Counter(i.kind for i in identifiers)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def masked_in(records: Iterable[Record], identifiers: Iterable[Identifier]) -> set[Identifier]:
    """The addresses and numbers among ``identifiers`` whose masked form (the one rule of
    connectors.third_parties) ``records`` hold: judged someone else's before they were known
    as the subject's. A mask fits more than one value, so this errs towards judging again."""
    text = "\n".join(json.dumps(r.fields, default=str, ensure_ascii=False) for r in records)
    masks = {
        i: mask_email(i.value) if i.kind == "email" else mask_phone(i.value)
        for i in identifiers
        if i.kind in ("email", "phone")
    }
    return {i for i, mask in masks.items() if mask in text}


def plan_round(
    number: int,
    mappings: dict[str, BaseMapping],
    subject: Subject,
    asked: dict[str, set[Identifier]],
    kept: dict[str, list[Record]],
) -> Round:
    """Who is searched in round ``number``, with what. ``asked``: per source, the identifiers
    it has searched by already; ``kept``: its records so far. Sources in ``mappings``' order."""
    searches = []
    for name, mapping in mappings.items():
        new = subject.identifiers - asked[name]
        kinds = mapping.lookup_kinds()
        usable = new if kinds is None else {i for i in new if i.kind in kinds}
        if number == 1:
            searches.append(Search(name, subject, None, "every identifier given"))
        elif masked := masked_in(kept.get(name, []), new):
            # Its records were judged without them: found again with the whole subject, they
            # replace the earlier ones (what every round did before).
            why = f"holds what may be {_counted(masked)} new, masked: judged again with all"
            searches.append(Search(name, subject, None, why))
        elif usable and (kinds is None or isinstance(mapping, DeleteOnly)):
            # Unknown kinds: again with everything, as before. A delete-only source's answer
            # names every id of the subject it would delete by, so it gets them all.
            searches.append(Search(name, subject, None, f"{_counted(usable)} new; all given"))
        elif usable:
            searches.append(
                Search(name, holding(subject, usable), subject, f"{_counted(usable)} new")
            )
        elif new:
            unknown = sorted({i.kind for i in new} - set(kinds or ()))
            why = (
                f"cannot look up by {', '.join(unknown)}"
                if unknown
                else "searched by the new identifiers already"
            )
            searches.append(Search(name, None, None, why))
        else:
            searches.append(Search(name, None, None, "searched by every identifier already"))
    return Round(number, tuple(searches))


def discover_everywhere(
    config: Config, mappings: dict[str, BaseMapping], subject: Subject, label: str = "discover"
) -> Discovery:
    """One discovery task per source searched in a round, all at once; again, where new
    identifiers can be looked up, while they turn up."""
    logger = get_run_logger()
    asked: dict[str, set[Identifier]] = {name: set() for name in config.sources}
    # (round, source, records): a source searched again with the whole subject drops its own.
    results: list[tuple[int, str, list[Record]]] = []
    gaps: dict[str, list[str]] = {}
    log: list[Round] = []
    for number in range(1, MAX_EXPANSION_ROUNDS + 2):
        kept: dict[str, list[Record]] = defaultdict(list)
        for _, name, found_there in results:
            kept[name].extend(found_there)
        plan = plan_round(number, {n: mappings[n] for n in config.sources}, subject, asked, kept)
        if not plan.searched:
            break
        if number > MAX_EXPANSION_ROUNDS:
            raise ExpansionError(
                f"identities kept growing after {MAX_EXPANSION_ROUNDS} rounds of discovery; "
                "check the expands_identity entries of the mappings"
            )
        logger.info("%s", plan.describe())
        log.append(plan)
        searching = [(s.source, s.subject, s.known) for s in plan.searches if s.subject]
        futures = [
            discover_source.with_options(task_run_name=f"{label}-{name}-{number}").submit(
                name, config, mappings[name], searched, known
            )
            for name, searched, known in searching
        ]
        found: dict[str, Found] = {
            name: future.result() for (name, _, _), future in zip(searching, futures, strict=True)
        }
        whole = {name for name, searched, _ in searching if searched == subject}
        if number > 1:
            results = [r for r in results if r[1] not in whole]
        for name, searched, _ in searching:
            result = found[name]
            results.append((number, name, result.records))
            asked[name] |= searched.identifiers
            resolved = mappings[name].resolves_kinds
            asked[name] |= {i for i in found_identifiers(result.records) if i.kind in resolved}
            _note_gaps(gaps, name, result.not_searched, replace=name in whole and number > 1)
        expanded = subject.expanded(found_identifiers(r for _, _, rs in results for r in rs))
        if expanded != subject:
            logger.info(
                "round %d found %d more identifier(s): %s",
                number,
                len(expanded.identifiers) - len(subject.identifiers),
                _counted(expanded.identifiers - subject.identifiers),
            )
        subject = expanded
    per_round = [
        [r for n, _, found_there in results if n == number for r in found_there]
        for number in range(1, len(log) + 1)
    ]
    return Discovery(_folded_across_rounds(per_round), subject, len(log), gaps, tuple(log))


def _note_gaps(gaps: dict[str, list[str]], name: str, new: list[str], *, replace: bool) -> None:
    """What a source could not search, over every round: a gap of any round stays (a later
    round searched by other identifiers, not the ones that went unsearched), unless the source
    was searched again with the whole subject: then its latest answer is the whole answer."""
    if replace:
        gaps.pop(name, None)
    if new:
        gaps[name] = list(dict.fromkeys([*gaps.get(name, []), *new]))


def _folded_across_rounds(per_round: list[list[Record]]) -> list[Record]:
    """A record found again in a later round (by a new identifier) becomes one record, as
    dsrflow/merge.py folds it: matched identifiers united, shared if any copy says so, the
    later copy's fields (judged knowing more of the subject). Records found in one round only
    are passed on as they are."""
    seen: dict[str, int] = {}
    again: set[str] = set()
    for number, found in enumerate(per_round):
        for record in found:
            if seen.setdefault(record.record_id, number) != number:
                again.add(record.record_id)
    flat = [record for found in per_round for record in found]
    if not again:
        return flat
    folded = {r.record_id: r for r in fold_records(r for r in flat if r.record_id in again)}
    out: list[Record] = []
    for record in flat:
        if record.record_id not in again:
            out.append(record)
        elif record.record_id in folded:
            out.append(folded.pop(record.record_id))
    return out
