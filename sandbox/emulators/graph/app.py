"""The Starlette app around ``GraphApi``: bearer-token check, Exchange's limit of 4 concurrent
requests per mailbox, the shared fault middleware, and the emulator's control routes."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.emulators.faults import FaultGate, Faults
from sandbox.emulators.graph.api import GraphApi, GraphResponse, decode_json, graph_error
from sandbox.emulators.graph.permissions import token_roles
from sandbox.emulators.graph.query import QueryError
from sandbox.emulators.graph.store import GraphStore

MAILBOX_CONCURRENCY = 4  # Exchange Online: at most 4 concurrent requests per mailbox and app
_USER_SEGMENT = re.compile(r"^/v1\.0/users/([^/]+)/")


def _path(request: Request) -> str:
    """The decoded path as the server received it. Not ``request.url.path``: that re-parses
    the decoded path, and a guest's UPN (``al_example.com#EXT#@tenant``) would end at ``#``."""
    return str(request.scope["path"])


def _respond(answer: GraphResponse) -> Response:
    if answer.body is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def _error(
    status: int, message: str, retry_after: float | None, code: str | None = None
) -> Response:
    if status == 429:
        return _respond(graph_error(429, "ApplicationThrottled", message, retry_after))
    code = code or {503: "ServiceNotAvailable", 504: "GatewayTimeout"}.get(
        status, "InternalServerError"
    )
    return _respond(graph_error(status, code, message, retry_after))


class _MailboxConcurrency(BaseHTTPMiddleware):
    """More than 4 requests in flight for one mailbox: 429 MailboxConcurrency, as Exchange does.

    Sits outside the fault middleware so that added latency counts as time in flight.
    """

    def __init__(self, app: Any, counts: Counter[str], refused: Counter[str]) -> None:
        super().__init__(app)
        self.in_flight = counts
        self.refused = refused

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        match = _USER_SEGMENT.match(_path(request))
        if not match:
            return await call_next(request)
        mailbox = match.group(1).lower()
        if self.in_flight[mailbox] >= MAILBOX_CONCURRENCY:
            self.refused[mailbox] += 1
            answer = graph_error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                retry_after=1,
            )
            answer.body["error"]["code"] = "MailboxConcurrency"
            return _respond(answer)
        self.in_flight[mailbox] += 1
        try:
            return await call_next(request)
        finally:
            self.in_flight[mailbox] -= 1


def create_app(store: GraphStore, faults: Faults | None = None) -> Starlette:
    """A Graph emulator over ``store``; ``app.state.api``/``.faults`` for tests and the sandbox."""
    faults = faults or Faults()
    api = GraphApi(store)
    in_flight: Counter[str] = Counter()
    refused: Counter[str] = Counter()

    def route_of(request: Request) -> str:
        path = _path(request).removeprefix("/v1.0")
        if path == "/$batch":
            return "POST /$batch"
        return api.route_of(request.method, path)

    def admit_batch_item(path: str) -> GraphResponse | None:
        verdict = faults.verdict(path)
        if verdict is None:
            return None
        status, retry_after = verdict
        if status == 429:
            return graph_error(429, "ApplicationThrottled", "Too many requests", retry_after)
        code = faults.settings.fail_code or "InternalServerError"
        return graph_error(status, code, "Injected failure", retry_after)

    async def graph(request: Request) -> Response:
        if not _path(request).startswith("/v1.0/"):
            return _respond(
                graph_error(400, "BadRequest", "Invalid version: only /v1.0 is served here.")
            )
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            return _respond(
                graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
            )
        roles = token_roles(authorization[7:].strip())  # each request's, batch items too
        path = _path(request).removeprefix("/v1.0")
        base_url = str(request.base_url).rstrip("/")
        try:
            body = decode_json(await request.body())
        except QueryError as exc:
            return _respond(graph_error(400, exc.code, exc.message))
        if path == "/$batch":
            if request.method != "POST":
                return _respond(graph_error(405, "BadRequest", "$batch takes POST only."))
            return _respond(api.batch(body, base_url, admit_batch_item, roles))
        query = dict(request.query_params)
        return _respond(api.handle(request.method, path, query, body, base_url, roles))

    async def graph_stats(_: Request) -> Response:
        return JSONResponse(
            {
                "messages": store.count(),
                "recoverable_items": store.recoverable_count(),
                "batch_items": dict(api.batch_items),
                "mailbox_concurrency_refused": dict(refused),
            }
        )

    routes = [
        *faults.control_routes(),
        Route("/_emulator/graph", graph_stats, methods=["GET"]),
        Route("/{path:path}", graph, methods=["GET", "POST", "DELETE", "PATCH", "PUT"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_MailboxConcurrency, counts=in_flight, refused=refused),
            Middleware(FaultGate, faults=faults, route_of=route_of, error=_error),
        ],
    )
    app.state.api = api
    app.state.store = store
    app.state.faults = faults
    return app
