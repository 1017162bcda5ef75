"""Drive writes whose answer is lost after they were applied (issue 12 §1), over real HTTP.

The emulator's ``after_apply_*`` fault serves a write (the sheet changes) and then resets the
connection, or answers 503, instead of sending the real answer. Each test compares the end
state with an uninterrupted run's on a second sandbox seeded alike: the same rows went, and
nobody else's row moved or changed.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from connectors.drive.settings import DriveSource
from dsrflow.plan import Action, Outcome
from sandbox.drive_part import start_drive
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES
from tests.support.snapshots import drive_snapshot
from tests.test_drive_connector import KARI, connector, erasable, kari, planned, sheet_values
from tests.test_drive_retention import NOW, expected_after, restricted_records
from tests.test_drive_retention import sandbox as retention_sandbox  # noqa: F401 - a fixture

USAGE = ("ss-usage-2026q1", "Events")
WEBINAR = ("ss-webinar-2026-02", "Attendees")
RESET_BATCH_UPDATE = {"after_apply_path": r":batchUpdate$", "after_apply_count": 1}


@pytest.fixture
def sandboxes(tmp_path):
    """Two Drive sandboxes seeded alike: one for the faulty run, one for the reference."""
    parts = []
    for name in ("faulty", "reference"):
        directory = tmp_path / name
        directory.mkdir()
        parts.append(start_drive(SandboxContext(directory=directory, fixtures=FIXTURES / "drive")))
    yield [DriveSource.model_validate(p.sources["drive"]) for p in parts]
    for part in parts:
        part.stop()


def faults(source: DriveSource, **settings) -> None:
    httpx.post(f"{source.api_url}/_emulator/faults", json=settings).raise_for_status()


def stats(source: DriveSource) -> dict[str, int]:
    return httpx.get(f"{source.api_url}/_emulator/stats").json()["requests"]


def state(source: DriveSource):
    """Everything the Drive holds; the times of seeding and changing differ between two
    sandboxes, nothing else may."""
    snapshot = drive_snapshot("drive", source)
    for item in snapshot.values():
        item.pop("createdTime", None)
        item.pop("modifiedTime", None)
    return snapshot


def usage_plan(drive):
    records = [r for r in drive.discover(kari()) if r.location.startswith("Usage")]
    plan = planned(drive, records, dt.date(2026, 11, 22))
    assert [(a.action, a.native_id["row"]) for a in plan] == [
        (Action.DELETE, 2),
        (Action.DELETE, 5),
    ]
    return plan


def test_a_reset_after_the_row_deletes_never_deletes_the_next_rows(sandboxes):
    """The issue's case: her rows 2 and 5 are deleted, the answer is lost; a resend by index
    would delete rows 2 and 5 again, which by then are akari's and kari+support's."""
    faulty, reference = sandboxes
    connector(reference).erase(usage_plan(connector(reference)), kari())

    drive = connector(faulty)
    plan = usage_plan(drive)
    faults(faulty, **RESET_BATCH_UPDATE)
    report = drive.erase(plan, kari())

    _, rows = sheet_values(faulty, *USAGE)
    assert [row[1] for row in rows] == [
        "Email",
        "akari.nordmann@example.com",  # the row after hers: another person's, still there
        "ola.nordmann@example.com",
        "kari.nordmann@example.com.evil.org",
        "kari.nordmann+support@example.com",
        "kari.nordman@example.com",
    ]
    assert state(faulty) == state(reference)
    assert stats(faulty)["spreadsheets.batchUpdate"] == 1  # sent once, never again
    assert report.complete, report.results
    assert {r.outcome for r in report.results} == {Outcome.DONE}
    assert all("confirmed by re-reading" in (r.detail or "") for r in report.results)


def test_a_whole_erasure_with_a_reset_after_its_first_write_ends_as_an_uninterrupted_one(
    sandboxes,
):
    faulty, reference = sandboxes
    ref = connector(reference)
    ref_plan = planned(ref, list(ref.discover(kari())), dt.date(2026, 11, 22))
    assert ref.erase(erasable(ref_plan), kari()).complete

    drive = connector(faulty)
    plan = erasable(planned(drive, list(drive.discover(kari())), dt.date(2026, 11, 22)))
    faults(faulty, **RESET_BATCH_UPDATE)
    report = drive.erase(plan, kari())

    assert report.complete, report.results
    assert state(faulty) == state(reference)
    assert [r.location for r in drive.discover(kari())] == ["Renewals 2024 / Invoices"]


def test_a_503_after_the_write_was_applied_is_confirmed_not_resent(sandboxes):
    faulty, reference = sandboxes
    connector(reference).erase(usage_plan(connector(reference)), kari())
    drive = connector(faulty)
    plan = usage_plan(drive)
    faults(faulty, **RESET_BATCH_UPDATE, after_apply_status=503)
    report = drive.erase(plan, kari())
    assert report.complete, report.results
    assert all("HTTP 503" in (r.detail or "") for r in report.results)
    assert stats(faulty)["spreadsheets.batchUpdate"] == 1
    assert state(faulty) == state(reference)


def test_a_write_refused_before_it_ran_is_sent_again(sandboxes):
    """A 503 that did not apply the write leaves the sheet as it was: that is sent again."""
    faulty, reference = sandboxes
    connector(reference).erase(usage_plan(connector(reference)), kari())
    drive = connector(faulty)
    plan = usage_plan(drive)
    faults(faulty, fail_path=r":batchUpdate$", fail_status=503, fail_count=1)
    report = drive.erase(plan, kari())
    assert report.complete, report.results
    assert stats(faulty)["spreadsheets.batchUpdate"] == 2
    assert len(drive.sleeps) == 1  # backed off before sending it again
    assert state(faulty) == state(reference)


def test_a_row_that_changed_since_planning_is_not_deleted(sandboxes):
    faulty, _ = sandboxes
    drive = connector(faulty)
    plan = usage_plan(drive)
    sheets, _ = sheet_values(faulty, *USAGE)
    # Someone corrects the count in her row 5: same person, not what the plan saw.
    sheets.spreadsheets().values().update(
        spreadsheetId=USAGE[0], range="'Events'!E5", valueInputOption="RAW", body={"values": [[7]]}
    ).execute()
    report = drive.erase(plan, kari())
    by_row = {r.record_id: r for r in report.results}
    row5 = by_row[next(a.record_id for a in plan if a.native_id["row"] == 5)]
    assert row5.outcome == Outcome.SKIPPED
    assert "changed since planning" in row5.detail
    assert not report.complete
    _, rows = sheet_values(faulty, *USAGE)
    assert ["2026-01-05", "Kari.Nordmann@Example.COM", "Timesheet Pro", "report_exported", "7"] in [
        [str(c) for c in row] for row in rows
    ]


def test_a_reset_after_a_rectified_cell_is_confirmed_by_reading_the_cell(sandboxes):
    faulty, reference = sandboxes
    fields = {"Name": "Kari Nordmann-Berg", "company": "Fjordsoft ASA"}

    def rectify(source: DriveSource, fault: dict | None = None):
        drive = connector(source)
        record = next(r for r in drive.discover(kari()) if r.location.startswith("Webinar"))
        [erasure] = planned(drive, [record])
        action = erasure.model_copy(update={"action": Action.RECTIFY, "fields": fields})
        if fault:
            faults(source, **fault)
        return drive.rectify([action], kari())

    assert rectify(reference).complete
    # values.update is a PUT on the cell's range; the read-back GET on the same path is not hit.
    report = rectify(faulty, {"after_apply_path": "/values/", "after_apply_count": 1})
    assert report.complete, report.results
    assert stats(faulty)["values.update"] == 2  # one per field, none resent
    _, rows = sheet_values(faulty, *WEBINAR)
    assert rows[2][1:4] == ["Kari Nordmann-Berg", KARI.upper(), "Fjordsoft ASA"]
    assert rows[1][1] == "Ola Nordmann"
    assert state(faulty) == state(reference)


def test_the_sweep_with_a_reset_after_its_batch_update_deletes_each_old_row_once(
    retention_sandbox,  # noqa: F811 - the fixture imported above
):
    before = sheet_values(retention_sandbox, "ss-usage-2024h2", "Events")[1]
    drive = connector(retention_sandbox)
    protected = restricted_records(drive)
    dry = {r.table: r for r in drive.sweep(NOW, dry_run=True, protected=protected)}
    going = dry["Usage export 2024-H2/Events"].rows
    faults(retention_sandbox, **RESET_BATCH_UPDATE)
    results = {r.table: r for r in connector(retention_sandbox).sweep(NOW, protected=protected)}
    assert results["Usage export 2024-H2/Events"].rows == going
    assert results["Usage export 2024-H2/Events"].batches == 1
    assert stats(retention_sandbox)["spreadsheets.batchUpdate"] == 1
    after = sheet_values(retention_sandbox, "ss-usage-2024h2", "Events")[1]
    assert len(after) == len(before) - going
    # The rows that stay are exactly the young and the unsure ones, in order.
    assert after == expected_after(before)
    again = {r.table: r for r in drive.sweep(NOW, protected=protected)}
    assert again["Usage export 2024-H2/Events"].rows == 0  # nothing was left half done


def test_the_fault_applies_the_write_then_resets_the_connection(sandboxes):
    """What the client sees is a dropped connection, not an HTTP status; the write stands."""
    faulty, _ = sandboxes
    sheets, before = sheet_values(faulty, *USAGE)
    faults(faulty, **RESET_BATCH_UPDATE)
    token = sheets._http.credentials.token
    body = {
        "requests": [
            {
                "deleteDimension": {
                    "range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 7, "endIndex": 8}
                }
            }
        ]
    }
    with pytest.raises(httpx.TransportError):  # ReadError (reset) or RemoteProtocolError
        httpx.post(
            f"{faulty.api_url}/v4/spreadsheets/{USAGE[0]}:batchUpdate",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    _, after = sheet_values(faulty, *USAGE)
    assert after == before[:7]  # the last row went
