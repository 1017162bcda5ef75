"""Legal holds end in erasure in every kind of source (issue 17).

One erasure of the sandbox's demo subject over SQL, mail, Drive and Jira (the real SDKs over
HTTP against the sandbox's emulators; Jira's mapping gets a legal hold on its requests here,
the sandbox's has none). In each kind a record under a legal hold is kept, and queued in the
ledger with the date its hold ends; the retention sweep before that date leaves it, the sweep
on that date erases it through the kind's connector and releases the hold, and a held record
that changed since planning so that its hold now ends later is skipped and reported, not
erased. The receipt says, for every kind, until when each record is kept and that the sweep
erases it then.

The mappings' own retention rules are left out of this sandbox's config, so that what the
sweeps erase here is the holds' queue alone, not a rule that would reach the same records.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors import open_connector
from connectors.drive.connector import DriveConnector
from connectors.sql.settings import SqlSource
from connectors.third_parties import SourceContext
from dsrflow.config import Config, load_config
from dsrflow.ledger import HELD_FOR, Ledger
from dsrflow.plan import Action, PlannedAction
from dsrflow.planning import record_ref
from dsrflow.records import Record
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from flows.approval import at_terminal
from flows.changes import ChangeResult
from flows.erasure import erasure_request
from flows.retention import SweepSummary, retention_sweep
from sandbox.onprem_seed import DEMO_SUBJECT
from sandbox.runtime import start
from tests.support.snapshots import Snapshot, snapshot_all

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

KINDS = ("onprem", "mail", "drive", "jira")
JIRA_HOLD = {
    "reason": "support requests kept for a dispute (test hold)",
    "duration": {"years": 6},
    "counts_from": "created",
}


def without_retention(mapping: dict[str, Any]) -> dict[str, Any]:
    """A mapping with its retention rules left out (wherever the kind declares them)."""
    mapping.pop("retention", None)
    for table in (mapping.get("tables") or {}).values():
        table.pop("retention", None)
    for layout in mapping.get("layouts") or []:
        layout.pop("retention", None)
    return mapping


def sandbox_config(config_path: Path, folder: Path) -> None:
    """The sandbox's config with mappings of its own: no retention rules, and a legal hold on
    Jira's requests."""
    config = yaml.safe_load(config_path.read_text("utf-8"))
    for name, source in config["sources"].items():
        mapping = yaml.safe_load(Path(source["mapping"]).read_text("utf-8"))
        mapping = without_retention(mapping)
        if source["kind"] == "jira":
            mapping["legal_hold"] = JIRA_HOLD
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(mapping, sort_keys=False), "utf-8")
        source["mapping"] = str(path)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")


def erase(config_path: Path, request_id: str) -> ChangeResult:
    with at_terminal("Ingrid"), run_settings(config_path):
        return erasure_request(request_id=request_id, subject_emails=[DEMO_SUBJECT])


def sweep(config_path: Path, day: dt.date) -> SweepSummary:
    as_of = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    with run_settings(config_path):
        return retention_sweep(as_of=as_of)


@dataclass
class Held:
    config_path: Path
    config: Config
    result: ChangeResult
    plan: list[PlannedAction]

    def kept(self, source: str) -> list[PlannedAction]:
        return [
            a
            for a in self.plan
            if a.source == source and a.action == Action.KEEP and a.keep_until is not None
        ]

    def queued(self, today: dt.date) -> dict[str, PlannedAction]:
        with Ledger.from_config(self.config) as ledger:
            return {a.record_id: a for _, a in ledger.due_holds(today)}

    def found(self, source: str) -> dict[str, Record]:
        """The subject's records in ``source`` as discovery finds them now."""
        spec = self.config.sources[source]
        mapping = self.config.load_mappings()[source]
        with open_connector(source, spec, mapping, SourceContext.of(self.config)) as connector:
            return {r.record_id: r for r in connector.discover(Subject(emails=(DEMO_SUBJECT,)))}


def add_held_invoice(config: Config) -> None:
    """A second invoice row of the subject's in the sandbox's held sheet (it has one), so that
    one is erased at the hold's end and the other changed before it."""
    spec = config.sources["drive"]
    with open_connector(
        "drive", spec, config.load_mappings()["drive"], SourceContext.of(config)
    ) as connector:
        assert isinstance(connector, DriveConnector)
        client = connector.client
        files = client.call(client.list_files("name = 'Renewals 2024'", None), "list_pages")[
            "files"
        ]
        (spreadsheet,) = files
        values = client.call(client.sheet_values(spreadsheet["id"], ["Invoices"]), "values_reads")
        rows = values["valueRanges"][0]["values"]
        assert any(DEMO_SUBJECT in row for row in rows)
        invoice = ["INV-2024-0998", "2024-09-15", "Fjordsoft AS", DEMO_SUBJECT, "600.00"]
        request = client.values.update(
            spreadsheetId=spreadsheet["id"],
            range=f"'Invoices'!A{len(rows) + 1}:E{len(rows) + 1}",
            valueInputOption="RAW",
            body={"values": [invoice]},
        )
        client.write(request)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Held]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DSRFLOW_HMAC_KEY", "test-key")
        folder = tmp_path_factory.mktemp("holds")
        with start(folder) as box:
            sandbox_config(box.config_path, folder)
            config = load_config(box.config_path)
            add_held_invoice(config)
            result = erase(box.config_path, "DSR-2026-0901")
            path = config.output_dir / "DSR-2026-0901" / "plan.json"
            plan = [PlannedAction.model_validate(a) for a in json.loads(path.read_text("utf-8"))]
            yield Held(box.config_path, config, result, plan)


@dataclass
class Swept:
    queued: dict[str, PlannedAction]  # the ledger's queue before the sweeps
    before: Snapshot  # every source after the erasure
    early: SweepSummary  # the day before the first hold ends
    after_early: Snapshot
    changed: dict[str, str]  # kind -> the record id of the held record changed since planning
    changed_before: Snapshot  # every source once the changes are made
    late: SweepSummary  # the day the last hold ends
    after_late: Snapshot
    found_late: dict[str, dict[str, Record]]
    again: SweepSummary
    released: list[tuple[str, str]]  # record id, action JSON of every released hold


def change_sql_row(held: Held, action: PlannedAction) -> None:
    """An invoice's date moved since planning: its hold (from ``issued_on``) ends later."""
    source = held.config.sources["onprem"]
    assert isinstance(source, SqlSource)
    engine = sa.create_engine(source.database_url())
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE invoices SET issued_on = :day WHERE id = :id"),
                {"day": dt.date(2031, 6, 1), "id": action.native_id["id"]},
            )
    finally:
        engine.dispose()


def change_sheet_row(held: Held, action: PlannedAction) -> None:
    """Someone edited the held row's amount since planning (Sheets ``values.update``)."""
    native = action.native_id
    spec = held.config.sources["drive"]
    mapping = held.config.load_mappings()["drive"]
    with open_connector("drive", spec, mapping, SourceContext.of(held.config)) as connector:
        assert isinstance(connector, DriveConnector)
        cell = f"{native['sheet']}!E{native['row']}"  # Amount, the fifth column of Invoices
        connector.client.write(connector.client.update_cell(native["spreadsheet_id"], cell, "1"))


CHANGES: dict[str, Callable[[Held, PlannedAction], None]] = {
    "onprem": change_sql_row,
    "drive": change_sheet_row,
}


@pytest.fixture(scope="module")
def swept(held: Held) -> Swept:
    due = held.queued(dt.date.max)
    first, last = min(a.keep_until for a in due.values()), max(a.keep_until for a in due.values())
    assert first is not None and last is not None
    before = snapshot_all(held.config)
    early = sweep(held.config_path, first - dt.timedelta(days=1))
    after_early = snapshot_all(held.config)
    changed = {}
    for kind, change in CHANGES.items():
        action = next(a for a in due.values() if a.source == kind)
        change(held, action)
        changed[kind] = action.record_id
    changed_before = snapshot_all(held.config)
    late = sweep(held.config_path, last)
    after_late = snapshot_all(held.config)
    found_late = {kind: held.found(kind) for kind in KINDS}
    again = sweep(held.config_path, last)
    engine = sa.create_engine(held.config.ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT record_id, action FROM holds WHERE released_at IS NOT NULL")
            ).all()
    finally:
        engine.dispose()
    released = [(r.record_id, r.action) for r in rows]
    return Swept(
        due,
        before,
        early,
        after_early,
        changed,
        changed_before,
        late,
        after_late,
        found_late,
        again,
        released,
    )


def of_kind(actions: dict[str, PlannedAction], kind: str) -> dict[str, PlannedAction]:
    return {k: a for k, a in actions.items() if a.source == kind}


@pytest.mark.parametrize("kind", KINDS)
def test_held_records_are_kept_and_queued_with_the_day_their_hold_ends(
    held: Held, kind: str
) -> None:
    assert held.result.status == "completed"
    kept = {a.record_id: a for a in held.kept(kind)}
    assert kept, f"{kind}: no record kept under a legal hold: the sandbox lost its data?"
    to_erase = {k: a for k, a in kept.items() if a.hints["after_hold"]["action"] != Action.KEEP}
    assert to_erase, kind
    with Ledger.from_config(held.config) as ledger:
        queued = {a.record_id: a for _, a in ledger.due_holds(dt.date.max) if a.source == kind}
        early = ledger.due_holds(min(a.keep_until for a in kept.values() if a.keep_until))
    # Each held record due an erasure is queued with its plan's action and hold's end date;
    # one that is kept at the end too (someone else's as well) is not.
    assert set(queued) == set(to_erase), kind
    for record_id, action in queued.items():
        assert action.keep_until == kept[record_id].keep_until
        assert action.action == to_erase[record_id].hints["after_hold"]["action"]
    assert not [a for _, a in early if a.source == kind and a.keep_until is None]
    # Only a kind whose erasure must recognise the subject (Jira) keeps them in the queue.
    assert all((HELD_FOR in a.hints) == (kind == "jira") for a in queued.values()), kind


@pytest.mark.parametrize("kind", KINDS)
def test_the_receipt_says_until_when_and_that_the_sweep_erases_them(
    held: Held, swept: Swept, kind: str
) -> None:
    receipt = json.loads(Path(held.result.receipt or "").read_text("utf-8"))
    lines = {line["record"]: line for line in receipt["kept"] if line["source"] == kind}
    queued = of_kind(swept.queued, kind)
    assert queued, kind
    for record_id, action in queued.items():
        assert action.keep_until is not None
        assert lines[record_id]["keep_until"] == action.keep_until.isoformat()
        assert lines[record_id]["at_hold_end"] == action.action.value
    shared = [a for a in held.kept(kind) if a.hints["after_hold"]["action"] == Action.KEEP]
    assert all(lines[a.record_id]["at_hold_end"] is None for a in shared)
    page = Path(held.result.receipt or "").with_suffix(".html").read_text("utf-8")
    erased_then = sum(1 for line in receipt["kept"] if line["at_hold_end"])
    # The page is in both languages: each such line says it in each.
    assert page.count("the retention sweep erases it then") == erased_then
    assert page.count("da sletter lagringstidsryddingen den") == erased_then


@pytest.mark.parametrize("kind", KINDS)
def test_a_sweep_before_the_hold_ends_leaves_the_records(swept: Swept, kind: str) -> None:
    assert swept.early.holds_ended == 0 and swept.early.holds_left == []
    assert of_kind(swept.queued, kind), kind
    assert swept.after_early[kind] == swept.before[kind], kind  # nothing changed at all


@pytest.mark.parametrize("kind", KINDS)
def test_a_sweep_on_the_day_the_hold_ends_erases_them_and_releases_the_holds(
    held: Held, swept: Swept, kind: str
) -> None:
    released = {k for k, _ in swept.released if k.startswith(f"{kind}:")}
    left = {swept.changed[kind]} if kind in CHANGES else set()
    assert released == set(of_kind(swept.queued, kind)) - left, kind
    assert released, kind
    # Discovering the subject again finds none of them: deleted, or nothing of theirs left
    # (SQL's held rows were found through rows the erasure deleted: their snapshot says it).
    assert not released & set(swept.found_late[kind]), kind
    assert swept.after_late[kind] != swept.changed_before[kind], kind
    if kind == "onprem":
        for record_id in released:
            action = swept.queued[record_id]
            key = ",".join(f"{k}={v}" for k, v in action.native_id.items())
            row = swept.after_late[kind][action.location].get(key)
            assert row != swept.changed_before[kind][action.location][key], record_id
            assert (row is None) == (action.action == Action.DELETE), record_id
    still = of_kind(held.queued(dt.date.max), kind)
    assert set(still) == left, kind  # only the changed one stays queued


def test_the_sweep_counts_what_it_released(swept: Swept) -> None:
    assert swept.late.holds_ended == len(swept.released)
    assert len(swept.late.holds_left) == len(CHANGES)
    assert swept.again.holds_ended == 0  # released holds are not carried out again
    assert len(swept.again.holds_left) == len(CHANGES)  # the changed ones wait for the officer


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_a_held_record_changed_since_planning_is_skipped_and_reported(
    swept: Swept, kind: str
) -> None:
    record_id = swept.changed[kind]
    ref = record_ref(swept.queued[record_id])
    assert f"{ref}: skipped" in swept.late.holds_left
    assert record_id not in {k for k, _ in swept.released}
    # Left as it is now: the SQL row with its new date, the sheet's row with its edit.
    action = swept.queued[record_id]
    if kind == "onprem":
        key = ",".join(f"{k}={v}" for k, v in action.native_id.items())
        rows = [s[kind][action.location][key] for s in (swept.changed_before, swept.after_late)]
        assert rows[0] == rows[1] and rows[0]["issued_on"].startswith("2031-06-01")
    else:
        where = {k: action.native_id[k] for k in ("spreadsheet_id", "sheet", "row")}
        found = [r for r in swept.found_late[kind].values() if where.items() <= r.native_id.items()]
        assert len(found) == 1 and found[0].fields["Amount"] == "1"


def test_released_holds_no_longer_name_the_subject(swept: Swept) -> None:
    jira = [action for record_id, action in swept.released if record_id.startswith("jira:")]
    assert jira
    assert not [a for _, a in swept.released if DEMO_SUBJECT in a or f'"{HELD_FOR}"' in a]
