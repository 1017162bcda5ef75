"""What every emulator shares: request counting per route, added latency, throttling and
injected failures, for benchmarks and fault tests.

Mount ``FaultGate`` in the emulator's app. Settings come from `dsr sandbox up` options or,
at run time, from the control routes every emulator mounts: ``GET /_emulator/stats``,
``POST /_emulator/faults`` (JSON body with the fields of ``FaultSettings``),
``POST /_emulator/reset-stats``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

ErrorFactory = Callable[[int, str, float | None], Response]
"""Builds the vendor's own error response: (status, message, retry_after seconds)."""


class FaultSettings(BaseModel):
    latency_ms: float = Field(default=0, ge=0, description="added to every request")
    throttle_every: int = Field(default=0, ge=0, description="every Nth request gets 429 (0: off)")
    retry_after_s: float = Field(default=1, ge=0, description="Retry-After sent with a 429")
    fail_path: str | None = Field(default=None, description="regex of paths that fail")
    fail_status: int = Field(default=500, ge=400, le=599)
    fail_count: int = Field(default=0, ge=0, description="how many requests fail (then heal)")


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
            await self.app(scope, receive, send)
            return
        status, retry_after = refused
        message = "Too many requests" if status == 429 else "Injected failure"
        await self.error(status, message, retry_after)(scope, receive, send)
