"""A missing answer is never "nothing there" (issue 12 §4), over real HTTP against the emulators.

Only a confirmed absence counts as done: Drive's ``files.get`` of that exact spreadsheet
answering 404 ``notFound``, Graph's ``ErrorItemNotFound`` for the exact message, Jira's own 404
for the exact issue or comment. A 404 anywhere else (a Sheets read of a spreadsheet Drive still
lists, a mailbox Graph will not serve, a Jira search route) fails the source loudly.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

import sandbox.drive_part as drive_part
from connectors.base import SourceUnavailable
from connectors.drive.settings import DriveSource
from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.request import Subject
from sandbox.drive_part import start_drive
from sandbox.emulators.faults import FaultSettings
from sandbox.emulators.google.state import GoogleState
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES
from tests.support.graph import graph as mail_graph  # noqa: F401 - a fixture
from tests.support.jira_site import site as jira_site  # noqa: F401 - a fixture
from tests.test_drive_connector import connector, kari, sheet_values
from tests.test_drive_connector import sandbox as drive_sandbox  # noqa: F401 - a fixture
from tests.test_jira_connector import AL, subject
from tests.test_mail_connector import (
    SUPPORT,
    discover,
    plan_for,
)
from tests.test_write_faults_drive import USAGE, faults, usage_plan

SPREADSHEET = USAGE[0]
# Sheets' routes for one spreadsheet: metadata (spreadsheets.get) and values (batchGet).
METADATA = rf"/v4/spreadsheets/{SPREADSHEET}$"
VALUES = rf"/v4/spreadsheets/{SPREADSHEET}/values:batchGet$"
# Discovery reads a spreadsheet through Drive's export first.
EXPORT = rf"/drive/v3/files/{SPREADSHEET}/export$"


def not_found(source: DriveSource, path: str) -> None:
    """Every read of ``path`` answers 404 notFound (Google's shape), the file still there."""
    faults(source, fail_path=path, fail_status=404, fail_count=1000)


# -- Drive: access ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [EXPORT, METADATA], ids=["files.export", "spreadsheets.get"])
def test_a_sheets_404_for_a_listed_spreadsheet_fails_discovery_not_zero_records(
    drive_sandbox,  # noqa: F811
    path,
):
    drive = connector(drive_sandbox)
    assert any(r.native_id["spreadsheet_id"] == SPREADSHEET for r in drive.discover(kari()))
    not_found(drive_sandbox, path)
    again = connector(drive_sandbox)
    with pytest.raises(SourceUnavailable, match=f"HTTP 404 .*{SPREADSHEET}.*still lists"):
        list(again.discover(kari()))
    assert again.stats.vanished == 0


# -- Drive: erasure --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [VALUES, METADATA], ids=["values.batchGet", "spreadsheets.get"])
def test_a_404_on_the_re_read_before_erasing_never_reports_already_done(
    drive_sandbox,  # noqa: F811
    path,
):
    drive = connector(drive_sandbox)
    plan = usage_plan(drive)
    before = sheet_values(drive_sandbox, *USAGE)[1]
    not_found(drive_sandbox, path)
    report = drive.erase(plan, kari())
    assert [r.outcome for r in report.results] == [Outcome.FAILED] * 2
    assert all(re.search(r"re-reading .*HTTP 404 .*still lists", r.detail) for r in report.results)
    assert not report.complete
    faults(drive_sandbox)  # healed: the sheet as it is
    assert sheet_values(drive_sandbox, *USAGE)[1] == before  # both rows still there


def test_a_404_on_the_row_delete_itself_is_not_done_while_the_rows_remain(
    drive_sandbox,  # noqa: F811
):
    drive = connector(drive_sandbox)
    plan = usage_plan(drive)
    before = sheet_values(drive_sandbox, *USAGE)[1]
    not_found(drive_sandbox, rf"/v4/spreadsheets/{SPREADSHEET}:batchUpdate$")
    report = drive.erase(plan, kari())
    assert [r.outcome for r in report.results] == [Outcome.FAILED] * 2
    assert all("still lists" in r.detail for r in report.results)
    faults(drive_sandbox)
    assert sheet_values(drive_sandbox, *USAGE)[1] == before


@pytest.fixture
def drive_with_state(tmp_path, monkeypatch):
    """A Drive sandbox and the emulator's own state, to delete a file as its owner would."""
    states: list[GoogleState] = []

    def keep(*args, **kwargs) -> GoogleState:
        states.append(GoogleState(*args, **kwargs))
        return states[-1]

    monkeypatch.setattr(drive_part, "GoogleState", keep)
    part = start_drive(SandboxContext(directory=tmp_path, fixtures=FIXTURES / "drive"))
    yield DriveSource.model_validate(part.sources["drive"]), states[0]
    part.stop()


def test_a_spreadsheet_deleted_between_discovery_and_erasure_is_already_done(drive_with_state):
    source, state = drive_with_state
    drive = connector(source)
    plan = usage_plan(drive)
    with state.lock:
        del state.files[SPREADSHEET]  # deleted by its owner after the plan was made
    report = drive.erase(plan, kari())
    assert [r.outcome for r in report.results] == [Outcome.ALREADY_DONE] * 2
    assert report.complete


def test_a_spreadsheet_deleted_between_listing_and_reading_is_counted_as_gone(
    drive_with_state, monkeypatch
):
    source, state = drive_with_state
    drive = connector(source)
    listed = drive.listing.spreadsheets

    def then_deleted(subject):
        for file_id, name in listed(subject):
            if file_id == SPREADSHEET:
                with state.lock:
                    del state.files[SPREADSHEET]
            yield file_id, name

    monkeypatch.setattr(drive.listing, "spreadsheets", then_deleted)
    records = list(drive.discover(kari()))
    assert drive.stats.vanished == 1
    assert not any(r.native_id["spreadsheet_id"] == SPREADSHEET for r in records)


# -- mail ------------------------------------------------------------------------------------


def draft_action(message_id: str = "sup-sal") -> PlannedAction:
    return PlannedAction(
        record_id=f"mail:messages:id={message_id},mailbox={SUPPORT}",
        source="mail",
        location="messages",
        native_id={"mailbox": SUPPORT, "id": message_id},
        action=Action.DELETE,
    )


def test_a_mailbox_404_on_the_message_to_erase_is_not_its_absence(mail_graph):  # noqa: F811
    mail_graph.faults.settings = FaultSettings(
        fail_path=f"/users/{SUPPORT}/messages/sup-sal$",
        fail_status=404,
        fail_count=1000,
        fail_code="MailboxNotEnabledForRESTAPI",
    )
    with pytest.raises(SourceUnavailable, match="HTTP 404 MailboxNotEnabledForRESTAPI"):
        mail_graph.connector().erase([draft_action()], Subject.from_raw(["sal@example.com"]))
    assert "sup-sal" in mail_graph.store.mailbox(SUPPORT).messages


def test_error_item_not_found_for_the_message_to_erase_is_already_done(mail_graph):  # noqa: F811
    mail_graph.store.remove(mail_graph.store.mailbox(SUPPORT), "sup-sal")
    report = mail_graph.connector().erase([draft_action()], Subject.from_raw(["sal@example.com"]))
    assert [r.outcome for r in report.results] == [Outcome.ALREADY_DONE]


def test_a_mailbox_404_on_a_batched_delete_fails_the_action(mail_graph):  # noqa: F811
    connector = mail_graph.connector(matching__mentions=False)
    records = [r for r in discover(connector, "al@example.com") if "sup-al-1" in str(r.native_id)]
    mail_graph.faults.settings = FaultSettings(
        fail_path=f"/users/{SUPPORT}/messages/",
        fail_status=404,
        fail_count=1000,
        fail_code="MailboxNotEnabledForRESTAPI",
    )
    report = connector.erase(plan_for(records), Subject.from_raw(["al@example.com"]))
    assert [r.outcome for r in report.results] == [Outcome.FAILED]
    assert not report.complete


def test_a_refused_batch_fails_mail_discovery_as_the_source(mail_graph):  # noqa: F811
    mail_graph.faults.settings = FaultSettings(
        fail_path=r"/\$batch$", fail_status=400, fail_count=1000, fail_code="BadRequest"
    )
    with pytest.raises(SourceUnavailable, match="HTTP 400 BadRequest") as caught:
        discover(mail_graph.connector(), "al@example.com")
    assert caught.value.source == "mail"


# -- Jira ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [r"/search(/jql)?$", r"/field$", r"/user/search$", r"/servicedesk$"]
)
def test_a_jira_404_on_a_search_or_metadata_route_fails_the_source(jira_site, path):  # noqa: F811
    jira_site.set_faults(fail_path=path, fail_status=404, fail_count=1000)
    with pytest.raises(SourceUnavailable, match="HTTP 404") as caught:
        list(jira_site.connector().discover(subject(AL)))
    assert caught.value.source == "jira"


@pytest.fixture
def html_404():
    """A URL that answers 404 with an HTML page, as a proxy in front of a site does."""

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = b"<html><body>404 Not Found</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_args: object) -> None:
            pass

    proxy = HTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{proxy.server_port}/rest/api/2/issue/SUP-1"
    proxy.shutdown()


def test_only_jiras_own_404_for_one_item_is_its_absence(jira_site, html_404):  # noqa: F811
    jira = jira_site.connector()
    assert jira.issues.read_issue("SUP-404") is None  # Jira: "Issue does not exist ..."
    assert jira.issues.read_issue("SUP-1") is not None
    # A 404 that is not Jira's answer (a proxy's page) says nothing about the item.
    with pytest.raises(SourceUnavailable, match="HTTP 404"):
        jira.client.call(
            "reading an issue",
            lambda: jira.client.jira._session.get(html_404),
            missing_ok=True,
        )
