"""The retention sweep through the Drive connector, with the real google-api-python-client
against the sandbox emulator over HTTP.

Every test starts the sandbox's Drive part on ``tests/fixtures/drive/drive.json`` plus a few
spreadsheets with old rows (written to the test's own fixtures directory; the shared fixture
is not changed). The mapping is the sandbox's, ``mappings/drive.yaml``: usage exports live two
years, counted from ``Day``; no other layout has a rule.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import yaml

from connectors.base import Capability, SourceUnavailable, Sweeping, capabilities
from connectors.drive.retention import age_of, readings
from connectors.drive.settings import DriveSource
from dsrflow.mapping import MappingError, mapping_json_schema, parse_mapping
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from sandbox.drive_part import start_drive
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES
from tests.test_drive_connector import connector, sheet_values

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
CUTOFF = "2024-11-22T12:00:00Z"  # two years before NOW
RESTRICTED = "restricted@example.com"
OLD_EXPORT = "Usage export 2024-H2"
HEADER = ["Day", "Email", "Product", "Event", "Count"]
# Row number (1-based, as in the sheet) -> (the row, what the sweep does with it).
USAGE_ROWS = {
    2: (["2024-06-01", "ola.nordmann@example.com", "Release Radar", "login", 3], "goes"),
    3: (["2026-01-10", "ola.nordmann@example.com", "Release Radar", "login", 1], "young"),
    4: ([45000, "pat@example.com", "Secure Forms", "login", 2], "goes"),  # serial: 2023-03-15
    5: (["not a date", "pat@example.com", "Secure Forms", "login", 2], "unreadable"),
    6: (["2024-11-21", "pat@example.com", "Timesheet Pro", "login", 1], "goes"),  # whole day past
    7: (["2024-11-22", "pat@example.com", "Timesheet Pro", "login", 1], "young"),  # day of cutoff
    8: (["", "al@example.com", "Timesheet Pro", "login", 1], "unreadable"),
    9: (["11/12/2024", "al@example.com", "Timesheet Pro", "login", 1], "ambiguous"),
    10: (["2024-03-04T10:00:00Z", RESTRICTED, "Release Radar", "login", 4], "protected"),
    11: (["2025-06-01", RESTRICTED, "Release Radar", "login", 4], "young"),
    12: (["4 March 2024", "al@example.com", "Secure Forms", "export", 1], "goes"),
    13: ([45000.5, "al@example.com", "Secure Forms", "export", 1], "goes"),
    14: ([], "blank"),
    15: (["June 2024", "al@example.com", "Secure Forms", "export", 1], "unreadable"),
}
GOING = [n for n, (_, fate) in USAGE_ROWS.items() if fate == "goes"]
EXTRA_SPREADSHEETS = [
    {
        "id": "ss-usage-2024h2",
        "name": OLD_EXPORT,
        "parents": ["fld-analytics"],
        "sheets": [
            {"title": "Events", "values": [HEADER, *(row for row, _ in USAGE_ROWS.values())]},
            # No identity column: the scan layout, which has no rule, reads this sheet.
            {"title": "Summary", "values": [["Day", "Count"], ["2023-01-01", 5]]},
        ],
    },
    {
        "id": "ss-trials-2022",  # an old sheet whose layout has no rule
        "name": "Trial sign-ups 2022",
        "parents": ["fld-sales"],
        "sheets": [
            {
                "title": "Q1",
                "values": [
                    ["Signed up", "Name", "E-mail", "Phone", "Company"],
                    ["2022-01-05 10:00", "Old Trial", "old.trial@example.com", "", "Nord AS"],
                ],
            }
        ],
    },
]


@pytest.fixture
def sandbox(tmp_path):
    data = json.loads((FIXTURES / "drive" / "drive.json").read_text(encoding="utf-8"))
    data["spreadsheets"] += EXTRA_SPREADSHEETS
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "drive.json").write_text(json.dumps(data), encoding="utf-8")
    part = start_drive(SandboxContext(directory=tmp_path, fixtures=fixtures))
    yield DriveSource.model_validate(part.sources["drive"])
    part.stop()


def values(source: DriveSource, spreadsheet_id: str, title: str):
    return sheet_values(source, spreadsheet_id, title)[1]


def everything(source: DriveSource):
    """The sheets a sweep could touch, as the Sheets API shows them."""
    return {
        where: values(source, *where)
        for where in [
            ("ss-usage-2024h2", "Events"),
            ("ss-usage-2024h2", "Summary"),
            ("ss-usage-2026q1", "Events"),
            ("ss-trials-2022", "Q1"),
            ("ss-webinar-2026-02", "Attendees"),
        ]
    }


def writes(source: DriveSource) -> int:
    stats = httpx.get(f"{source.api_url}/_emulator/stats").json()["requests"]
    return stats.get("spreadsheets.batchUpdate", 0)


def restricted_records(drive):
    return list(drive.discover(Subject.from_raw([RESTRICTED])))


def by_table(results):
    return {r.table: r for r in results}


def expected_after(before):
    """The old export's Events as the sweep should leave them: header, then what stays."""
    return [before[0], *(row for n, row in enumerate(before[1:], start=2) if n not in GOING)]


# -- the sweep ------------------------------------------------------------------------------------


def test_old_rows_go_and_every_other_row_stays(sandbox):
    drive = connector(sandbox)
    assert Capability.SWEEP in capabilities(drive)
    assert isinstance(drive, Sweeping)
    before = everything(sandbox)
    results = by_table(drive.sweep(NOW, protected=restricted_records(drive)))

    # Only sheets under a layout with a rule are swept: not the summary, not the trials.
    assert set(results) == {f"{OLD_EXPORT}/Events", "Usage export 2026-Q1/Events"}
    old = results[f"{OLD_EXPORT}/Events"]
    assert old.rule == "delete_rows after 2 years from Day"
    assert old.cutoff == CUTOFF
    assert (old.rows, old.protected, old.batches, old.dry_run) == (len(GOING), 1, 1, False)
    assert old.notes == [
        "3 row(s) left: no readable date in 'Day' (rows 5, 8, 15)",
        "1 row(s) left: 'Day' reads as dates on both sides of the cutoff, day/month order "
        "unknown (rows 9)",
    ]
    young = results["Usage export 2026-Q1/Events"]
    assert (young.rows, young.protected, young.batches, young.notes) == (0, 0, 0, [])

    after = everything(sandbox)
    events = after.pop(("ss-usage-2024h2", "Events"))
    assert events == expected_after(before.pop(("ss-usage-2024h2", "Events")))
    assert events[0] == HEADER  # the header row is never a candidate
    assert [row[0] for row in events[1:] if row] == [
        "2026-01-10",
        "not a date",
        "2024-11-22",
        "",
        "11/12/2024",
        "2024-03-04T10:00:00Z",  # old, but the restricted subject's
        "2025-06-01",
        "June 2024",
    ]
    assert after == before  # the other sheets, old rows or not, are as they were
    assert writes(sandbox) == 1  # one batchUpdate for the one sheet with old rows


def test_dry_run_counts_the_same_and_changes_nothing(sandbox):
    drive = connector(sandbox)
    protected = restricted_records(drive)
    before = everything(sandbox)
    dry = by_table(drive.sweep(NOW, dry_run=True, protected=protected))
    old = dry[f"{OLD_EXPORT}/Events"]
    assert (old.rows, old.protected, old.batches, old.dry_run) == (len(GOING), 1, 0, True)
    assert len(old.notes) == 2
    assert everything(sandbox) == before
    assert writes(sandbox) == 0
    real = by_table(drive.sweep(NOW, protected=protected))
    assert real[f"{OLD_EXPORT}/Events"].rows == old.rows  # the dry run told the truth


def test_a_rerun_removes_nothing_more(sandbox):
    drive = connector(sandbox)
    protected = restricted_records(drive)
    drive.sweep(NOW, protected=protected)
    first = everything(sandbox)
    again = drive.sweep(NOW, protected=protected)
    assert [(r.table, r.rows, r.batches) for r in again] == [
        (f"{OLD_EXPORT}/Events", 0, 0),
        ("Usage export 2026-Q1/Events", 0, 0),
    ]
    assert by_table(again)[f"{OLD_EXPORT}/Events"].protected == 1
    assert everything(sandbox) == first
    assert writes(sandbox) == 1


def test_without_protection_the_restricted_old_row_goes_too(sandbox):
    result = by_table(connector(sandbox).sweep(NOW))[f"{OLD_EXPORT}/Events"]
    assert (result.rows, result.protected) == (len(GOING) + 1, 0)
    assert RESTRICTED in json.dumps(values(sandbox, "ss-usage-2024h2", "Events"))  # the young one


def test_protected_rows_are_recognised_after_rows_moved(sandbox):
    drive = connector(sandbox)
    protected = restricted_records(drive)
    assert sorted(r.native_id["row"] for r in protected) == [10, 11]
    # Someone inserts three rows at the top after discovery: her rows move down to 13 and 14,
    # and rows 10 and 11 are now other people's.
    sheets, _ = sheet_values(sandbox, "ss-usage-2024h2", "Events")
    insert = {"sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 4}
    sheets.spreadsheets().batchUpdate(
        spreadsheetId="ss-usage-2024h2",
        body={"requests": [{"insertDimension": {"range": insert}}]},
    ).execute()
    result = by_table(drive.sweep(NOW, protected=protected))[f"{OLD_EXPORT}/Events"]
    assert (result.rows, result.protected) == (len(GOING), 1)
    days = [row[0] for row in values(sandbox, "ss-usage-2024h2", "Events") if row]
    assert "2024-03-04T10:00:00Z" in days


def test_clear_identity_keeps_the_row_and_its_date(sandbox, tmp_path):
    data = yaml.safe_load(sandbox.mapping.read_text(encoding="utf-8"))
    data["layouts"][0]["retention"]["action"] = "clear_identity"
    mapping = parse_mapping(yaml.safe_dump(data), tmp_path / "m.yaml")
    drive = connector(sandbox, mapping)
    before = values(sandbox, "ss-usage-2024h2", "Events")
    result = by_table(drive.sweep(NOW))[f"{OLD_EXPORT}/Events"]
    assert result.rule == "clear_identity after 2 years from Day"
    assert result.rows == len(GOING) + 1
    after = values(sandbox, "ss-usage-2024h2", "Events")
    assert len(after) == len(before)
    # Day stays (a date, not the person); Product is system.operations; the rest is hers.
    assert after[1] == ["2024-06-01", "", "Release Radar"]
    assert after[2] == before[2]  # young
    again = by_table(drive.sweep(NOW))[f"{OLD_EXPORT}/Events"]
    assert (again.rows, again.batches) == (0, 0)
    assert values(sandbox, "ss-usage-2024h2", "Events") == after


# -- failures -------------------------------------------------------------------------------------


def test_a_failing_write_makes_the_source_unavailable(sandbox):
    httpx.post(
        f"{sandbox.api_url}/_emulator/faults",
        json={"fail_path": ":batchUpdate", "fail_status": 503, "fail_count": 1000},
    )
    before = everything(sandbox)
    drive = connector(sandbox, max_retries=2)
    with pytest.raises(SourceUnavailable, match=r"'drive'.*HTTP 503") as caught:
        drive.sweep(NOW)
    assert caught.value.source == "drive"
    assert len(drive.sleeps) == 2  # backed off, as every other call does
    httpx.post(f"{sandbox.api_url}/_emulator/faults", json={})
    assert everything(sandbox) == before


def test_a_throttled_read_makes_the_source_unavailable(sandbox):
    # Two reads a minute: Drive then answers 403 userRateLimitExceeded, Sheets 429.
    httpx.post(f"{sandbox.api_url}/_emulator/quota", json={"read_quota_per_minute": 2})
    drive = connector(sandbox, max_retries=1)
    with pytest.raises(SourceUnavailable, match=r"HTTP.*(403|429)") as caught:
        drive.sweep(NOW)
    assert caught.value.source == "drive"
    assert writes(sandbox) == 0
    httpx.post(f"{sandbox.api_url}/_emulator/quota", json={"read_quota_per_minute": 0})
    result = by_table(drive.sweep(NOW))[f"{OLD_EXPORT}/Events"]  # healed: the rerun does it
    assert result.rows == len(GOING) + 1


# -- the mapping and the dates --------------------------------------------------------------------

DRIVE_MAPPING = """\
kind: drive
folders: [{name: A}]
categories:
  user:
    purposes: [x]
    legal_basis: contract
    retention: 1 year
layouts:
  - identities: [{headers: [Email], kind: email}]
    timestamp_columns: [Signed up]
    erasure: clear_cells
    retention:
      max_age: {months: 18}
      counts_from: Signed up
"""


def test_retention_counts_from_a_timestamp_column(tmp_path):
    mapping = parse_mapping(DRIVE_MAPPING, tmp_path / "drive.yaml")
    layout = mapping.layouts[0]
    assert layout.retention_action == "clear_identity"  # as the layout's erasure clears cells
    assert layout.retention.describe(layout.retention_action) == (
        "clear_identity after 18 months from Signed up"
    )
    broken = DRIVE_MAPPING.replace("counts_from: Signed up", "counts_from: Signed")
    with pytest.raises(MappingError) as caught:
        parse_mapping(broken, tmp_path / "drive.yaml")
    [problem] = caught.value.problems
    assert problem.startswith("layouts.0 (line 9)")  # where the layout starts
    assert "retention.counts_from: 'Signed' is not one of the layout's timestamp_columns" in problem
    wrong_action = DRIVE_MAPPING.replace(
        "counts_from: Signed up", "counts_from: Signed up\n      action: shred"
    )
    with pytest.raises(MappingError, match="action"):
        parse_mapping(wrong_action, tmp_path / "drive.yaml")


def test_the_published_schema_describes_the_rule():
    schema = json.dumps(mapping_json_schema())
    assert "header of the date column the age counts from" in schema
    assert "clear_identity" in schema


@pytest.mark.parametrize(
    ("cell", "age"),
    [
        ("2024-11-21", "old"),
        ("2024-11-22", "young"),  # its day is not over at the cutoff
        ("2024-11-22T11:59:00Z", "old"),
        ("2024-11-22T13:00:00+02:00", "old"),  # 11:00 UTC
        ("2024-11-22 12:30", "young"),
        ("45617", "old"),  # serial 2024-11-21
        ("45618", "young"),
        ("45618.4", "old"),  # 2024-11-22 09:36
        ("15.06.2024", "old"),
        ("Jun 15, 2024", "old"),
        ("03/04/2024", "old"),  # March or April: both old
        ("11/12/2024", "ambiguous"),  # 12 November or 11 December
        ("13/12/2024", "young"),  # only one order makes sense
        ("June 2024", "unreadable"),
        ("2024", "unreadable"),  # a year is not a date (nor serial 2024 of 1905)
        ("", "unreadable"),
        ("n/a", "unreadable"),
        ("2024-13-45", "unreadable"),
    ],
)
def test_date_cells(cell, age):
    assert age_of(cell, dt.datetime(2024, 11, 22, 12, 0, tzinfo=dt.UTC)) == age


def test_a_date_alone_counts_as_its_whole_day():
    assert readings("2024-11-21") == {dt.datetime(2024, 11, 22, tzinfo=dt.UTC)}
    assert readings(45617) == {dt.datetime(2024, 11, 22, tzinfo=dt.UTC)}


# -- the flow -------------------------------------------------------------------------------------


@pytest.mark.prefect
def test_sweep_flow_sweeps_drive_and_honours_restrictions(prefect_harness, sandbox, tmp_path):
    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger
    from flows.retention import retention_sweep
    from sandbox.runtime import write_config

    config = tmp_path / "dsrflow.yaml"
    drive = {"drive": json.loads(sandbox.model_dump_json(exclude_none=True))}
    write_config(config, drive, tmp_path / "exports")
    ledger = Ledger(load_config(config).ledger_url)
    ledger.add_restriction(Subject.from_raw([RESTRICTED]), "DSR-2026-0901", "test")
    ledger.close()
    before = everything(sandbox)

    with run_settings(config):
        dry = retention_sweep(dry_run=True, as_of=NOW)
    assert everything(sandbox) == before
    with run_settings(config):
        done = retention_sweep(as_of=NOW)

    assert dry.skipped_sources == done.skipped_sources == []
    for summary, dry_run in ((dry, True), (done, False)):
        rows = {r["table"]: r for r in summary.results}
        assert set(rows) == {f"{OLD_EXPORT}/Events", "Usage export 2026-Q1/Events"}
        old = rows[f"{OLD_EXPORT}/Events"]
        assert old["source"] == "drive"
        assert (old["rows"], old["protected"], old["dry_run"]) == (len(GOING), 1, dry_run)
        assert old["cutoff"] == CUTOFF
        assert "notes" not in old  # row numbers stay out of the Prefect database
        assert rows["Usage export 2026-Q1/Events"]["rows"] == 0
    events = values(sandbox, "ss-usage-2024h2", "Events")
    assert events == expected_after(before[("ss-usage-2024h2", "Events")])
    ledger = Ledger(load_config(config).ledger_url)
    sweeps = [e for e in ledger.entries() if e.event.startswith("retention_sweep")]
    ledger.close()
    assert sweeps[-1].details["rows"][f"drive.{OLD_EXPORT}/Events"] == len(GOING)
