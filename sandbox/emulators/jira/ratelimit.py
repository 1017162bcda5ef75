"""Jira Cloud's rate limiting, modelled simply: a burst limit per endpoint and a cost budget.

What Atlassian documents (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/):
any REST route may answer ``429 Too Many Requests`` with ``Retry-After`` (seconds to wait; a
request sent earlier fails again) and ``X-RateLimit-Reset`` (when it resets, ISO 8601
``yyyy-MM-ddTHH:mmZ``); answers carry ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``,
``X-RateLimit-NearLimit: true`` when less than 20% of a budget remains, and a refused request
``RateLimit-Reason`` naming the limit (``jira-burst-based``: the per-second limit of one
endpoint and HTTP method, a token bucket per tenant; ``jira-cost-based``: the cost budget, where
"each request starts with a base cost of 1 point, and additional points are added for each
object involved. Write requests are charged only the base cost"). API-token traffic (what
dsrflow sends) is governed by the burst limits; the points-based hourly quotas apply to Forge,
Connect and OAuth 2.0 apps.

Simplified here: Atlassian publishes no figures for either limit (the defaults below are the
emulator's, not Jira's); one tenant, one budget (no per-user or per-app split); an object is an
item of the answer's list (issues of a search page, values of a service desk list, users of a
user search, comments of a comment page), charged after the answer is built, so one request may
overdraw the budget (the next waits the longer); the per-issue write limit is not modelled.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NEAR_LIMIT = 0.2  # X-RateLimit-NearLimit: "less than 20% of any budget remains"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LISTS = ("issues", "values", "comments")  # where an answer's objects are


class JiraRateLimit(BaseModel):
    """The emulator's rate limits (off by default: tests that are not about them stay fast)."""

    enabled: bool = Field(default=False, description="answer 429 when a budget is spent")
    burst_capacity: float = Field(
        default=100, gt=0, description="requests one endpoint and method may make at once"
    )
    burst_per_s: float = Field(
        default=10, gt=0, description="requests per second that endpoint's bucket refills"
    )
    cost_capacity: float = Field(
        default=1000, gt=0, description="points of the cost budget (1 per request + 1 per object)"
    )
    cost_per_s: float = Field(default=50, gt=0, description="points per second the budget refills")


@dataclass
class _Bucket:
    """A token bucket: ``level`` tokens of ``capacity``, refilled at ``rate`` per second."""

    capacity: float
    rate: float
    level: float
    at: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now

    def wait_for(self, tokens: float) -> float:
        """Seconds until ``tokens`` are there (0: now)."""
        return max(0.0, (tokens - self.level) / self.rate)


class RateLimiter:
    """The buckets of one emulator; ``settings`` may be replaced at run time."""

    def __init__(
        self, settings: JiraRateLimit | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or JiraRateLimit()
        self.clock = clock
        self._lock = threading.Lock()
        self._burst: dict[str, _Bucket] = {}
        self._cost: _Bucket | None = None
        self.refused: dict[str, int] = {}  # RateLimit-Reason -> 429s answered

    def configure(self, settings: JiraRateLimit) -> None:
        with self._lock:
            self.settings = settings
            self._burst.clear()
            self._cost = None

    def _cost_bucket(self, now: float) -> _Bucket:
        s = self.settings
        if self._cost is None:
            self._cost = _Bucket(s.cost_capacity, s.cost_per_s, s.cost_capacity, now)
        self._cost.refill(now)
        return self._cost

    def admit(self, endpoint: str) -> tuple[str, float] | None:
        """None to serve a request to ``endpoint`` ("GET issue/{key}"), else (reason, seconds
        to wait). A served request takes its burst token and the base point of its cost."""
        s = self.settings
        with self._lock:
            now = self.clock()
            burst = self._burst.get(endpoint)
            if burst is None:
                burst = _Bucket(s.burst_capacity, s.burst_per_s, s.burst_capacity, now)
                self._burst[endpoint] = burst
            burst.refill(now)
            cost = self._cost_bucket(now)
            if burst.level < 1:
                return self._refuse("jira-burst-based", burst.wait_for(1))
            if cost.level < 1:
                return self._refuse("jira-cost-based", cost.wait_for(1))
            burst.level -= 1
            cost.level -= 1
            return None

    def _refuse(self, reason: str, wait: float) -> tuple[str, float]:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        return reason, wait

    def charge(self, objects: int) -> None:
        """The objects of an answer, one point each (after the base point of ``admit``)."""
        with self._lock:
            self._cost_bucket(self.clock()).level -= objects

    def remaining(self) -> tuple[float, float]:
        """(capacity, points left) of the cost budget, for the X-RateLimit-* headers."""
        with self._lock:
            cost = self._cost_bucket(self.clock())
            return cost.capacity, max(0.0, cost.level)


def objects_in(body: bytes) -> int:
    """The objects of a JSON answer: the items of its list (a bare list, or the ``issues``,
    ``values`` or ``comments`` of a page); 0 for anything else."""
    try:
        value = json.loads(body)
    except ValueError:
        return 0
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        for name in _LISTS:
            if isinstance(value.get(name), list):
                return len(value[name])
    return 0


def _reset_at(wait: float) -> str:
    """X-RateLimit-Reset: the request's time plus Retry-After, as ``yyyy-MM-ddTHH:mmZ``."""
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
    return moment.strftime("%Y-%m-%dT%H:%MZ")


class RateLimitGate:
    """ASGI middleware applying a ``RateLimiter`` to every REST route (not ``/_emulator/``)."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, route_of: Callable[[Request], str]
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not self.limiter.settings.enabled
            or not path.startswith("/rest/")
        ):
            await self.app(scope, receive, send)
            return
        refused = self.limiter.admit(self.route_of(Request(scope)))
        if refused is not None:
            reason, wait = refused
            seconds = max(1, math.ceil(wait))  # whole seconds, never early (RFC 9110)
            capacity, left = self.limiter.remaining()
            answer = JSONResponse(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                429,
                headers={
                    "Retry-After": str(seconds),
                    "X-RateLimit-Reset": _reset_at(seconds),
                    "RateLimit-Reason": reason,
                    "X-RateLimit-Limit": str(int(capacity)),
                    "X-RateLimit-Remaining": str(int(left)),
                },
            )
            await answer(scope, receive, send)
            return
        write = scope.get("method", "GET") in WRITES
        chunks: list[bytes] = []
        start: Message | None = None

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        if start is None:
            return
        body = b"".join(chunks)
        if not write:  # "Write requests are charged only the base cost"
            self.limiter.charge(objects_in(body))
        capacity, left = self.limiter.remaining()
        headers = MutableHeaders(scope=start)
        headers["X-RateLimit-Limit"] = str(int(capacity))
        headers["X-RateLimit-Remaining"] = str(int(left))
        if left < NEAR_LIMIT * capacity:
            headers["X-RateLimit-NearLimit"] = "true"
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})
