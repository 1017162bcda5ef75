"""The schema check that every emulator answer goes through (tests/support/vendor_schemas/):
it must catch what a vendor would never send, or passing tests prove nothing."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.emulators.server import EmulatorServer
from tests.support import vendor_schemas
from tests.support.vendor_schemas import google, graph, jira


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_drive_answers_are_held_to_the_discovery_document() -> None:
    good = {"kind": "drive#fileList", "files": [{"id": "1", "name": "x", "size": "12"}]}
    assert google.check("GET", "/drive/v3/files", 200, body(good)) == []
    invented = {"files": [{"id": "1", "owner": "al@example.com"}]}
    assert google.check("GET", "/drive/v3/files", 200, body(invented)) == [
        "drive.files.list: files/0: Additional properties are not allowed ('owner' was unexpected)"
    ]
    # int64 travels as a string in Google's JSON.
    assert google.check("GET", "/drive/v3/files/1", 200, body({"id": "1", "size": 12})) == [
        "drive.files.get: size: 12 is not of type 'string'"
    ]


def test_sheets_routes_are_found_by_their_templates() -> None:
    ranges = {"spreadsheetId": "s", "valueRanges": [{"range": "A!A1:B2", "values": [["x"]]}]}
    assert google.check("GET", "/v4/spreadsheets/s/values:batchGet", 200, body(ranges)) == []
    assert google.check("GET", "/v4/spreadsheets/s/values/A%21A1", 200, body({"range": 1})) == [
        "sheets.spreadsheets.values.get: range: 1 is not of type 'string'"
    ]
    assert google.check("GET", "/v4/spreadsheets/s/nothing", 200, b"{}") == [
        "GET /v4/spreadsheets/s/nothing: no such method in the Drive v3 / Sheets v4 "
        "discovery documents"
    ]


def test_google_errors_have_googles_shape() -> None:
    error = {"error": {"code": 404, "message": "File not found: x.", "errors": []}}
    assert google.check("GET", "/drive/v3/files/x", 404, body(error)) == []
    assert google.check("GET", "/drive/v3/files/x", 404, body({"message": "nope"})) != []


def test_graph_answers_are_read_by_the_sdks_models() -> None:
    message = {"id": "m", "receivedDateTime": "2024-05-01T10:00:00Z", "@odata.etag": "W/1"}
    page = {"value": [message], "@odata.nextLink": "http://127.0.0.1:1/v1.0/users/u/messages"}
    assert graph.check("GET", "/v1.0/users/u/messages", 200, body(page), b"") == []
    bad = {"value": [{**message, "sender_address": "al@example.com", "isRead": "yes"}]}
    assert graph.check("GET", "/v1.0/users/u/messages", 200, body(bad), b"") == [
        "GET /users/u/messages: unknown property /value/0/sender_address",
        "GET /users/u/messages: value the model cannot read at /value/0/isRead",
    ]
    assert graph.check("POST", "/v1.0/users/u/messages/m/permanentDelete", 204, b"", b"") == []


def test_a_remembered_graph_check_reports_alike_whatever_the_ids() -> None:
    # Checks are remembered with the ids left out (each seeding makes up new ones): a message
    # seen before with other ids, at another place on the page, is reported where it is now.
    bad = {"id": "m1", "parentFolderId": "f1", "isRead": "yes"}
    first = graph.check("GET", "/v1.0/users/u/messages", 200, body({"value": [bad]}), b"")
    again = {"value": [{"id": "m2"}, {**bad, "id": "m3", "parentFolderId": "f2"}]}
    assert first == ["GET /users/u/messages: value the model cannot read at /value/0/isRead"]
    assert graph.check("GET", "/v1.0/users/u/messages", 200, body(again), b"") == [
        "GET /users/u/messages: value the model cannot read at /value/1/isRead"
    ]
    # The type annotation is kept: it picks the model (a fileAttachment has contentBytes).
    files = "/v1.0/users/u/messages/m/attachments"
    file = {"@odata.type": "#microsoft.graph.fileAttachment", "id": "a1", "contentBytes": "eA=="}
    assert graph.check("GET", files, 200, body({"value": [file]}), b"") == []
    plain = {**file, "@odata.type": "#microsoft.graph.attachment", "id": "a2"}
    assert graph.check("GET", files, 200, body({"value": [plain]}), b"") == [
        "GET /users/u/messages/m/attachments: unknown property /value/0/contentBytes"
    ]
    # Only a string id is left out: an id the model cannot read is still found.
    odd = {"value": [{"id": "m4"}, {"id": 4}, {"id": "m5", "parentFolderId": ["f"]}]}
    assert graph.check("GET", "/v1.0/users/u/messages", 200, body(odd), b"") == [
        "GET /users/u/messages: value the model cannot read at /value/1/id",
        "GET /users/u/messages: value the model cannot read at /value/2/parentFolderId",
    ]


@pytest.mark.parametrize("model", sorted(set(graph._ITEMS.values()), key=str))
def test_the_ids_left_out_of_a_remembered_check_are_plain_strings_to_the_sdk(
    model: graph.Model,
) -> None:
    # What lets a check be remembered with the ids left out: the SDK takes any string there.
    fields = model().get_field_deserializers()
    for name in graph._STRING_IDS & set(fields):
        for text in ("", "AAMkAD-x_y=", "<id>"):
            assert graph._problems(model, {name: text}) == [], (name, text)
        assert graph._problems(model, {name: 1}) != [], name


def test_graph_batch_items_are_checked_as_their_own_requests() -> None:
    asked = {"requests": [{"id": "1", "method": "GET", "url": "/users/u/messages/m"}]}
    answered = {"responses": [{"id": "1", "status": 200, "body": {"id": "m", "colour": 1}}]}
    assert graph.check("POST", "/v1.0/$batch", 200, body(answered), body(asked)) == [
        "GET /users/u/messages/m: unknown property /colour"
    ]


def test_jira_errors_have_jiras_shape() -> None:
    assert jira.check("GET", "/rest/api/2/issue/X-1", 404, body({"errorMessages": ["x"]})) == []
    assert jira.check("GET", "/rest/api/2/issue/X-1", 404, body({"message": "x"})) != []


@pytest.fixture
def lying_drive() -> object:
    async def files(_: Request) -> JSONResponse:
        return JSONResponse({"files": [{"id": "1", "ownerEmail": "al@example.com"}]})

    app = Starlette(routes=[Route("/drive/v3/files", files)])
    with EmulatorServer(app, name="google-lying") as url:
        yield url


def test_every_emulator_answer_reaches_the_check(lying_drive: str) -> None:
    httpx.get(f"{lying_drive}/drive/v3/files").raise_for_status()
    found = vendor_schemas.take()  # taken here, so this test itself does not fail on it
    assert found == [
        "google-lying GET /drive/v3/files -> 200: drive.files.list: files/0: Additional "
        "properties are not allowed ('ownerEmail' was unexpected)"
    ]
