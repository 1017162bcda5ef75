"""Restriction (Art. 18) honoured alike in every source: one table over SQL, mail, Drive, Jira.

One sandbox from small fixtures (tests/fixtures/restriction/), three people in every source:
Ben, whose processing is restricted (by the restriction flow); Ann, who shares records with
him; Cat, alone. Every record is years past its retention. The story, through the real flows
over the emulators' HTTP APIs:

1. Ben is restricted.
2. Ann's erasure: what it would delete or clear of Ben's is kept, saying why; her own part of
   a shared record is redacted.
3. The retention sweep: Cat's old records go, Ben's of the same age stay, and a deletion
   queued for the end of a legal hold that would take a record of Ben's waits in the queue.
4. Ben's own erasure: his records go (his restriction does not stop his own request) and his
   restriction ends with it.

Each step is checked for every source (the table), by discovering Ben's records afresh.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from prefect import flow

from connectors import Discovering, SourceContext, open_connector
from dsrflow.config import Config, load_config
from dsrflow.identifiers import Identifier
from dsrflow.ledger import Ledger
from dsrflow.plan import Action, PlannedAction
from dsrflow.records import Record, native_id_text
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from flows.approval import at_terminal
from flows.changes import ChangeResult
from flows.erasure import erasure_request
from flows.other_rights import restriction_request
from flows.restriction import (
    KEPT_REASON,
    Place,
    Restricted,
    place,
    restricted_in,
    spare_restricted,
    subject_of,
)
from flows.retention import SweepSummary, retention_sweep
from sandbox.runtime import start

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness", "masking_key")]

FIXTURES = Path(__file__).parent / "fixtures" / "restriction"
ANN, BEN, CAT = "ann@example.com", "ben@example.com", "cat@example.com"
SOURCES = ("onprem", "mail", "drive", "jira")
# Where each source's retention rule applies (the fixtures' records there are 2018-2019).
SWEPT = {"onprem": "usage_events", "mail": "messages", "drive": "Usage export", "jira": "issues"}
AS_OF = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
# Ben's and Ann's licence's usage event (licence 1), queued for deletion at a hold's end.
HELD = PlannedAction(
    record_id="onprem:usage_events:id=1",
    source="onprem",
    location="usage_events",
    native_id={"id": 1},
    action=Action.DELETE,
    keep_until=dt.date(2026, 1, 1),
    reason="legal hold ended (queued by an earlier erasure)",
)


def places(records: list[Record], source: str) -> set[Place]:
    return {place(r.source, r.location, r.native_id) for r in records if r.source == source}


# A Drive row's number and content digest change when rows above it go or another person's
# cell in it is cleared; what must not change is the person's own part.
MOVABLE = ("row", "content", "holds")


def parts(records: list[Record], source: str, who: str, location: str = "") -> set[tuple]:
    """What of ``who`` each record holds: where it is (less what moves) and every field that
    names them, so that a record of theirs deleted, or a cell of theirs cleared, is missed."""
    found = set()
    for r in records:
        if r.source != source or location not in r.location:
            continue
        where = {k: v for k, v in r.native_id.items() if k not in MOVABLE}
        naming = {
            (k, text)
            for k, v in r.fields.items()
            if who in (text := json.dumps(v, default=str, sort_keys=True).lower())
        }
        found.add((r.location, native_id_text(where), frozenset(naming)))
    return found


def discover(config: Config, email: str) -> list[Record]:
    """Everything the sources hold of ``email``, read afresh through the connectors."""
    mappings = config.load_mappings()
    context = SourceContext.of(config)
    found: list[Record] = []
    for name in SOURCES:
        with open_connector(name, config.sources[name], mappings[name], context) as c:
            assert isinstance(c, Discovering)
            found += c.discover(Subject.from_raw([email]))
    return found


@contextlib.contextmanager
def sql_lookups_of(email: str) -> Iterator[list[str]]:
    """The SQL statements sent, by any engine of this process, with ``email`` among their
    parameters: how often the on-prem database was searched for that person."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if email in json.dumps(parameters, default=str):
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


@flow(persist_result=False)
def find_restricted(config: Config, email: str) -> Restricted:
    """One discovery of a restricted person in every source, as the sweep makes it."""
    return restricted_in(config, config.load_mappings(), [subject_of([f"email:{email}"])])


def erase(config_path: Path, request_id: str, email: str) -> ChangeResult:
    with at_terminal("Ingrid"), run_settings(config_path):
        return erasure_request(request_id=request_id, subject_emails=[email])


def load_plan(config: Config, request_id: str) -> list[PlannedAction]:
    path = config.output_dir / request_id / "plan.json"
    return [PlannedAction.model_validate(a) for a in json.loads(path.read_text("utf-8"))]


@dataclass
class Story:
    config: Config
    ben: dict[str, list[Record]] = field(default_factory=dict)  # step -> Ben's records
    cat: dict[str, list[Record]] = field(default_factory=dict)
    ann_before: list[Record] = field(default_factory=list)
    ann_after: list[Record] = field(default_factory=list)
    ann_plan: list[PlannedAction] = field(default_factory=list)
    ann_result: ChangeResult | None = None
    sweep: SweepSummary | None = None
    sweep_lookups: list[str] = field(default_factory=list)  # SQL sent with Ben's address
    one_discovery_lookups: list[str] = field(default_factory=list)
    ben_plan: list[PlannedAction] = field(default_factory=list)
    ben_result: ChangeResult | None = None
    restricted_after: set[str] = field(default_factory=set)
    still_due: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Story]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DSRFLOW_HMAC_KEY", "test-key")
        with start(tmp_path_factory.mktemp("restriction"), fixtures=FIXTURES) as box:
            config = load_config(box.config_path)
            told = Story(config)
            with run_settings(box.config_path):
                restriction_request(
                    request_id="DSR-2026-1701",
                    subject_emails=[BEN],
                    officer="Ingrid",
                )
            told.ben["restricted"] = discover(config, BEN)
            told.ann_before = discover(config, ANN)
            told.ann_result = erase(box.config_path, "DSR-2026-1702", ANN)
            told.ann_plan = load_plan(config, "DSR-2026-1702")
            told.ann_after = discover(config, ANN)
            told.ben["after ann"] = discover(config, BEN)
            with Ledger.from_config(config) as ledger:
                # What an earlier erasure queued for the end of a legal hold (ended before
                # AS_OF) that is also Ben's: the sweep must not carry it out while he is
                # restricted.
                ledger.add_holds("DSR-2026-1702", [HELD])
            told.cat["before sweep"] = discover(config, CAT)
            with sql_lookups_of(BEN) as told.sweep_lookups, run_settings(box.config_path):
                told.sweep = retention_sweep(as_of=AS_OF)
            with sql_lookups_of(BEN) as told.one_discovery_lookups:
                find_restricted(config, BEN)
            with Ledger.from_config(config) as ledger:
                told.still_due = [a.record_id for _, a in ledger.due_holds(AS_OF.date())]
            told.ben["after sweep"] = discover(config, BEN)
            told.cat["after sweep"] = discover(config, CAT)
            told.ben_result = erase(box.config_path, "DSR-2026-1703", BEN)
            told.ben_plan = load_plan(config, "DSR-2026-1703")
            told.ben["after own erasure"] = discover(config, BEN)
            with Ledger.from_config(config) as ledger:
                told.restricted_after = ledger.restricted_identifiers()
            yield told


@pytest.mark.parametrize("source", SOURCES)
def test_a_shared_record_outlives_another_subjects_erasure(story: Story, source: str) -> None:
    assert story.ann_result is not None and story.ann_result.status == "completed"
    bens = places(story.ben["restricted"], source)
    shared = bens & places(story.ann_before, source)
    assert shared, f"{source}: the fixture shares no record of Ben's with Ann"
    # Everything of Ben's is still found by his identifiers: nothing of his deleted or cleared.
    before = parts(story.ben["restricted"], source, "ben")
    assert before <= parts(story.ben["after ann"], source, "ben")
    for action in story.ann_plan:
        if (
            action.source == source
            and place(action.source, action.location, action.native_id) in shared
        ):
            assert action.action != Action.DELETE, action.record_id


@pytest.mark.parametrize("source", SOURCES)
def test_what_would_destroy_a_restricted_persons_data_is_kept_and_says_why(
    story: Story, source: str
) -> None:
    spared = [a for a in story.ann_plan if a.source == source and a.reason == KEPT_REASON]
    assert spared, f"{source}: nothing of Ann's plan was held back for Ben"
    assert all(a.action == Action.KEEP for a in spared)
    # Kept whole: still where it was with everything that names Ben (found by his identifiers,
    # or by Ann's where only its text names him).
    records = {r.record_id: r for r in story.ann_before}
    still = parts(story.ann_after + story.ben["after ann"], source, "ben")
    for action in spared:
        assert parts([records[action.record_id]], source, "ben") <= still, action.record_id
    assert story.ann_result is not None
    receipt = json.loads(Path(story.ann_result.receipt or "").read_text())
    kept = [line for line in receipt["kept"] if line["source"] == source]
    assert sum(KEPT_REASON in json.dumps(line) for line in kept) >= 1
    # The rest of Ann's erasure in the source goes ahead.
    changed = [a for a in story.ann_plan if a.source == source and a.action != Action.KEEP]
    assert changed, f"{source}: Ann's erasure changed nothing at all"


@pytest.mark.parametrize("source", SOURCES)
def test_a_restricted_record_outlives_the_sweep(story: Story, source: str) -> None:
    assert story.sweep is not None
    where = SWEPT[source]
    cats = parts(story.cat["before sweep"], source, "cat", where)
    bens = parts(story.ben["after ann"], source, "ben", where)
    assert cats and bens, f"{source}: the fixture has no old record of Cat's and Ben's in {where}"
    # Cat's records of the same age went: the rule applied, and Ben's were past it too.
    assert not cats & parts(story.cat["after sweep"], source, "cat", where)
    assert bens <= parts(story.ben["after sweep"], source, "ben", where)
    rows = [r for r in story.sweep.results if r["source"] == source]
    assert sum(cast(int, r["rows"]) for r in rows) >= len(cats)
    assert sum(cast(int, r["protected"]) for r in rows) >= 1


def test_a_hold_ended_deletion_of_a_restricted_record_waits(story: Story) -> None:
    assert story.sweep is not None and story.sweep.holds_ended == 0
    assert story.still_due == [HELD.record_id]  # still queued, for when the restriction ends
    assert ("usage_events", "id=1", frozenset()) in parts(story.ben["after sweep"], "onprem", "ben")


def test_the_sweep_looks_the_restricted_person_up_once(story: Story) -> None:
    """Their records are found once, for the sweeps and the hold-end erasure alike (a legal
    hold is due in this story), not once for each."""
    assert story.one_discovery_lookups, "the on-prem database was never searched for Ben"
    assert sorted(story.sweep_lookups) == sorted(story.one_discovery_lookups)


@pytest.mark.parametrize("source", SOURCES)
def test_the_restricted_subjects_own_erasure_erases_them(story: Story, source: str) -> None:
    assert story.ben_result is not None and story.ben_result.status == "completed"
    mine = [a for a in story.ben_plan if a.source == source]
    assert any(a.action in (Action.DELETE, Action.REDACT) for a in mine), source
    assert not [a for a in mine if a.reason == KEPT_REASON]
    counts = story.ben_result.executed[source]
    assert counts["failed"] == counts["skipped"] == 0
    assert not places(story.ben["after own erasure"], source), source


def test_the_own_erasure_ends_the_restriction(story: Story) -> None:
    assert story.restricted_after == set()


# -- the rule itself, without a sandbox ----------------------------------------------------------


def record(row: int = 2, **fields: object) -> Record:
    return Record(
        source="drive",
        location="Sheet",
        native_id={"row": row},
        categories=dict.fromkeys(fields, "user"),
        fields=fields,
    )


def action(
    kind: Action, fields: dict[str, str] | None = None, row: int = 2, **native: object
) -> PlannedAction:
    found = record(row)
    return PlannedAction(
        record_id=found.record_id,
        source="drive",
        location="Sheet",
        native_id={"row": row, **native},
        action=kind,
        fields=fields or {},
    )


def test_the_rule_keeps_deletions_and_clearings_of_a_restricted_persons_data() -> None:
    ben = Restricted(
        # Ben's own discovery found row 2, his address in its Note.
        places={place("drive", "Sheet", {"row": 2, "holds": "ben-digest"}): frozenset({"Note"})},
        identifiers=frozenset(
            {Identifier(kind="email", value=BEN), Identifier(kind="phone", value="+4791234567")}
        ),
    )
    # The same row found for Ann carries her own digest: the same place all the same.
    [kept] = spare_restricted([action(Action.DELETE, holds="ann-digest")], [], ben)
    assert kept.action == Action.KEEP and kept.reason == KEPT_REASON
    # A row elsewhere that names Ben (his phone, written otherwise) is kept; one that does not
    # goes.
    [kept] = spare_restricted(
        [action(Action.DELETE, row=3)], [record(3, Email=ANN, Note="call 912 34 567")], ben
    )
    assert kept.action == Action.KEEP
    [gone] = spare_restricted(
        [action(Action.DELETE, row=3)], [record(3, Email=ANN, Note="alone")], ben
    )
    assert gone.action == Action.DELETE
    # Clearing Ann's own cell goes ahead; clearing a cell that names Ben does not.
    row = record(3, Email=ANN, Contact=BEN.upper())
    [own] = spare_restricted([action(Action.REDACT, {"Email": "cleared"}, row=3)], [row], ben)
    assert own.action == Action.REDACT
    [his] = spare_restricted([action(Action.REDACT, {"Contact": "cleared"}, row=3)], [row], ben)
    assert his.action == Action.KEEP
    # Ann's reading of row 2 shows Ben masked; his own reading says the Note names him.
    masked = record(2, Email=ANN, Note="with b***@example.com")
    [note] = spare_restricted([action(Action.REDACT, {"Note": "cleared"})], [masked], ben)
    assert note.action == Action.KEEP
    [email] = spare_restricted([action(Action.REDACT, {"Email": "cleared"})], [masked], ben)
    assert email.action == Action.REDACT
    # Nothing restricted: the plan as it was.
    plan = [action(Action.DELETE, holds="ann-digest")]
    assert spare_restricted(plan, [row], Restricted()) == plan
