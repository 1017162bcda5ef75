"""What every emulator shares: request counting per route, added latency, throttling and
injected failures, for benchmarks and fault tests.

Mount ``FaultGate`` in the emulator's app. Settings come from `dsr sandbox up` options or,
at run time, from the control routes every emulator mounts: ``GET /_emulator/stats``,
``POST /_emulator/faults`` (JSON body with the fields of ``FaultSettings``),
``POST /_emulator/reset-stats``.

"After apply" faults (``after_apply_*``): the request is served, so the write is applied to the
emulator's state, and then the answer is lost: the connection is reset without a byte of
response (``after_apply_status`` unset) or a 5xx is sent instead of the real answer. A real
proxy or load balancer does this when it drops or times out a response after the backend has
committed (e.g. AWS ALB answers 504 when the target is slow to respond, Google's front ends
502/503; a TCP reset on an idle-timed-out connection): the client cannot tell a write that ran
from one that did not, which is what the connectors' re-read after an ambiguous failure is for.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorFactory = Callable[[int, str, float | None, str | None], Response]
"""Builds the vendor's own error response: (status, message, retry_after seconds, the vendor's
error code or reason, None for the usual one of that status)."""


class FaultSettings(BaseModel):
    latency_ms: float = Field(default=0, ge=0, description="added to every request")
    throttle_every: int = Field(default=0, ge=0, description="every Nth request gets 429 (0: off)")
    retry_after_s: float = Field(default=1, ge=0, description="Retry-After sent with a 429")
    fail_path: str | None = Field(default=None, description="regex of paths that fail")
    fail_status: int = Field(default=500, ge=400, le=599)
    fail_count: int = Field(default=0, ge=0, description="how many requests fail (then heal)")
    fail_code: str | None = Field(
        default=None,
        description="the vendor's error code the failure carries (Graph's code, Google's "
        "reason), e.g. a 404 MailboxNotEnabledForRESTAPI; unset: the usual one of the status",
    )
    after_apply_path: str | None = Field(
        default=None, description="regex of paths whose answer is lost after they were served"
    )
    after_apply_method: str = Field(
        default="POST|PUT|PATCH|DELETE", description="regex of the methods it applies to"
    )
    after_apply_body: str | None = Field(
        default=None, description="regex the request body must match too (e.g. a $batch item)"
    )
    after_apply_count: int = Field(default=0, ge=0, description="how many answers are lost")
    after_apply_status: int | None = Field(
        default=None,
        ge=500,
        le=599,
        description="answer this status instead of the real one; unset: reset the connection",
    )


class Faults:
    """Thread-safe counters and settings, consulted by an emulator's middleware."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._seen = 0

    def record(self, route: str) -> None:
        with self._lock:
            self.counts[route] += 1

    def verdict(self, path: str) -> tuple[int, float | None] | None:
        """None to serve the request, or (status, retry_after) to refuse it."""
        with self._lock:
            self._seen += 1
            s = self.settings
            if s.fail_count and s.fail_path and re.search(s.fail_path, path):
                self.settings = s.model_copy(update={"fail_count": s.fail_count - 1})
                return (s.fail_status, None)
            if s.throttle_every and self._seen % s.throttle_every == 0:
                return (429, s.retry_after_s)
        return None

    def lose_answer(self, path: str, method: str, body: bytes) -> tuple[bool, int | None]:
        """Whether this request's answer is to be lost after serving it, and how (a status to
        send instead, or None for a reset); counts the fault down."""
        with self._lock:
            s = self.settings
            if not (s.after_apply_count and s.after_apply_path):
                return False, None
            if not (
                re.search(s.after_apply_path, path)
                and re.fullmatch(s.after_apply_method, method)
                and (
                    s.after_apply_body is None
                    or re.search(s.after_apply_body, body.decode("utf-8", "replace"))
                )
            ):
                return False, None
            self.settings = s.model_copy(update={"after_apply_count": s.after_apply_count - 1})
            return True, s.after_apply_status

    def wants_body(self, path: str) -> bool:
        s = self.settings
        return bool(
            s.after_apply_count and s.after_apply_path and re.search(s.after_apply_path, path)
        )

    async def delay(self) -> None:
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000)

    def control_routes(self) -> list[Route]:
        async def stats(_: Request) -> Response:
            with self._lock:
                return JSONResponse({"requests": dict(self.counts), "total": self.counts.total()})

        async def set_faults(request: Request) -> Response:
            self.settings = FaultSettings.model_validate(await request.json())
            return JSONResponse(self.settings.model_dump())

        async def reset(_: Request) -> Response:
            with self._lock:
                self.counts.clear()
            return Response(status_code=204)

        return [
            Route("/_emulator/stats", stats, methods=["GET"]),
            Route("/_emulator/faults", set_faults, methods=["POST"]),
            Route("/_emulator/reset-stats", reset, methods=["POST"]),
        ]


class FaultGate:
    """ASGI middleware applying ``Faults``: counts each request by route, adds the latency,
    answers throttled or failing requests with the vendor's own error body.

    Pure ASGI rather than Starlette's BaseHTTPMiddleware, which costs ~1.7 ms a request here.
    ``Middleware(FaultGate, faults=..., route_of=..., error=...)`` in a Starlette app.
    """

    def __init__(
        self,
        app: ASGIApp,
        faults: Faults,
        route_of: Callable[[Request], str],
        error: ErrorFactory,
        exempt: tuple[str, ...] = ("/_emulator/",),
    ) -> None:
        self.app = app
        self.faults = faults
        self.route_of = route_of
        self.error = error
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        self.faults.record(self.route_of(Request(scope)))
        await self.faults.delay()
        refused = self.faults.verdict(path)
        if refused is None:
            await self._serve(scope, receive, send)
            return
        status, retry_after = refused
        message = "Too many requests" if status == 429 else "Injected failure"
        code = None if status == 429 else self.faults.settings.fail_code
        await self.error(status, message, retry_after, code)(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if not self.faults.wants_body(path):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        lose, status = self.faults.lose_answer(path, scope.get("method", ""), body)
        replay = _replay(body)
        if not lose:
            await self.app(scope, replay, send)
            return

        async def swallow(_: Message) -> None:
            return None

        await self.app(scope, replay, swallow)  # applied; its answer goes nowhere
        if status is not None:
            await self.error(status, "Injected failure after the request was applied", None, None)(
                scope, replay, send
            )
            return
        abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
        if abort is None:
            # No transport to reset (not served by EmulatorServer): start an answer and fail,
            # which makes uvicorn close the connection mid-response.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise ConnectionAbortedError("answer lost after the request was applied")
        abort()
        await asyncio.sleep(0)  # the server sees the connection gone ...
        # ... and drops this answer, which middleware around the gate still wants to see.
        await Response(status_code=502)(scope, replay, send)


ABORT_EXTENSION = "dsrflow.abort_connection"
"""Scope extension (set by ``with_connection_abort``): resets the request's TCP connection."""


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def with_connection_abort(app: ASGIApp) -> ASGIApp:
    """The app, with a scope extension that resets the connection of a request.

    ASGI has no way to drop a connection without answering; uvicorn's ``send`` is a method of
    its request cycle, which holds the asyncio transport. SO_LINGER 0 makes the close a TCP RST,
    as a proxy that drops a connection sends.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and transport is not None:

            def abort() -> None:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()

            scope = {
                **scope,
                "extensions": {**(scope.get("extensions") or {}), ABORT_EXTENSION: abort},
            }
        await app(scope, receive, send)

    return wrapped
