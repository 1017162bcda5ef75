"""What Drive does that a connector must cope with, emulated and met by the real SDK:
sorting refused on full-text queries, quota errors as 403, shared drives and nested folders,
and what the delegated user may see."""

from __future__ import annotations

import json

import google_auth_httplib2
import httplib2
import httpx
import pytest
import yaml
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from connectors.base import SourceUnavailable
from connectors.drive.client import SCOPES
from connectors.drive.settings import DriveSource
from dsrflow.mapping import parse_mapping
from dsrflow.request import RequestType
from sandbox.drive_part import DELEGATED_USER, start_drive
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES
from tests.test_drive_connector import (  # noqa: F401 - sandbox: a fixture
    connector,
    kari,
    planned,
    sandbox,
)
from tests.test_google_emulator import SHEET, google  # noqa: F401 - fixture

KARI = "kari.nordmann@example.com"


# -- full text and orderBy ------------------------------------------------------------------------


def test_drive_refuses_to_sort_a_full_text_query(google):  # noqa: F811
    _, _, _, drive, _, _ = google
    with pytest.raises(HttpError) as caught:
        drive.files().list(q="fullText contains 'a@example.com'", orderBy="name").execute()
    assert caught.value.status_code == 403
    detail = caught.value.error_details[0]
    assert (detail["reason"], detail["location"]) == ("forbidden", "orderBy")
    assert "Sorting is not supported for queries with fullText terms" in caught.value.reason
    # Without orderBy, or sorted without fullText, Drive answers.
    found = drive.files().list(q="fullText contains 'a@example.com'").execute()
    assert {f["id"] for f in found["files"]} == {f"ss-{n}" for n in range(5)}
    drive.files().list(q=f"mimeType = '{SHEET}'", orderBy="name").execute()


def test_full_text_search_sends_no_order(sandbox, tmp_path):  # noqa: F811
    data = yaml.safe_load(sandbox.mapping.read_text())
    data["folders"] = [{"name": "Analytics"}]
    data["spreadsheets"] = []
    data["full_text_search"] = True
    mapping = parse_mapping(yaml.safe_dump(data), tmp_path / "m.yaml")
    found = {r.location for r in connector(sandbox, mapping).discover(kari())}
    assert "Meetup 2023 guest list / Guests" in found  # only full-text search finds it


# -- quota errors as 403 --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["userRateLimitExceeded", "rateLimitExceeded"])
def test_drive_quota_403_has_drives_error_shape(google, reason):  # noqa: F811
    url, _, _, drive, _, _ = google
    faults = {"fail_path": "/drive/v3/files$", "fail_status": 403, "fail_count": 1}
    httpx.post(f"{url}/_emulator/faults", json={**faults, "fail_code": reason})
    raw = httpx.get(f"{url}/drive/v3/files")
    assert raw.status_code == 403
    error = raw.json()["error"]
    assert error["code"] == 403
    assert [(e["domain"], e["reason"]) for e in error["errors"]] == [("usageLimits", reason)]
    drive.files().list().execute()  # healed


@pytest.mark.parametrize(
    "path",
    [
        "/drive/v3/files$",  # the folder listing
        "/drive/v3/files/ss-leads-loose",  # a files.get inside /batch/drive/v3
    ],
)
def test_drive_quota_403_is_backed_off_and_read_again(sandbox, path):  # noqa: F811
    httpx.post(
        f"{sandbox.api_url}/_emulator/faults",
        json={
            "fail_path": path,
            "fail_status": 403,
            "fail_count": 2,
            "fail_code": "userRateLimitExceeded",
        },
    )
    drive = connector(sandbox, max_retries=3)
    records = list(drive.discover(kari()))
    assert len(records) == 8  # the same answer as without the refusals
    assert drive.client.stats.retries == 2
    assert len(drive.sleeps) == 2


def test_a_write_refused_for_quota_is_not_sent_again(sandbox):  # noqa: F811
    drive = connector(sandbox, max_retries=3)
    records = [r for r in drive.discover(kari()) if r.location.startswith("Usage export")]
    plan = planned(drive, records)
    httpx.post(
        f"{sandbox.api_url}/_emulator/faults",
        json={
            "fail_path": ":batchUpdate$",
            "fail_status": 403,
            "fail_count": 5,
            "fail_code": "rateLimitExceeded",
        },
    )
    httpx.post(f"{sandbox.api_url}/_emulator/reset-stats")
    report = drive.erase(plan, kari())
    assert {r.outcome.value for r in report.results} == {"failed"}
    assert all("403 rateLimitExceeded" in (r.detail or "") for r in report.results)
    stats = httpx.get(f"{sandbox.api_url}/_emulator/stats").json()["requests"]
    assert stats["spreadsheets.batchUpdate"] == 1


# -- shared drives and nested folders -------------------------------------------------------------


def _team_drive(state, members):
    drive = state.add_shared_drive("Sales team", members, id="0A-team")
    contracts = state.add_folder("Contracts", [drive], id="fld-team-contracts")
    year = state.add_folder("2026", [contracts], id="fld-team-2026")
    state.add_spreadsheet("Team list", {"S": [["Email"], ["a@example.com"]]}, [year], id="ss-team")
    return drive


def test_shared_drive_items_need_the_flags_and_a_corpus(google):  # noqa: F811
    _, state, _, drive, _, _ = google
    _team_drive(state, {DELEGATED_USER: "reader"})
    q = "name = 'Team list'"
    files = drive.files()
    assert files.list(q=q).execute()["files"] == []
    assert files.list(q=q, supportsAllDrives=True).execute()["files"] == []
    every = {"supportsAllDrives": True, "includeItemsFromAllDrives": True}
    found = files.list(q=q, corpora="allDrives", fields="files(id,driveId)", **every).execute()
    assert found["files"] == [{"id": "ss-team", "driveId": "0A-team"}]
    one = files.list(q=q, corpora="drive", driveId="0A-team", **every).execute()
    assert [f["id"] for f in one["files"]] == ["ss-team"]
    for wrong in ({"corpora": "drive"}, {"driveId": "0A-team"}):
        with pytest.raises(HttpError) as caught:
            files.list(q=q, **every, **wrong).execute()
        assert caught.value.status_code == 400
    with pytest.raises(HttpError) as caught:
        files.get(fileId="ss-team").execute()
    assert caught.value.status_code == 404
    assert files.get(fileId="ss-team", supportsAllDrives=True).execute()["id"] == "ss-team"


def test_a_non_member_does_not_see_a_shared_drive(google):  # noqa: F811
    _, state, _, drive, sheets, _ = google
    _team_drive(state, {"someone.else@fjelltopp.example": "organizer"})
    every = {"supportsAllDrives": True, "includeItemsFromAllDrives": True}
    listed = drive.files().list(q="name = 'Team list'", corpora="allDrives", **every).execute()
    assert listed["files"] == []
    with pytest.raises(HttpError) as caught:
        drive.files().list(corpora="drive", driveId="0A-team", **every).execute()
    assert caught.value.status_code == 404
    with pytest.raises(HttpError) as caught:
        sheets.spreadsheets().get(spreadsheetId="ss-team").execute()
    assert caught.value.status_code == 403
    assert caught.value.reason == "The caller does not have permission"


def _with_team_drive(tmp_path, **extra):
    """The test fixture plus a shared drive: Contracts / 2026 / Q1 / a sign-up list."""
    data = json.loads((FIXTURES / "drive" / "drive.json").read_text())
    data["shared_drives"] = [{"id": "0A-team", "name": "Sales team"}]
    data["folders"] += [
        {"id": "fld-team-contracts", "name": "Contracts", "parents": ["0A-team"]},
        {"id": "fld-team-2026", "name": "2026", "parents": ["fld-team-contracts"]},
        {"id": "fld-team-q1", "name": "Q1", "parents": ["fld-team-2026"]},
    ]
    data["spreadsheets"].append(
        {
            "id": "ss-team-q1",
            "name": "Trial sign-ups Q1 team copy",
            "parents": ["fld-team-q1"],
            "sheets": [
                {
                    "title": "Sign-ups",
                    "values": [
                        ["Signed up", "Name", "Email", "Phone"],
                        ["2026-01-10", "Ola", "ola@example.com", ""],
                        ["2026-01-11", "Kari", KARI, ""],
                    ],
                }
            ],
        }
    )
    data.update(extra)
    directory = tmp_path / "fixtures"
    directory.mkdir()
    (directory / "drive.json").write_text(json.dumps(data))
    return directory


@pytest.fixture
def team_sandbox(tmp_path):
    part = start_drive(SandboxContext(directory=tmp_path, fixtures=_with_team_drive(tmp_path)))
    yield DriveSource.model_validate(part.sources["drive"])
    part.stop()


def _only_folders(source, tmp_path, folders):
    data = yaml.safe_load(source.mapping.read_text())
    data["folders"] = folders
    data["spreadsheets"] = []
    data["full_text_search"] = False
    return parse_mapping(yaml.safe_dump(data), tmp_path / "only.yaml")


@pytest.mark.parametrize("ref", [{"id": "fld-team-contracts"}, {"name": "Contracts"}])
def test_a_spreadsheet_two_folders_down_in_a_shared_drive_is_found(team_sandbox, tmp_path, ref):
    mapping = _only_folders(team_sandbox, tmp_path, [ref])
    records = list(connector(team_sandbox, mapping).discover(kari()))
    assert [(r.location, r.native_id["row"]) for r in records] == [
        ("Trial sign-ups Q1 team copy / Sign-ups", 3)
    ]
    assert records[0].native_id["spreadsheet_id"] == "ss-team-q1"


# -- who is asking --------------------------------------------------------------------------------

NOBODY = "nobody@fjelltopp.example"


def _bearer(state, user, *scopes):
    return {"Authorization": f"Bearer {state.issue_token(user, frozenset(scopes))}"}


def test_a_user_sees_only_what_is_shared_with_them(google):  # noqa: F811
    url, state, *_ = google
    nobody = _bearer(state, NOBODY, *SCOPES)
    listed = httpx.get(f"{url}/drive/v3/files", params={"q": "trashed = false"}, headers=nobody)
    assert listed.status_code == 200
    assert listed.json()["files"] == []
    # Drive does not say the file exists; Sheets says the caller may not read it.
    assert httpx.get(f"{url}/drive/v3/files/ss-0", headers=nobody).status_code == 404
    read = httpx.get(f"{url}/v4/spreadsheets/ss-0/values/A1:B2", headers=nobody)
    assert read.status_code == 403
    assert read.json()["error"]["status"] == "PERMISSION_DENIED"
    # Shared with them as a reader (on the folder: inherited), they read but cannot write.
    state.share(state.files["fld-a"], NOBODY, "reader")
    listed = httpx.get(f"{url}/drive/v3/files", params={"q": "trashed = false"}, headers=nobody)
    assert {f["id"] for f in listed.json()["files"]} == {"fld-a"} | {f"ss-{n}" for n in range(5)}
    assert httpx.get(f"{url}/v4/spreadsheets/ss-0/values/A1:B2", headers=nobody).is_success
    write = httpx.put(
        f"{url}/v4/spreadsheets/ss-0/values/A2",
        params={"valueInputOption": "RAW"},
        json={"values": [["x"]]},
        headers=nobody,
    )
    assert write.status_code == 403
    assert write.json()["error"]["message"] == "The caller does not have permission"


@pytest.mark.parametrize(
    ("scope", "path"),
    [
        # A Sheets scope does not open Drive; Drive's metadata scope does not open Sheets.
        ("https://www.googleapis.com/auth/spreadsheets", "/drive/v3/files"),
        ("https://www.googleapis.com/auth/drive.metadata.readonly", "/v4/spreadsheets/ss-0"),
    ],
)
def test_a_token_without_the_apis_scope_is_refused(google, scope, path):  # noqa: F811
    url, state, *_ = google
    answer = httpx.get(f"{url}{path}", headers=_bearer(state, DELEGATED_USER, scope))
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["errors"][0]["reason"] == "insufficientPermissions"
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"


def test_a_delegated_user_without_access_is_not_told_nothing_is_there(sandbox, tmp_path):  # noqa: F811
    by_id = [{"id": "fld-analytics"}, {"id": "fld-sales"}]
    mapping = _only_folders(sandbox, tmp_path, by_id)
    stranger = connector(sandbox, mapping, delegated_user=NOBODY)
    with pytest.raises(SourceUnavailable, match=f"fld-analytics cannot be read.*{NOBODY}"):
        list(stranger.discover(kari()))
    problems = stranger.preflight(RequestType.ACCESS)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "no folder fld-analytics readable here",
        "no folder fld-sales readable here",
    ]
    by_name = _only_folders(sandbox, tmp_path, [{"name": "Analytics"}])
    with pytest.raises(SourceUnavailable, match="folder 'Analytics' not found"):
        list(connector(sandbox, by_name, delegated_user=NOBODY).discover(kari()))
    # The sandbox's own delegated user was given access, as an admin would set it up.
    assert list(connector(sandbox, mapping).discover(kari()))


def test_an_incomplete_search_across_drives_is_not_taken_for_complete(team_sandbox, tmp_path):
    httpx.post(f"{team_sandbox.api_url}/_emulator/search", json={"incomplete_all_drives": True})
    mapping = _only_folders(team_sandbox, tmp_path, [{"name": "Contracts"}, {"name": "Sales"}])
    with pytest.raises(SourceUnavailable, match="incompleteSearch"):
        list(connector(team_sandbox, mapping).discover(kari()))


def _delegated(google_fixture, scopes, subject=DELEGATED_USER):
    _, _, _, _, _, creds = google_fixture
    return creds.with_scopes(list(scopes)).with_subject(subject)


def test_domain_wide_delegation_grants_only_the_scopes_the_admin_listed(google):  # noqa: F811
    _, state, *_ = google
    request = google_auth_httplib2.Request(httplib2.Http())
    _delegated(google, SCOPES).refresh(request)  # what the sandbox's admin granted
    wider = _delegated(google, ["https://www.googleapis.com/auth/drive"])
    with pytest.raises(RefreshError, match="unauthorized_client"):
        wider.refresh(request)
    state.domain_users = {DELEGATED_USER}
    with pytest.raises(RefreshError, match="invalid_grant: Invalid email or User ID"):
        _delegated(google, SCOPES, "stranger@elsewhere.example").refresh(request)
    state.delegations.clear()  # delegation switched off in the Admin console
    with pytest.raises(RefreshError, match="unauthorized_client"):
        _delegated(google, SCOPES).refresh(request)


def test_a_right_that_writes_needs_an_editor(tmp_path):
    # The officer is given only read access to the Sales folder.
    fixtures = _with_team_drive(tmp_path, delegated_user_access=False)
    data = json.loads((fixtures / "drive.json").read_text())
    for folder in data["folders"]:
        if not folder.get("parents"):  # top-level folders of My Drive
            folder["shared_with"] = {DELEGATED_USER: "writer"}
    sales = next(f for f in data["folders"] if f["id"] == "fld-sales")
    sales["shared_with"] = {DELEGATED_USER: "reader"}
    data["shared_drives"][0]["members"] = {DELEGATED_USER: "fileOrganizer"}
    (fixtures / "drive.json").write_text(json.dumps(data))
    part = start_drive(SandboxContext(directory=tmp_path, fixtures=fixtures))
    try:
        source = DriveSource.model_validate(part.sources["drive"])
        mapping = _only_folders(source, tmp_path, [{"id": "fld-analytics"}, {"id": "fld-sales"}])
        drive = connector(source, mapping)
        assert drive.preflight(RequestType.ACCESS) == []
        for right in (RequestType.ERASURE, RequestType.RECTIFICATION):
            problems = drive.preflight(right)
            assert len(problems) == 1
            assert f"{DELEGATED_USER} may read but not edit folder fld-sales" in problems[0]
            assert right.value in problems[0]
    finally:
        part.stop()
