"""The Drive connector with the real google-api-python-client against the sandbox emulator.

Every test starts the sandbox's Drive part on ``tests/fixtures/drive/drive.json`` (format:
``sandbox/drive_seed.py``), so the service-account key, the JWT grant at the emulator's
``/token`` and the sandbox mapping are the ones ``dsr sandbox up`` uses.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest
import yaml
from google.oauth2 import service_account
from googleapiclient.discovery import build

from connectors.base import Capability, SourceUnavailable, capabilities
from connectors.drive.client import SCOPES, GoogleClient
from connectors.drive.connector import DriveConnector
from connectors.drive.listing import q_string
from connectors.drive.mapping import DriveMapping
from connectors.drive.settings import DriveSource
from connectors.registry import open_connector
from dsrflow.mapping import MappingError, load_mapping, parse_mapping
from dsrflow.plan import Action, Outcome
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from sandbox.drive_part import DELEGATED_USER, start_drive
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES
from tests.support.approval import approved

KARI = "kari.nordmann@example.com"
KARI_PHONE = "+4791234567"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def sandbox(tmp_path):
    part = start_drive(SandboxContext(directory=tmp_path, fixtures=FIXTURES / "drive"))
    yield DriveSource.model_validate(part.sources["drive"])
    part.stop()


def connector(source: DriveSource, mapping: DriveMapping | None = None, **settings):
    sleeps: list[float] = []
    source = source.model_copy(update=settings)
    client = GoogleClient("drive", source, sleep=sleeps.append)
    found = DriveConnector("drive", mapping or load_mapping(source.mapping), source, client=client)
    found.sleeps = sleeps  # the backoff waits asked for, without waiting
    return found


def planned(drive, records, today=None):
    """The mapping's erasure plan for ``records``, in their order (what the flows build)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return [drive.mapping.plan_erasure(record, today) for record in records]


def erasable(plan):
    """The actions the flows hand to ``erase``: a KEEP stays where it is."""
    return [a for a in plan if a.action != Action.KEEP]


def kari(phones=(KARI_PHONE,)):
    return Subject.from_raw([KARI], list(phones))


def where(records):
    return sorted((r.location, r.native_id["row"]) for r in records)


def sheet_values(source: DriveSource, spreadsheet_id: str, title: str):
    creds = service_account.Credentials.from_service_account_file(
        str(source.credentials_file), scopes=list(SCOPES), subject=DELEGATED_USER
    )
    sheets = build(
        "sheets",
        "v4",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": f"{source.api_url}/"},
    )
    quoted = "'" + title.replace("'", "''") + "'"
    answer = (
        sheets.spreadsheets().values().get(spreadsheetId=spreadsheet_id, range=quoted).execute()
    )
    return sheets, answer.get("values", [])


# -- discovery ------------------------------------------------------------------------------------


def test_discovery_finds_exactly_the_subjects_rows(sandbox):
    drive = open_connector("drive", sandbox, load_mapping(sandbox.mapping))
    assert Capability.ERASE in capabilities(drive)
    records = list(drive.discover(kari()))
    assert where(records) == [
        ("Account notes / Notes", 2),  # free text, generic scan, other casing
        ("Account notes / Notes", 3),  # free text with someone else's address: shared
        ("Meetup 2023 guest list / Guests", 2),
        ("Renewals 2024 / Invoices", 2),
        ("Trial sign-ups 2026 / Q1 'trial' list", 2),  # by phone only
        ("Usage export 2026-Q1 / Events", 2),
        ("Usage export 2026-Q1 / Events", 5),  # Kari.Nordmann@Example.COM
        ("Webinar attendees 2026-02 / Attendees", 3),
    ]
    usage = next(r for r in records if r.location.startswith("Usage") and r.native_id["row"] == 5)
    assert usage.fields == {
        "Day": "2026-01-05",
        "Email": "Kari.Nordmann@Example.COM",
        "Product": "Timesheet Pro",
        "Event": "report_exported",
        "Count": "2",
    }
    assert usage.categories["Email"] == "user.contact.email"
    assert usage.categories["Day"] == "user.behavior"
    assert usage.categories["Product"] == "system.operations"
    assert usage.matched == (f"email:{KARI}",)
    assert usage.timestamps == {"Day": "2026-01-05"}
    assert usage.native_id["spreadsheet_id"] == "ss-usage-2026q1"
    assert usage.native_id["sheet_id"] == 0
    trial = next(r for r in records if r.location.startswith("Trial"))
    assert trial.matched == (f"phone:{KARI_PHONE}",)
    assert trial.timestamps == {"Signed up": "2026-03-04T09:30:00Z"}
    shared = [r for r in records if r.shared]
    assert [(r.location, r.native_id["row"], r.shared_with) for r in shared] == [
        ("Account notes / Notes", 3, ("Note",))
    ]
    # Sheets without identity columns are scanned and nothing in them is taken for her.
    assert drive.stats.sheets_unmapped == 0
    assert drive.stats.spreadsheets == 8


def test_look_alikes_are_never_the_subject(sandbox):
    drive = connector(sandbox)
    for look_alike in (
        "akari.nordmann@example.com",
        "kari.nordmann@example.com.evil.org",
        "kari.nordmann+support@example.com",
        "kari.nordman@example.com",
    ):
        records = list(drive.discover(Subject.from_raw([look_alike])))
        assert all(look_alike in r.matched[0] for r in records), look_alike
        assert all(r.matched == (f"email:{look_alike}",) for r in records)
    al = list(drive.discover(Subject.from_raw(["al@example.com"])))
    assert [(r.location, r.fields["E-mail address"]) for r in al] == [
        ("Leads Nordics / Leads", "al@example.com")
    ]


def test_quotes_in_identifiers_are_escaped_for_q(sandbox):
    assert q_string("o'brien\\x") == "'o\\'brien\\\\x'"
    drive = connector(sandbox)
    records = list(drive.discover(Subject.from_raw(["O'Brien@Example.com"])))
    assert [(r.location, r.fields["Name"]) for r in records] == [
        ("Trial sign-ups 2026 / Q1 'trial' list", "Pat O'Brien")
    ]


@pytest.mark.parametrize("read_via", ["export", "sheets"])
def test_folder_listing_pages_and_one_read_per_spreadsheet(sandbox, read_via):
    drive = connector(sandbox, page_size=2, read_via=read_via)
    records = list(drive.discover(kari()))
    stats = drive.client.stats
    # One read per spreadsheet: 7 in the folders, 1 named by id. Through the export, a Sheets
    # read only for those the export cannot clear of her.
    held = {r.native_id["spreadsheet_id"] for r in records}
    if read_via == "export":
        assert stats.exports == 8
        assert len(held) <= stats.values_reads < 8
        assert drive.stats.cleared == 8 - stats.values_reads
    else:
        assert (stats.exports, stats.values_reads) == (0, 8)
    # Subfolders of the mapped folders: none (1 page). Folder listing: 7 spreadsheets, 4 pages.
    # Full-text search: 5 for the address (3 pages), none for the phone (1 page).
    assert stats.list_pages == 9
    url = sandbox.api_url
    counts = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    # Sheet titles and values come in one spreadsheets.get: no values.batchGet at all.
    assert counts.get("values.batchGet", 0) == 0
    assert counts["spreadsheets.get"] == stats.values_reads
    assert counts.get("files.export", 0) == stats.exports
    # Through /batch/drive/v3: the mapped folders (readable?), the spreadsheet named by id.
    assert counts["batch"] == 2


def test_full_text_search_only_adds_candidates(sandbox, tmp_path):
    data = yaml.safe_load(sandbox.mapping.read_text())
    data["folders"] = [{"name": "Analytics"}]
    data["spreadsheets"] = []
    only_analytics = parse_mapping(yaml.safe_dump(data), tmp_path / "m.yaml")
    records = list(connector(sandbox, only_analytics).discover(kari()))
    locations = {r.location for r in records}
    # Found by full-text search outside the folder: the guest list, the notes, the renewals.
    assert "Meetup 2023 guest list / Guests" in locations
    assert "Usage export 2026-Q1 / Events" in locations
    data["full_text_search"] = False
    no_search = parse_mapping(yaml.safe_dump(data), tmp_path / "m.yaml")
    records = list(connector(sandbox, no_search).discover(kari()))
    assert {r.location for r in records} == {"Usage export 2026-Q1 / Events"}


def test_missing_folder_makes_the_source_unavailable(sandbox, tmp_path):
    data = yaml.safe_load(sandbox.mapping.read_text())
    data["folders"] = [{"name": "No such folder"}]
    mapping = parse_mapping(yaml.safe_dump(data), tmp_path / "m.yaml")
    with pytest.raises(SourceUnavailable, match="No such folder"):
        list(connector(sandbox, mapping).discover(kari()))


def test_mapping_errors_name_the_path(tmp_path):
    text = (
        "kind: drive\nfolders: [{name: A}]\ncategories:\n  user:\n    purposes: [x]\n"
        "    legal_basis: contract\n    retention: 1 year\nlayouts:\n  - default_category: user\n"
        "  - scan: true\n    columns: {Note: {category: user.notes}}\n"
    )
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, tmp_path / "drive.yaml")
    assert caught.value.problems == ["layouts.0 (line 9): a layout needs identities or scan: true"]
    fixed = text.replace("  - default_category: user\n", "")
    parsed = parse_mapping(fixed, tmp_path / "drive.yaml")
    assert parsed.layouts[0].category_of("note") == "user.notes"


# -- erasure --------------------------------------------------------------------------------------


def test_erasure_deletes_bottom_up_keeps_holds_and_is_idempotent(sandbox):
    drive = connector(sandbox)
    records = list(drive.discover(kari()))
    plan = planned(drive, records, dt.date(2026, 11, 22))
    by_place = {(a.location, a.native_id["row"]): a for a in plan}
    assert by_place[("Renewals 2024 / Invoices", 2)].action == Action.KEEP
    assert by_place[("Renewals 2024 / Invoices", 2)].keep_until == dt.date(2029, 12, 31)
    assert by_place[("Webinar attendees 2026-02 / Attendees", 3)].action == Action.REDACT
    assert by_place[("Account notes / Notes", 3)].action == Action.REDACT  # shared
    assert by_place[("Account notes / Notes", 3)].fields == {"Note": "clear"}
    assert by_place[("Usage export 2026-Q1 / Events", 2)].action == Action.DELETE

    report = drive.erase(erasable(plan), kari())
    assert report.complete, report.results
    [kept] = drive.erase([by_place[("Renewals 2024 / Invoices", 2)]], kari()).results
    assert kept.outcome == Outcome.SKIPPED
    assert kept.detail.startswith("kept: ")
    assert "Bookkeeping Act" in kept.detail

    # Two of her rows with other people's rows between them: only hers went.
    _, usage = sheet_values(sandbox, "ss-usage-2026q1", "Events")
    assert [row[1] for row in usage] == [
        "Email",
        "akari.nordmann@example.com",
        "ola.nordmann@example.com",
        "kari.nordmann@example.com.evil.org",
        "kari.nordmann+support@example.com",
        "kari.nordman@example.com",
    ]
    # clear_cells: the row stays for the head count, her cells are empty.
    _, webinar = sheet_values(sandbox, "ss-webinar-2026-02", "Attendees")
    assert webinar[2] == ["", "", "", "", "Release Radar deep dive", "yes"]
    _, notes = sheet_values(sandbox, "ss-notes", "Notes")
    assert notes[2] == ["2026-02-12", "Fjordsoft AS"]  # the shared note's text cleared

    after = list(drive.discover(kari()))
    assert where(after) == [("Renewals 2024 / Invoices", 2)]  # what is kept on purpose

    again = drive.erase(erasable(plan), kari())
    assert again.complete
    assert again.count(Outcome.ALREADY_DONE) == len(plan) - 1  # all but the hold


def test_a_sheet_edited_after_planning_is_left_untouched(sandbox):
    drive = connector(sandbox)
    records = [r for r in drive.discover(kari()) if r.location.startswith("Usage")]
    plan = planned(drive, records)
    assert [a.action for a in plan] == [Action.DELETE, Action.DELETE]
    # Someone inserts a row at the top: her rows move down by one.
    sheets, before = sheet_values(sandbox, "ss-usage-2026q1", "Events")
    sheets.spreadsheets().batchUpdate(
        spreadsheetId="ss-usage-2026q1",
        body={
            "requests": [
                {
                    "insertDimension": {
                        "range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}
                    }
                }
            ]
        },
    ).execute()
    report = drive.erase(plan, kari())
    assert not report.complete
    assert [r.outcome for r in report.results] == [Outcome.SKIPPED, Outcome.SKIPPED]
    assert "left untouched" in report.results[0].detail
    _, after = sheet_values(sandbox, "ss-usage-2026q1", "Events")
    assert after == [before[0], [], *before[1:]]
    # Planned again from a fresh discovery, it goes through.
    fresh = [r for r in drive.discover(kari()) if r.location.startswith("Usage")]
    assert where(fresh) == [
        ("Usage export 2026-Q1 / Events", 3),
        ("Usage export 2026-Q1 / Events", 6),
    ]
    assert drive.erase(planned(drive, fresh), kari()).complete


def test_a_column_renamed_after_planning_is_not_reported_cleared(sandbox):
    drive = connector(sandbox)
    record = next(r for r in drive.discover(kari()) if r.location.startswith("Webinar"))
    [plan] = planned(drive, [record])
    assert plan.action == Action.REDACT and "Name" in plan.fields
    sheets, before = sheet_values(sandbox, "ss-webinar-2026-02", "Attendees")
    sheets.spreadsheets().values().update(
        spreadsheetId="ss-webinar-2026-02",
        range="'Attendees'!B1",
        valueInputOption="RAW",
        body={"values": [["Full name"]]},
    ).execute()
    [result] = drive.erase([plan], kari()).results
    assert result.outcome == Outcome.SKIPPED
    assert "no column Name" in result.detail
    _, after = sheet_values(sandbox, "ss-webinar-2026-02", "Attendees")
    assert after[2] == before[2]  # her name is still there, and nothing says otherwise


def test_rectification_is_read_back(sandbox):
    drive = connector(sandbox)
    record = next(r for r in drive.discover(kari()) if r.location.startswith("Webinar"))
    [erasure] = planned(drive, [record])
    action = erasure.model_copy(
        update={
            "action": Action.RECTIFY,
            "fields": {"Name": "Kari Nordmann-Berg", "company": "Fjordsoft ASA"},
        }
    )
    report = drive.rectify([action], kari())
    assert report.complete, report.results
    _, webinar = sheet_values(sandbox, "ss-webinar-2026-02", "Attendees")
    assert webinar[2][1:4] == ["Kari Nordmann-Berg", KARI.upper(), "Fjordsoft ASA"]
    missing = action.model_copy(update={"fields": {"Shoe size": "38"}})
    [result] = drive.rectify([missing], kari()).results
    assert result.outcome == Outcome.SKIPPED
    assert "Shoe size" in result.detail


SDK = ("google", "googleapiclient", "google_auth_httplib2", "httplib2")


def test_only_the_client_touches_the_sdk():
    package = Path(__file__).resolve().parents[1] / "connectors" / "drive"
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        sdk = {name for name in imported if name.split(".")[0] in SDK}
        assert not sdk or module.name == "client.py", (module.name, sdk)


def test_what_a_drive_connector_can_do_follows_from_its_methods(sandbox):
    assert capabilities(connector(sandbox)) == {
        Capability.DISCOVER,
        Capability.ERASE,
        Capability.RECTIFY,
        Capability.SWEEP,
    }


def test_actions_a_method_does_not_do_are_answered_never_dropped(sandbox):
    drive = connector(sandbox)
    records = list(drive.discover(kari()))
    plan = {a.location: a for a in planned(drive, records, dt.date(2026, 11, 22))}
    hold = plan["Renewals 2024 / Invoices"]
    delete = plan["Usage export 2026-Q1 / Events"]
    rectify = delete.model_copy(update={"action": Action.RECTIFY, "fields": {"Product": "X"}})
    erased = drive.erase([hold, rectify], kari()).results
    rectified = drive.rectify([hold, delete], kari()).results
    for results in (erased, rectified):
        assert results[0].outcome == Outcome.SKIPPED
        assert results[0].detail.startswith("kept: ")
        assert "Bookkeeping Act" in results[0].detail
    assert (erased[1].outcome, erased[1].detail) == (Outcome.FAILED, "cannot rectify here")
    assert (rectified[1].outcome, rectified[1].detail) == (Outcome.FAILED, "cannot delete here")
    assert len(list(drive.discover(kari()))) == len(records)  # nothing changed


# -- quotas and failures -------------------------------------------------------------------------


def test_throttling_is_retried_with_growing_backoff(sandbox):
    httpx.post(f"{sandbox.api_url}/_emulator/faults", json={"throttle_every": 3})
    drive = connector(sandbox, backoff_s=0.5, max_backoff_s=4)
    records = list(drive.discover(kari()))
    assert len(records) == 8  # the same answer as without throttling
    assert drive.client.stats.retries > 0
    assert all(0.25 <= s <= 4 for s in drive.sleeps)


def test_backoff_grows_exponentially_then_gives_up(sandbox):
    httpx.post(
        f"{sandbox.api_url}/_emulator/faults",
        json={"fail_path": "/export", "fail_status": 503, "fail_count": 1000},
    )
    drive = connector(sandbox, max_retries=4, backoff_s=1, max_backoff_s=5, workers=1)
    with pytest.raises(SourceUnavailable, match=r"HTTP 503.*after 4 retries"):
        list(drive.discover(kari()))
    first = drive.sleeps[:4]
    # Full jitter in [ceiling/2, ceiling], ceiling 1, 2, 4, then capped at 5.
    for sleep, ceiling in zip(first, (1, 2, 4, 5), strict=True):
        assert ceiling / 2 <= sleep <= ceiling


def test_exhausted_per_user_read_quota_is_backed_off_then_reported(sandbox):
    httpx.post(f"{sandbox.api_url}/_emulator/quota", json={"read_quota_per_minute": 5})
    drive = connector(sandbox, max_retries=2, workers=1)
    # Drive's files.list answers 403 userRateLimitExceeded, Sheets 429: both backed off.
    with pytest.raises(SourceUnavailable, match=r"HTTP (403|429).*after 2 retries"):
        list(drive.discover(kari()))
    # Each call backs off twice before giving up (the listing and a reader may both be waiting).
    assert len(drive.sleeps) >= 2
    assert all(0.5 <= s <= 2 for s in drive.sleeps)


def test_unreachable_emulator_is_unavailable(sandbox):
    dead = sandbox.model_copy(update={"api_url": "http://127.0.0.1:9"})
    key = json.loads(sandbox.credentials_file.read_text())
    assert key["token_uri"].startswith(sandbox.api_url)
    with pytest.raises(SourceUnavailable):
        list(connector(dead, max_retries=1).discover(kari()))


# -- planning by the mapping ----------------------------------------------------------------------


def test_rectification_and_consent_withdrawal_are_planned_per_category(sandbox):
    drive = connector(sandbox)
    records = {(r.location, r.native_id["row"]): r for r in drive.discover(kari())}
    mapping = drive.mapping
    webinar = records[("Webinar attendees 2026-02 / Attendees", 3)]
    rectify = mapping.plan_rectification(webinar, {"user.name": "Kari Nordmann-Berg"})
    assert rectify.action == Action.RECTIFY
    assert rectify.fields == {"Name": "Kari Nordmann-Berg"}
    assert mapping.plan_rectification(webinar, {"user.name": "Kari Nordmann"}) is None
    usage = records[("Usage export 2026-Q1 / Events", 2)]
    withdrawal = mapping.plan_consent_withdrawal(usage, {"analytics"}, NOW)
    assert withdrawal.action == Action.DELETE  # nothing but analytics in the row
    assert mapping.plan_consent_withdrawal(usage, {"config_collection"}, NOW) is None
    trial = records[("Trial sign-ups 2026 / Q1 'trial' list", 2)]
    # contract, not consent:
    assert mapping.plan_consent_withdrawal(trial, {"analytics"}, NOW) is None
    assert mapping.collected_from(trial.location) == "the Atlassian Marketplace"


# -- the flows ------------------------------------------------------------------------------------


@pytest.mark.prefect
def test_access_flow_includes_drive_spreadsheets(
    prefect_harness, sandbox, sandbox_sqlite_url, tmp_path
):
    from flows.access import access_request
    from sandbox.runtime import onprem_source, write_config

    config = tmp_path / "dsrflow.yaml"
    drive = {"drive": json.loads(sandbox.model_dump_json(exclude_none=True))}
    write_config(config, {**onprem_source(sandbox_sqlite_url), **drive}, tmp_path / "exports")
    with run_settings(config, tmp_path / "out"):
        state = access_request(
            request_id="DSR-2026-0401",
            subject_emails=[KARI],
            subject_phones=[KARI_PHONE],
            return_state=True,
        )
    assert state.is_completed(), state.message
    result = state.result()
    assert result.records_per_source["drive"] == 8
    document = json.loads((tmp_path / "out" / "DSR-2026-0401" / "export.json").read_text())
    drive_parts = document["records"]["drive"]
    texts = json.dumps(drive_parts)
    assert "Kari.Nordmann@Example.COM" in texts
    for look_alike in ("akari.nordmann@", "example.com.evil.org", "kari.nordmann+support@"):
        assert look_alike not in texts
    sources = {s["source"]: s["collected_from"] for s in document["information"]["sources"]}
    assert "drive" in sources


@pytest.mark.prefect
def test_erasure_flow_erases_drive_rows_and_keeps_the_held_one(prefect_harness, sandbox, tmp_path):
    from flows.erasure import erasure_request
    from sandbox.runtime import write_config

    config = tmp_path / "dsrflow.yaml"
    drive = {"drive": json.loads(sandbox.model_dump_json(exclude_none=True))}
    write_config(config, drive, tmp_path / "exports")
    with run_settings(config, tmp_path / "out"):
        result = approved(
            erasure_request,
            request_id="DSR-2026-0402",
            subject_emails=[KARI],
            subject_phones=[KARI_PHONE],
        )
    assert result.status == "completed"
    assert result.plan == {"delete": 4, "redact": 3, "keep": 1}
    assert result.executed["drive"] == {"done": 7, "already_done": 0, "skipped": 0, "failed": 0}
    remaining = list(connector(sandbox).discover(kari()))
    assert where(remaining) == [("Renewals 2024 / Invoices", 2)]


def test_identifier_kinds_other_than_email_and_phone_are_matched_exactly(sandbox, tmp_path):
    from dsrflow.identifiers import Identifier

    data = yaml.safe_load(sandbox.mapping.read_text())
    data["full_text_search"] = False
    data["layouts"].insert(
        0,
        {
            "spreadsheet_name": "Inventory",
            "identities": [{"headers": ["SKU"], "kind": "sku", "category": "system.operations"}],
        },
    )
    mapping = parse_mapping(yaml.safe_dump(data), tmp_path / "m.yaml")
    subject = Subject(
        emails=("nobody@example.com",), others=(Identifier(kind="sku", value="RR-1"),)
    )
    records = list(connector(sandbox, mapping).discover(subject))
    assert [(r.location, r.native_id["row"], r.matched) for r in records] == [
        ("Inventory / Stock", 2, ("sku:RR-1",))
    ]
