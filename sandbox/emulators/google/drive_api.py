"""Drive v3: ``GET /drive/v3/files`` (``q``, paging, ``orderBy``, ``fields``, shared drives) and
``GET /drive/v3/files/{fileId}`` and ``GET /drive/v3/files/{fileId}/export``, as the Drive v3
reference describes them (https://developers.google.com/drive/api/reference/rest/v3/files/list,
…/files/export).

Each caller sees what its user may read (``GoogleState.role``). Shared-drive items are listed
only with ``supportsAllDrives=true``, ``includeItemsFromAllDrives=true`` and a ``corpora`` of
``drive`` (with its ``driveId``) or ``allDrives`` ("Implement shared drive support",
https://developers.google.com/drive/api/guides/enable-shareddrives); ``files.get`` of one without
``supportsAllDrives`` is a 404 (seattleflu/id3c#214)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.emulators.google import export_formats
from sandbox.emulators.google.auth import authorise
from sandbox.emulators.google.drive_query import parse_query_fields
from sandbox.emulators.google.errors import (
    GoogleError,
    GoogleJSON,
    drive_quota_exceeded,
    export_too_large,
    invalid_value,
)
from sandbox.emulators.google.fields import apply_fields, check_known, parse_fields
from sandbox.emulators.google.params import bool_param, check_params, int_param
from sandbox.emulators.google.state import FILE_MEMBERS, SPREADSHEET, DriveFile, GoogleState

LIST_PARAMS = frozenset(
    {
        "corpora",
        "corpus",
        "driveId",
        "includeItemsFromAllDrives",
        "includeLabels",
        "includePermissionsForView",
        "includeTeamDriveItems",
        "orderBy",
        "pageSize",
        "pageToken",
        "q",
        "spaces",
        "supportsAllDrives",
        "supportsTeamDrives",
        "teamDriveId",
    }
)
GET_PARAMS = frozenset(
    {
        "acknowledgeAbuse",
        "includeLabels",
        "includePermissionsForView",
        "supportsAllDrives",
        "supportsTeamDrives",
    }
)
EXPORT_PARAMS = frozenset({"mimeType"})
DEFAULT_FILE_FIELDS = ("kind", "id", "name", "mimeType")
ORDER_KEYS = {"createdTime": "created_time", "modifiedTime": "modified_time", "name": "name"}


def _page_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{fingerprint}".encode()).decode().rstrip("=")


def _read_page_token(token: str, fingerprint: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset, _, seen = text.partition(":")
        if seen != fingerprint:
            raise ValueError(token)
        return int(offset)
    except ValueError:
        raise invalid_value("pageToken") from None


def _order(files: list[DriveFile], order_by: str) -> list[DriveFile]:
    """``orderBy=name,modifiedTime desc``: a stable sort key by key, last key first."""
    for part in reversed([p.strip() for p in order_by.split(",") if p.strip()]):
        key, _, direction = part.partition(" ")
        if key == "folder":
            files = sorted(files, key=lambda f: f.mime_type != "application/vnd.google-apps.folder")
            continue
        if key not in ORDER_KEYS or direction not in ("", "desc", "asc"):
            raise invalid_value("orderBy", f"Invalid sort field {key!r}")
        attr = ORDER_KEYS[key]
        files = sorted(
            files,
            key=lambda f: getattr(f, attr).lower() if attr == "name" else getattr(f, attr),
            reverse=direction == "desc",
        )
    return files


def _selection(request: Request, known: dict[str, set[str] | None]) -> Any:
    text = request.query_params.get("fields")
    if text is None:
        return None
    selection = parse_fields(text)
    check_known(selection, known, text)
    return selection


def _as_seen_by(state: GoogleState, user: str, file: DriveFile, base: str) -> dict[str, Any]:
    """The File resource with ``capabilities`` for the caller: ``canEdit``, "Whether the
    current user can edit this file" (File reference), i.e. a writer role or above."""
    item = file.resource(base)
    item["capabilities"] = {"canEdit": state.can_write(user, file)}
    return item


def routes(state: GoogleState) -> list[Route]:
    def user_reads(request: Request) -> str:
        """The user the caller acts for, once their token and quota allow the read."""
        token = authorise(state, request, api="drive")
        if not state.take_read(token.user):
            raise drive_quota_exceeded("userRateLimitExceeded")
        exceeded = state.spend_drive(token.user)
        if exceeded is not None:
            # The user's quota: userRateLimitExceeded; the project's: rateLimitExceeded.
            raise drive_quota_exceeded(
                "userRateLimitExceeded" if exceeded.per_user else "rateLimitExceeded"
            )
        return token.user

    def corpus(request: Request, user: str) -> Any:
        """Which shared-drive items a listing may hold: a predicate on a file."""
        supports = bool_param(request, "supportsAllDrives")
        include = bool_param(request, "includeItemsFromAllDrives")
        corpora = request.query_params.get("corpora", "user")
        if corpora not in ("user", "domain", "drive", "allDrives"):
            raise invalid_value("corpora")
        drive_id = request.query_params.get("driveId")
        if (corpora == "drive") != bool(drive_id):
            # The reference's wording: "The driveId parameter must be specified if and only if
            # corpora is set to drive."
            raise GoogleError(
                400,
                "The driveId parameter must be specified if and only if corpora is set to drive.",
                reason="badRequest",
                location="driveId",
            )
        if drive_id:
            drive = state.drives.get(drive_id)
            if drive is None or user.lower() not in drive.members:
                raise GoogleError(
                    404,
                    f"Shared drive not found: {drive_id}",
                    reason="notFound",
                    location="driveId",
                )
        shared_ok = supports and include and corpora in ("drive", "allDrives")

        def admits(file: DriveFile) -> bool:
            if file.drive_id is None:
                return corpora != "drive"
            return shared_ok and (drive_id is None or file.drive_id == drive_id)

        return admits

    async def list_files(request: Request) -> Response:
        check_params(request, LIST_PARAMS)
        user = user_reads(request)
        q = request.query_params.get("q", "")
        order_by = request.query_params.get("orderBy", "")
        page_size = int_param(request, "pageSize", 100, 1, 1000)
        admits = corpus(request, user)
        incomplete = (
            request.query_params.get("corpora") == "allDrives"
            and state.incomplete_all_drives
            and bool(state.drives)
        )
        selection = _selection(
            request,
            {"kind": None, "nextPageToken": None, "incompleteSearch": None, "files": FILE_MEMBERS},
        )
        predicate, fields = parse_query_fields(q)
        if order_by and "fullText" in fields:
            # Drive refuses to sort full-text results: 403 ``forbidden`` on ``orderBy`` (as seen
            # in n8n-io/n8n#4874 and a-bonus/google-docs-mcp#155; the "Resolve errors" guide,
            # https://developers.google.com/drive/api/guides/handle-errors, shows the same
            # message under 400 badRequest, but the live API answers 403).
            raise GoogleError(
                403,
                "Sorting is not supported for queries with fullText terms. Results are always "
                "in descending relevance order.",
                reason="forbidden",
                location="orderBy",
            )
        fingerprint = hashlib.sha256(f"{q}\n{order_by}".encode()).hexdigest()[:12]
        offset = (
            _read_page_token(request.query_params["pageToken"], fingerprint)
            if ("pageToken" in request.query_params)
            else 0
        )
        with state.lock:
            matching = [
                f
                for f in state.files.values()
                if admits(f)
                and state.can_read(user, f)
                and predicate(f)
                and not (incomplete and f.drive_id)
            ]
            matching = _order(matching, order_by)
            page = matching[offset : offset + page_size]
            base = str(request.base_url).rstrip("/")
            items = [_as_seen_by(state, user, f, base) for f in page]
        body: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": incomplete}
        if offset + page_size < len(matching):
            body["nextPageToken"] = _page_token(offset + page_size, fingerprint)
        if selection is None:
            body["files"] = [{k: item[k] for k in DEFAULT_FILE_FIELDS} for item in items]
            return GoogleJSON(body)
        body["files"] = items
        return GoogleJSON(apply_fields(body, selection))

    async def get_file(request: Request) -> Response:
        check_params(request, GET_PARAMS)
        user = user_reads(request)
        file_id = request.path_params["file_id"]
        selection = _selection(request, {k: None for k in FILE_MEMBERS})
        supports = bool_param(request, "supportsAllDrives")
        with state.lock:
            file = state.files.get(file_id)
            # Drive does not tell a file the user may not see from one that does not exist.
            if file is None or not state.can_read(user, file) or (file.drive_id and not supports):
                raise GoogleError(
                    404, f"File not found: {file_id}.", reason="notFound", location="fileId"
                )
            item = _as_seen_by(state, user, file, str(request.base_url).rstrip("/"))
        if selection is None:
            return GoogleJSON({k: item[k] for k in DEFAULT_FILE_FIELDS})
        return GoogleJSON(apply_fields(item, selection))

    async def export_file(request: Request) -> Response:
        """The document converted to ``mimeType``; a spreadsheet to .xlsx (every sheet) or
        CSV/TSV (the first sheet). More than ``export_limit_bytes`` (10 MB) of exported content
        is refused with 403 ``exportSizeLimitExceeded``; a file that is not a Workspace
        document with 403 ``fileNotExportable`` (Drive's "Resolve errors" guide)."""
        # ``alt=media`` is how googleapiclient's ``export_media`` asks for the bytes.
        check_params(request, EXPORT_PARAMS, alts=("json", "media"))
        user = user_reads(request)
        file_id = request.path_params["file_id"]
        mime_type = request.query_params.get("mimeType")
        if not mime_type:
            raise GoogleError(
                400, "Required parameter: mimeType", reason="required", location="mimeType"
            )
        with state.lock:
            file = state.files.get(file_id)
            if file is None or not state.can_read(user, file):
                raise GoogleError(
                    404, f"File not found: {file_id}.", reason="notFound", location="fileId"
                )
            if file.mime_type != SPREADSHEET:
                raise GoogleError(
                    403, "Export only supports Docs Editors files.", reason="fileNotExportable"
                )
            if mime_type not in export_formats.FORMATS:
                raise GoogleError(
                    400,
                    "The requested conversion is not supported.",
                    reason="badRequest",
                    location="convertTo",
                )
            content = export_formats.export(file, mime_type)
        if len(content) > state.export_limit_bytes:
            raise export_too_large()
        return Response(content, media_type=mime_type)

    return [
        Route("/drive/v3/files", list_files, methods=["GET"]),
        Route("/drive/v3/files/{file_id}", get_file, methods=["GET"]),
        Route("/drive/v3/files/{file_id}/export", export_file, methods=["GET"]),
    ]
