"""Sheets v4: ``spreadsheets.get``, ``values.get``/``batchGet``/``update``/``clear`` and
``spreadsheets.batchUpdate``, as the Sheets v4 reference describes them."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.emulators.google.auth import authorise
from sandbox.emulators.google.errors import SHEETS, GoogleError, GoogleJSON, quota_exceeded
from sandbox.emulators.google.fields import apply_fields, parse_fields
from sandbox.emulators.google.params import bool_param, check_params, enum_param
from sandbox.emulators.google.sheets_batch_update import apply, protected_error
from sandbox.emulators.google.sheets_values import read_window, resolve, write_window
from sandbox.emulators.google.state import SPREADSHEET, DriveFile, GoogleState

GET_PARAMS = frozenset(
    {"ranges", "includeGridData", "excludeTablesInBandedRanges", "commentsViewMode"}
)
READ_PARAMS = frozenset({"ranges", "majorDimension", "valueRenderOption", "dateTimeRenderOption"})
UPDATE_PARAMS = frozenset(
    {
        "valueInputOption",
        "includeValuesInResponse",
        "responseValueRenderOption",
        "responseDateTimeRenderOption",
    }
)
MAJOR = {"ROWS", "COLUMNS", "DIMENSION_UNSPECIFIED"}
RENDER = {"FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"}
DATE_RENDER = {"SERIAL_NUMBER", "FORMATTED_STRING"}


def _spreadsheet(
    state: GoogleState, spreadsheet_id: str, user: str, *, write: bool = False
) -> DriveFile:
    file = state.files.get(spreadsheet_id)
    if file is None or file.trashed:
        raise GoogleError(404, "Requested entity was not found.", reason="notFound")
    if not (state.can_write(user, file) if write else state.can_read(user, file)):
        # Sheets, unlike Drive, says so: 403 "The caller does not have permission" (the body
        # quoted in nikaia/translation-sheet#8; googleapis/google-api-ruby-client#461: a
        # service account is a user of its own and must be on the file's ACL).
        raise GoogleError(403, "The caller does not have permission", reason="forbidden")
    if file.mime_type != SPREADSHEET:
        raise GoogleError(400, "This operation is not supported for this document")
    return file


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise GoogleError(400, "Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received. Expected an object.")
    return body


def _respond(request: Request, body: dict[str, Any]) -> Response:
    fields = request.query_params.get("fields")
    return GoogleJSON(apply_fields(body, parse_fields(fields)) if fields else body)


def routes(state: GoogleState) -> list[Route]:
    def reads(request: Request) -> str:
        token = authorise(state, request)
        if not state.take_read(token.user):
            raise quota_exceeded(SHEETS)
        exceeded = state.spend_sheets(token.user)
        if exceeded is not None:
            raise quota_exceeded(SHEETS, per_user=exceeded.per_user, limit=exceeded.limit)
        return token.user

    def writes(request: Request) -> str:
        user = authorise(state, request, write=True).user
        exceeded = state.spend_sheets(user, write=True)
        if exceeded is not None:
            raise quota_exceeded(
                SHEETS, write=True, per_user=exceeded.per_user, limit=exceeded.limit
            )
        return user

    def read_options(request: Request) -> tuple[str, str]:
        major = enum_param(request, "majorDimension", "ROWS", MAJOR)
        option = enum_param(request, "valueRenderOption", "FORMATTED_VALUE", RENDER)
        enum_param(request, "dateTimeRenderOption", "SERIAL_NUMBER", DATE_RENDER)
        return ("ROWS" if major == "DIMENSION_UNSPECIFIED" else major), option

    async def get_spreadsheet(request: Request) -> Response:
        check_params(request, GET_PARAMS)
        user = reads(request)
        grid = bool_param(request, "includeGridData")
        with state.lock:
            file = _spreadsheet(state, request.path_params["sid"], user)
            ranges = request.query_params.getlist("ranges")
            wanted = {resolve(file, r)[0].title: resolve(file, r)[1] for r in ranges}
            sheets = []
            for index, sheet in enumerate(file.sheets):
                if ranges and sheet.title not in wanted:
                    continue
                entry: dict[str, Any] = {"properties": sheet.properties(index)}
                if sheet.protected:
                    entry["protectedRanges"] = [
                        p.resource(sheet.sheet_id, n) for n, p in enumerate(sheet.protected)
                    ]
                if grid:
                    rng = wanted.get(sheet.title) or resolve(file, sheet.title)[1]
                    r0, _, c0, _ = rng.bounded(sheet.row_count, sheet.column_count)
                    _, values = read_window(sheet, rng, "ROWS", "FORMATTED_VALUE")
                    entry["data"] = [
                        {
                            "startRow": r0,
                            "startColumn": c0,
                            "rowData": [
                                {"values": [{"formattedValue": v} if v != "" else {} for v in row]}
                                for row in values
                            ],
                        }
                    ]
                sheets.append(entry)
            base = str(request.base_url).rstrip("/")
            body = {
                "spreadsheetId": file.id,
                "properties": {
                    "title": file.name,
                    "locale": "en_US",
                    "autoRecalc": "ON_CHANGE",
                    "timeZone": "Etc/GMT",
                },
                "sheets": sheets,
                "spreadsheetUrl": f"{base}/spreadsheets/d/{file.id}/edit",
            }
        return _respond(request, body)

    async def batch_get(request: Request) -> Response:
        check_params(request, READ_PARAMS)
        user = reads(request)
        major, option = read_options(request)
        with state.lock:
            file = _spreadsheet(state, request.path_params["sid"], user)
            value_ranges = []
            for text in request.query_params.getlist("ranges"):
                sheet, rng = resolve(file, text)
                returned, values = read_window(sheet, rng, major, option)
                value_range: dict[str, Any] = {"range": returned, "majorDimension": major}
                if values:
                    value_range["values"] = values
                value_ranges.append(value_range)
        body: dict[str, Any] = {"spreadsheetId": file.id}
        if value_ranges:
            body["valueRanges"] = value_ranges
        return _respond(request, body)

    async def get_values(request: Request) -> Response:
        check_params(request, READ_PARAMS - {"ranges"})
        user = reads(request)
        major, option = read_options(request)
        with state.lock:
            file = _spreadsheet(state, request.path_params["sid"], user)
            sheet, rng = resolve(file, request.path_params["range"])
            returned, values = read_window(sheet, rng, major, option)
        body: dict[str, Any] = {"range": returned, "majorDimension": major}
        if values:
            body["values"] = values
        return _respond(request, body)

    async def update_values(request: Request) -> Response:
        check_params(request, UPDATE_PARAMS)
        user = writes(request)
        input_option = request.query_params.get("valueInputOption")
        if input_option not in ("RAW", "USER_ENTERED"):
            raise GoogleError(400, "'valueInputOption' is required but not specified")
        text = request.path_params["range"]
        body = await _json_body(request)
        if body.get("range") not in (None, text):
            raise GoogleError(
                400,
                f"Requested writing within range [{text}], but tried writing to [{body['range']}]",
            )
        major = body.get("majorDimension", "ROWS")
        with state.lock:
            file = _spreadsheet(state, request.path_params["sid"], user, write=True)
            sheet, rng = resolve(file, text)
            r0, c0 = rng.start_row or 0, rng.start_col or 0
            values = body.get("values", [])
            if major == "COLUMNS":
                cells_at = [
                    (r0 + i, c0 + j) for j, col in enumerate(values) for i in range(len(col))
                ]
            else:
                cells_at = [
                    (r0 + i, c0 + j) for i, row in enumerate(values) for j in range(len(row))
                ]
            if any(not sheet.may_edit(user, r, c) for r, c in cells_at):
                raise protected_error()
            written, rows, cols, cells = write_window(
                sheet, rng, body.get("values", []), major, input_option
            )
            file.touched()
            answer: dict[str, Any] = {
                "spreadsheetId": file.id,
                "updatedRange": written,
                "updatedRows": rows,
                "updatedColumns": cols,
                "updatedCells": cells,
            }
            if bool_param(request, "includeValuesInResponse"):
                answer["updatedData"] = {
                    "range": written,
                    "majorDimension": "ROWS",
                    "values": read_window(sheet, rng, "ROWS", "FORMATTED_VALUE")[1],
                }
        return _respond(request, answer)

    async def values_post(request: Request) -> Response:
        # POST .../values/{range}:clear — the only POST under values/{range}.
        text = request.path_params["range"]
        if not text.endswith(":clear"):
            raise GoogleError(404, "Method not found.", reason="notFound")
        check_params(request, frozenset())
        user = writes(request)
        with state.lock:
            file = _spreadsheet(state, request.path_params["sid"], user, write=True)
            sheet, rng = resolve(file, text.removesuffix(":clear"))
            r0, r1, c0, c1 = rng.bounded(sheet.row_count, sheet.column_count)
            if any(not sheet.may_edit(user, r, c) for r in range(r0, r1) for c in range(c0, c1)):
                raise protected_error()
            for row in sheet.rows[r0:r1]:
                for c in range(c0, min(c1, len(row))):
                    row[c] = ""
            file.touched()
            returned = read_window(sheet, rng, "ROWS", "FORMATTED_VALUE")[0]
        return _respond(request, {"spreadsheetId": file.id, "clearedRange": returned})

    async def batch_update(request: Request) -> Response:
        check_params(request, frozenset())
        user = writes(request)
        body = await _json_body(request)
        unknown = set(body) - {
            "requests",
            "includeSpreadsheetInResponse",
            "responseRanges",
            "responseIncludeGridData",
        }
        if unknown:
            name = sorted(unknown)[0]
            raise GoogleError(
                400, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise GoogleError(400, "Must specify at least one request.")
        with state.lock:
            file = _spreadsheet(state, request.path_params["sid"], user, write=True)
            replies = apply(file, requests, user)
        return _respond(request, {"spreadsheetId": file.id, "replies": replies})

    prefix = "/v4/spreadsheets/{sid}"
    return [
        # values:batchGet and :batchUpdate first: "{sid}" alone would swallow them.
        Route(prefix + "/values:batchGet", batch_get, methods=["GET"]),
        Route("/v4/spreadsheets/{sid}:batchUpdate", batch_update, methods=["POST"]),
        Route(prefix + "/values/{range:path}", get_values, methods=["GET"]),
        Route(prefix + "/values/{range:path}", update_values, methods=["PUT"]),
        Route(prefix + "/values/{range:path}", values_post, methods=["POST"]),
        Route(prefix, get_spreadsheet, methods=["GET"]),
    ]
