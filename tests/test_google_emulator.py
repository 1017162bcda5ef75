"""The Drive v3 + Sheets v4 emulator, driven by the real google-api-python-client over HTTP.

Shapes checked here are those of the published references: Google's error body, the ranges
Sheets returns, Drive's paging and partial responses, multipart batch answers.
"""

from __future__ import annotations

import httpx
import pytest
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from sandbox.drive_part import DELEGATED_USER, write_service_account
from sandbox.drive_seed import grant
from sandbox.emulators.faults import Faults
from sandbox.emulators.google import GoogleState, create_app
from sandbox.emulators.google.a1 import RangeError, format_a1, parse_a1
from sandbox.emulators.google.drive_query import full_text_contains, name_contains
from sandbox.emulators.server import EmulatorServer

SHEET = "application/vnd.google-apps.spreadsheet"
SCOPES = [
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/spreadsheets",
]


# -- A1 notation and q, without a server --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sheet", "bounds"),
    [
        ("'My Sheet'!A1:F", "My Sheet", (0, None, 0, 6)),
        ("Sheet1!B2:C3", "Sheet1", (1, 3, 1, 3)),
        ("'Kari''s list'!A:A", "Kari's list", (None, None, 0, 1)),
        ("Data!2:4", "Data", (1, 4, None, None)),
        ("A3", None, (2, 3, 0, 1)),
        ("'a!b'!AA10", "a!b", (9, 10, 26, 27)),
        ("'Q1 ''trial'' list'", "Q1 'trial' list", (None, None, None, None)),
    ],
)
def test_a1_ranges_parse_like_sheets(text, sheet, bounds):
    parsed = parse_a1(text)
    assert parsed.sheet == sheet
    assert (parsed.start_row, parsed.end_row, parsed.start_col, parsed.end_col) == bounds


@pytest.mark.parametrize("text", ["'unclosed!A1", "Sheet1!A1:1B", "Sheet1!", "'x'y!A1", ""])
def test_broken_a1_ranges_are_refused(text):
    with pytest.raises(RangeError):
        parse_a1(text)


def test_returned_ranges_quote_titles_that_need_it():
    assert format_a1("Sheet1", 0, 1000, 0, 26) == "Sheet1!A1:Z1000"
    assert format_a1("My Sheet", 1, 2, 0, 3) == "'My Sheet'!A2:C2"
    assert format_a1("Kari's", 0, 1, 0, 1) == "'Kari''s'!A1"
    assert format_a1("AB12", 0, 1, 0, 1) == "'AB12'!A1"  # would read as a cell


def test_name_contains_is_prefix_matching_on_words():
    assert name_contains("HelloWorld", "hello")
    assert not name_contains("HelloWorld", "World")
    assert name_contains("Usage export 2026", "EXP")


def test_full_text_contains_is_fuzzy_on_whole_tokens():
    text = "kari.nordmann@example.com.evil.org and kari.nordmann+support@example.com"
    # Drive's full-text search returns near misses: the reason it never decides alone.
    assert full_text_contains(text, "kari.nordmann@example.com")
    assert not full_text_contains("akari.nordmann@example.com", "kari.nordmann@example.com")
    assert full_text_contains(text, '"kari.nordmann example com"')
    assert not full_text_contains(text, '"nordmann kari"')
    assert full_text_contains("a kari nordmann b", '"kari nordmann"')


# -- the emulator over HTTP -----------------------------------------------------------------------


@pytest.fixture
def google(tmp_path):
    state = GoogleState()
    faults = Faults()
    analytics = state.add_folder("Analytics", id="fld-a")
    state.add_folder("Other", id="fld-o")
    for n in range(5):
        state.add_spreadsheet(
            f"Usage {n}",
            {"My Sheet": [["Email", "Name"], ["a@example.com", "A"], ["b@example.com", "B"]]},
            [analytics],
            id=f"ss-{n}",
        )
    state.add_spreadsheet("O'Brien's list", {"S": [["Email"], ["o'brien@example.com"]]}, ["fld-o"])
    grant(state, DELEGATED_USER)
    with EmulatorServer(create_app(state, faults), name="google-test") as url:
        key = write_service_account(state, url, tmp_path / "key.json")
        creds = service_account.Credentials.from_service_account_file(
            str(key), scopes=SCOPES, subject=DELEGATED_USER
        )
        drive = build(
            "drive",
            "v3",
            credentials=creds,
            static_discovery=True,
            client_options={"api_endpoint": f"{url}/drive/v3/"},
        )
        sheets = build(
            "sheets",
            "v4",
            credentials=creds,
            static_discovery=True,
            client_options={"api_endpoint": f"{url}/"},
        )
        yield url, state, faults, drive, sheets, creds


def test_files_list_pages_through_a_folder(google):
    _, _, _, drive, _, _ = google
    q = f"'fld-a' in parents and mimeType = '{SHEET}' and trashed = false"
    names, token, pages = [], None, 0
    while True:
        page = (
            drive.files()
            .list(q=q, pageSize=2, pageToken=token, fields="nextPageToken,files(id,name)")
            .execute()
        )
        pages += 1
        assert all(set(f) == {"id", "name"} for f in page["files"])
        names += [f["name"] for f in page["files"]]
        token = page.get("nextPageToken")
        if not token:
            break
    assert pages == 3
    assert names == [f"Usage {n}" for n in range(5)]


def test_files_list_default_fields_and_ordering(google):
    _, _, _, drive, _, _ = google
    page = drive.files().list(q="name contains 'usage'", orderBy="name desc").execute()
    assert page["kind"] == "drive#fileList"
    assert page["files"][0] == {
        "kind": "drive#file",
        "id": "ss-4",
        "name": "Usage 4",
        "mimeType": SHEET,
    }
    assert [f["name"] for f in page["files"]] == [f"Usage {n}" for n in range(4, -1, -1)]


def test_q_escapes_quotes_and_backslashes(google):
    _, _, _, drive, _, _ = google
    page = drive.files().list(q="name = 'O\\'Brien\\'s list'", fields="files(name)").execute()
    assert page["files"] == [{"name": "O'Brien's list"}]
    found = drive.files().list(q="fullText contains 'o\\'brien@example.com'").execute()
    assert [f["name"] for f in found["files"]] == ["O'Brien's list"]


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"q": "owner = 'x'"}, "q"),
        ({"q": "name contains 'unterminated"}, "q"),
        ({"q": "trashed = maybe"}, "q"),
        ({"pageSize": 0}, "pageSize"),
        ({"pageToken": "bogus"}, "pageToken"),
        ({"orderBy": "size"}, "orderBy"),
        ({"fields": "files(nosuchfield)"}, "fields"),
    ],
)
def test_bad_list_parameters_get_googles_error(google, params, location):
    _, _, _, drive, _, _ = google
    with pytest.raises(HttpError) as caught:
        drive.files().list(**params).execute()
    assert caught.value.status_code == 400
    assert caught.value.error_details[0]["location"] == location


def test_files_get_and_not_found(google):
    _, _, _, drive, _, _ = google
    got = drive.files().get(fileId="ss-1", fields="id,name,parents,trashed").execute()
    assert got == {"id": "ss-1", "name": "Usage 1", "parents": ["fld-a"], "trashed": False}
    with pytest.raises(HttpError) as caught:
        drive.files().get(fileId="nope").execute()
    assert caught.value.status_code == 404
    assert caught.value.error_details[0]["reason"] == "notFound"


def test_batch_answers_each_call(google):
    url, _, _, drive, _, _ = google
    answers = {}
    batch = BatchHttpRequest(
        callback=lambda rid, resp, exc: answers.__setitem__(rid, (resp, exc)),
        batch_uri=f"{url}/batch/drive/v3",
    )
    batch.add(drive.files().get(fileId="ss-2", fields="id,name"), request_id="one")
    batch.add(drive.files().get(fileId="missing", fields="id"), request_id="two")
    batch.execute()
    assert answers["one"] == ({"id": "ss-2", "name": "Usage 2"}, None)
    assert answers["two"][0] is None
    assert answers["two"][1].status_code == 404
    stats = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    assert stats["batch"] == 1
    assert stats["files.get"] == 2  # inner calls count one by one, as Google's quotas do


def test_values_read_with_quoted_sheet_names(google):
    _, _, _, _, sheets, _ = google
    meta = sheets.spreadsheets().get(spreadsheetId="ss-0", fields="sheets.properties").execute()
    props = meta["sheets"][0]["properties"]
    assert props["title"] == "My Sheet"
    assert props["gridProperties"] == {"rowCount": 1000, "columnCount": 26}
    answer = (
        sheets.spreadsheets()
        .values()
        .batchGet(spreadsheetId="ss-0", ranges=["'My Sheet'", "'My Sheet'!B2:B"])
        .execute()
    )
    first, second = answer["valueRanges"]
    assert first["range"] == "'My Sheet'!A1:Z1000"
    assert first["values"] == [["Email", "Name"], ["a@example.com", "A"], ["b@example.com", "B"]]
    assert second == {
        "range": "'My Sheet'!B2:B1000",
        "majorDimension": "ROWS",
        "values": [["A"], ["B"]],
    }
    with pytest.raises(HttpError) as caught:
        sheets.spreadsheets().values().get(spreadsheetId="ss-0", range="'No Sheet'!A1").execute()
    assert caught.value.status_code == 400
    assert "Unable to parse range" in caught.value.reason


def test_update_then_delete_rows_is_visible_to_the_next_read(google):
    _, _, _, _, sheets, _ = google
    values = sheets.spreadsheets().values()
    written = values.update(
        spreadsheetId="ss-0",
        range="'My Sheet'!B3",
        valueInputOption="RAW",
        body={"values": [["Bee"]]},
    ).execute()
    assert written["updatedRange"] == "'My Sheet'!B3"
    assert written["updatedCells"] == 1
    sheets.spreadsheets().batchUpdate(
        spreadsheetId="ss-0",
        body={
            "requests": [
                {
                    "deleteDimension": {
                        "range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}
                    }
                }
            ]
        },
    ).execute()
    after = values.get(spreadsheetId="ss-0", range="'My Sheet'").execute()
    assert after["values"] == [["Email", "Name"], ["b@example.com", "Bee"]]
    assert after["range"] == "'My Sheet'!A1:Z999"


def test_batch_update_is_all_or_nothing(google):
    _, _, _, _, sheets, _ = google
    requests = [
        {
            "repeatCell": {
                "range": {"sheetId": 0, "startRowIndex": 1, "endRowIndex": 2},
                "cell": {},
                "fields": "userEnteredValue",
            }
        },
        {
            "deleteDimension": {
                "range": {"sheetId": 99, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}
            }
        },
    ]
    with pytest.raises(HttpError) as caught:
        sheets.spreadsheets().batchUpdate(
            spreadsheetId="ss-0", body={"requests": requests}
        ).execute()
    assert caught.value.status_code == 400
    after = sheets.spreadsheets().values().get(spreadsheetId="ss-0", range="'My Sheet'").execute()
    assert after["values"][1] == ["a@example.com", "A"]
    with pytest.raises(HttpError) as unknown:
        sheets.spreadsheets().batchUpdate(
            spreadsheetId="ss-0", body={"requests": [{"explodeSheet": {}}]}
        ).execute()
    assert 'Unknown name "explodeSheet"' in unknown.value.reason


def test_errors_have_googles_shape(google):
    url, _, _, _, _, _ = google
    missing_auth = httpx.get(f"{url}/drive/v3/files")
    assert missing_auth.status_code == 401
    error = missing_auth.json()["error"]
    assert error["status"] == "UNAUTHENTICATED"
    assert error["errors"][0]["reason"] == "required"
    unknown = httpx.get(f"{url}/drive/v3/nothing-here")
    assert unknown.status_code == 404
    assert set(unknown.json()["error"]) == {"code", "message", "errors", "status"}


def test_unknown_query_parameters_are_refused(google):
    url, state, *_ = google
    token = state.issue_token(DELEGATED_USER, frozenset(SCOPES))
    answer = httpx.get(
        f"{url}/v4/spreadsheets/ss-0/values:batchGet",
        params={"ranges": "A1", "bogus": "1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400
    assert 'Unknown name "bogus"' in answer.json()["error"]["message"]


def test_token_endpoint_verifies_the_signature(google, tmp_path):
    url, state, _, _, _, _ = google
    # A key the emulator has never seen: the JWT does not verify.
    other = GoogleState()
    key = write_service_account(other, url, tmp_path / "other.json")
    state.service_accounts.pop(next(iter(state.service_accounts)))
    creds = service_account.Credentials.from_service_account_file(str(key), scopes=SCOPES)
    from google.auth.exceptions import RefreshError
    from google.auth.transport.requests import Request

    with pytest.raises(RefreshError, match="invalid_grant"):
        creds.refresh(Request())


def test_read_only_token_cannot_write(google):
    url, state, *_ = google
    token = state.issue_token("x@example.com", frozenset([SCOPES[0]]))
    answer = httpx.post(
        f"{url}/v4/spreadsheets/ss-0:batchUpdate",
        json={"requests": [{"deleteDimension": {}}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["status"] == "PERMISSION_DENIED"


def test_throttling_answers_429_resource_exhausted_without_retry_after(google):
    url, _, faults, drive, _, _ = google
    httpx.post(f"{url}/_emulator/faults", json={"throttle_every": 1})
    raw = httpx.get(f"{url}/drive/v3/files")
    assert raw.status_code == 429
    assert raw.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "retry-after" not in raw.headers
    with pytest.raises(HttpError) as caught:
        drive.files().list().execute()
    assert caught.value.status_code == 429
    assert faults.counts["files.list"] == 2


def test_per_user_read_quota(google):
    url, _, _, drive, sheets, _ = google
    httpx.post(f"{url}/_emulator/quota", json={"read_quota_per_minute": 2})
    drive.files().list().execute()
    drive.files().get(fileId="ss-0").execute()
    with pytest.raises(HttpError) as caught:
        drive.files().list().execute()
    # Drive: 403 in the usageLimits domain; Sheets: 429 RESOURCE_EXHAUSTED.
    assert caught.value.status_code == 403
    assert caught.value.error_details[0]["reason"] == "userRateLimitExceeded"
    assert caught.value.error_details[0]["domain"] == "usageLimits"
    with pytest.raises(HttpError) as caught:
        sheets.spreadsheets().get(spreadsheetId="ss-0").execute()
    assert caught.value.status_code == 429
    assert caught.value.error_details[0]["reason"] == "RATE_LIMIT_EXCEEDED"
    assert "per minute per user" in caught.value.reason
