"""The Starlette app around ``GraphApi``: bearer-token check, Exchange's limits per mailbox (4
concurrent requests, 10,000 per 10 minutes: ``limits``), the shared fault middleware, and the
emulator's control routes."""

from __future__ import annotations

import re
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.emulators.faults import FaultGate, Faults
from sandbox.emulators.graph.api import GraphApi, GraphResponse, decode_json, graph_error
from sandbox.emulators.graph.limits import GraphLimits, MailboxLimits
from sandbox.emulators.graph.permissions import token_roles
from sandbox.emulators.graph.query import QueryError
from sandbox.emulators.graph.store import GraphStore

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


def _mailbox_of(path: str) -> str | None:
    """The mailbox a Graph path (``/v1.0/users/{id}/…``, or a batch item's ``/users/{id}/…``)
    addresses; None for the directory's own routes (``/users``, ``/users/{id}``)."""
    match = _USER_SEGMENT.match(path if path.startswith("/v1.0/") else "/v1.0" + path)
    return match.group(1).lower() if match else None


def _throttled(message: str, retry_after: float) -> GraphResponse:
    # Exchange's throttling answer through Graph: 429, code ApplicationThrottled, the limit
    # named in the message (``limits``).
    return graph_error(429, "ApplicationThrottled", message, retry_after)


class _MailboxLimits(BaseHTTPMiddleware):
    """Exchange's per-mailbox limits on every request to a mailbox (``limits``).

    Sits outside the fault middleware so that added latency counts as time in flight.
    """

    def __init__(self, app: Any, limits: MailboxLimits) -> None:
        super().__init__(app)
        self.limits = limits

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        mailbox = _mailbox_of(_path(request))
        if mailbox is None:
            return await call_next(request)
        refused = self.limits.enter(mailbox)
        if refused is not None:
            return _respond(_throttled(*refused))
        try:
            return await call_next(request)
        finally:
            self.limits.leave(mailbox)


def create_app(
    store: GraphStore, faults: Faults | None = None, limits: GraphLimits | None = None
) -> Starlette:
    """A Graph emulator over ``store``; ``app.state.api``/``.faults``/``.limits`` for tests and
    the sandbox; ``limits``: Exchange's per-mailbox limits (Graph's figures by default)."""
    faults = faults or Faults()
    api = GraphApi(store)
    mailbox_limits = MailboxLimits(limits)

    def route_of(request: Request) -> str:
        path = _path(request).removeprefix("/v1.0")
        if path == "/$batch":
            return "POST /$batch"
        return api.route_of(request.method, path)

    def admit_batch_item(path: str) -> GraphResponse | None:
        """An item's own throttling: its mailbox's limits (it holds a slot while it runs,
        released by ``batch_item_done``), then the injected faults."""
        mailbox = _mailbox_of(path)
        if mailbox is not None:
            refused = mailbox_limits.enter(mailbox)
            if refused is not None:
                return _throttled(*refused)
        verdict = faults.verdict(path)
        if verdict is not None and mailbox is not None:
            mailbox_limits.leave(mailbox)
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
            return _respond(api.batch(body, base_url, admit_batch_item, roles, batch_item_done))
        query = dict(request.query_params)
        return _respond(api.handle(request.method, path, query, body, base_url, roles))

    def batch_item_done(path: str) -> None:
        mailbox = _mailbox_of(path)
        if mailbox is not None:
            mailbox_limits.leave(mailbox)

    async def set_limits(request: Request) -> Response:
        """POST a ``GraphLimits`` body: Exchange's limits from now on (0 turns one off)."""
        mailbox_limits.configure(GraphLimits.model_validate(await request.json()))
        return JSONResponse(mailbox_limits.settings.model_dump())

    async def graph_stats(_: Request) -> Response:
        return JSONResponse(
            {
                "messages": store.count(),
                "recoverable_items": store.recoverable_count(),
                "batch_items": dict(api.batch_items),
                "mailbox_concurrency_refused": mailbox_limits.refused["MailboxConcurrency"],
                "request_rate_refused": mailbox_limits.refused["RequestRate"],
            }
        )

    routes = [
        *faults.control_routes(),
        Route("/_emulator/graph", graph_stats, methods=["GET"]),
        Route("/_emulator/graph-limits", set_limits, methods=["POST"]),
        Route("/{path:path}", graph, methods=["GET", "POST", "DELETE", "PATCH", "PUT"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_MailboxLimits, limits=mailbox_limits),
            Middleware(FaultGate, faults=faults, route_of=route_of, error=_error),
        ],
    )
    app.state.api = api
    app.state.store = store
    app.state.faults = faults
    app.state.limits = mailbox_limits
    return app
