"""The Drive v3 + Sheets v4 emulator as one Starlette app.

Routes: ``POST /token``; ``GET /drive/v3/files``, ``GET /drive/v3/files/{id}``,
``GET /drive/v3/files/{id}/export``;
``POST /batch/drive/v3``; ``GET /v4/spreadsheets/{id}``; ``GET …/values:batchGet``;
``GET|PUT …/values/{range}``, ``POST …/values/{range}:clear``;
``POST /v4/spreadsheets/{id}:batchUpdate``; Analytics'
``POST /analytics/v3/userDeletion/userDeletionRequests:upsert`` (analytics_api.py); the
fault-control routes of ``sandbox.emulators.faults`` and ``POST /_emulator/quota`` (the
documented per-minute quotas of ``quotas.py`` by name, 0 = off, ``{"documented": true}`` for
all of Google's numbers, ``{"off": true}`` for none; ``export_limit_bytes``; and the older
test knob ``read_quota_per_minute``, one per-user counter for every read) and
``POST /_emulator/search``
(``{"incomplete_all_drives": true}``: a ``corpora=allDrives`` listing leaves out the shared
drives' items and says ``incompleteSearch: true``, as Drive may); ``GET|POST /_emulator/analytics``
(the deletions filed, the daily quota: analytics_api.py). Unknown routes and parameters
get Google's error shape. Throttling from ``Faults`` answers 429 RESOURCE_EXHAUSTED without
Retry-After, as Google does; the per-user read quota answers Drive's 403 userRateLimitExceeded
on Drive routes and Sheets' 429 on Sheets routes.
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.emulators.faults import FaultGate, Faults
from sandbox.emulators.google import analytics_api, batch, drive_api, sheets_api
from sandbox.emulators.google.auth import token_endpoint
from sandbox.emulators.google.errors import (
    DRIVE_QUOTA_MESSAGES,
    GoogleError,
    GoogleJSON,
    drive_quota_exceeded,
)
from sandbox.emulators.google.quotas import GoogleQuotas
from sandbox.emulators.google.state import GoogleState

# Request path -> the route it counts under in /_emulator/stats.
_ROUTES = [
    (re.compile(r"^/drive/v3/files/[^/]+/export$"), "files.export"),
    (re.compile(r"^/drive/v3/files/[^/]+$"), "files.get"),
    (re.compile(r"^/drive/v3/files$"), "files.list"),
    (re.compile(r"^/batch/drive/v3$"), "batch"),
    (re.compile(r"^/token$"), "token"),
    (re.compile(r"^/analytics/v3/userDeletion/"), "userDeletionRequest.upsert"),
    (re.compile(r"^/v4/spreadsheets/[^/]+/values:batchGet$"), "values.batchGet"),
    (re.compile(r"^/v4/spreadsheets/[^/]+:batchUpdate$"), "spreadsheets.batchUpdate"),
    (re.compile(r"^/v4/spreadsheets/[^/]+/values/.*:clear$"), "values.clear"),
    (re.compile(r"^/v4/spreadsheets/[^/]+/values/"), "values"),
    (re.compile(r"^/v4/spreadsheets/[^/]+$"), "spreadsheets.get"),
]


def route_of(request: Request) -> str:
    path = request.url.path
    for pattern, name in _ROUTES:
        if pattern.match(path):
            if name == "values":
                return "values.get" if request.method == "GET" else "values.update"
            return name
    return "other"


def google_error(
    status: int, message: str, _retry_after: float | None, reason: str | None = None
) -> Response:
    # No Retry-After header: Google never sends one, clients back off on their own.
    if status == 429:
        return GoogleError(
            429,
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute "
            "per user'.",
            reason="rateLimitExceeded",
        ).response()
    if status == 403 and reason in DRIVE_QUOTA_MESSAGES:
        # ``fail_code: userRateLimitExceeded`` / ``rateLimitExceeded``: Drive's quota 403.
        return drive_quota_exceeded(reason).response()
    return GoogleError(status, message, reason=reason).response()


def create_app(state: GoogleState | None = None, faults: Faults | None = None) -> Starlette:
    state = state or GoogleState()
    faults = faults or Faults()

    async def set_quota(request: Request) -> Response:
        body = dict(await request.json())
        try:
            if body.pop("off", False):
                state.quotas = GoogleQuotas()
            if body.pop("documented", False):
                state.quotas = GoogleQuotas.documented()
            if "read_quota_per_minute" in body:
                state.read_quota_per_minute = int(body.pop("read_quota_per_minute"))
            if "export_limit_bytes" in body:
                state.export_limit_bytes = int(body.pop("export_limit_bytes"))
            state.quotas = state.quotas.updated(body)
        except (TypeError, ValueError) as exc:
            return GoogleJSON({"error": str(exc)}, status_code=400)
        state.meter.reset()  # new limits start with empty windows
        return GoogleJSON(
            {
                **state.quotas.as_dict(),
                "read_quota_per_minute": state.read_quota_per_minute,
                "export_limit_bytes": state.export_limit_bytes,
            }
        )

    async def set_search(request: Request) -> Response:
        body = await request.json()
        state.incomplete_all_drives = bool(body.get("incomplete_all_drives", False))
        return GoogleJSON({"incomplete_all_drives": state.incomplete_all_drives})

    async def on_google_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, GoogleError)
        return exc.response()

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return GoogleError(405, "Method Not Allowed", reason="httpMethodNotAllowed").response()
        return GoogleError(404, "Method not found.", reason="notFound").response()

    routes: list[Route] = [
        Route("/token", token_endpoint(state), methods=["POST"]),
        *drive_api.routes(state),
        *sheets_api.routes(state),
        *analytics_api.routes(state),
        batch.route(lambda: app),
        *faults.control_routes(),
        Route("/_emulator/quota", set_quota, methods=["POST"]),
        Route("/_emulator/search", set_search, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        # /token is another service (oauth2.googleapis.com): the API's faults do not apply.
        middleware=[
            Middleware(
                FaultGate,
                faults=faults,
                route_of=route_of,
                error=google_error,
                exempt=("/_emulator/", "/token"),
            )
        ],
        exception_handlers={GoogleError: on_google_error, HTTPException: on_http_error},
    )
    app.state.google = state
    app.state.faults = faults
    return app
