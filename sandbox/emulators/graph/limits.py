"""Exchange Online's limits on Graph mail requests, per app and mailbox, as the emulator applies
them.

Microsoft Graph service-specific throttling limits, Outlook service limits
(https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits): "Outlook
service limits are evaluated for each app ID and mailbox combination": 10,000 API requests in a
10-minute period and 4 concurrent requests. Over either, Exchange answers 429 with Retry-After
and Graph's error body, code ``ApplicationThrottled``, message "Application is over its
MailboxConcurrency limit." / "... RequestRate limit." (the messages as Graph clients report
them; the reference names the limits, not the texts). A MailboxConcurrency 429 is not a clock:
"Retry-After: 1" there means "after one of your requests to that mailbox has finished".

JSON batching: "Microsoft Graph dispatches up to four individual requests from a batch to the
Outlook service simultaneously" (Microsoft's answer on Q&A 1660054); each item counts against
its mailbox's limits like a request of its own. The emulator runs a batch's items one after
another, so an item is refused only when requests outside the batch hold the mailbox's four
slots. Unsure: some reports say a batch's fifth item to one mailbox is refused by itself; the
connector keeps to one item per mailbox per batch for reads, where that would matter.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from pydantic import BaseModel, Field

CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."
RATE_MESSAGE = "Application is over its RequestRate limit."


class GraphLimits(BaseModel):
    """Exchange's per-mailbox limits (Graph's documented figures by default; 0 turns one off)."""

    mailbox_concurrency: int = Field(
        default=4, ge=0, description="requests in flight per mailbox (0: unlimited)"
    )
    mailbox_requests: int = Field(
        default=10_000, ge=0, description="requests per mailbox in each window (0: unlimited)"
    )
    window_s: float = Field(default=600, gt=0, description="the request-rate window, seconds")


class MailboxLimits:
    """In-flight counts and recent requests per mailbox; thread-safe."""

    def __init__(
        self, settings: GraphLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or GraphLimits()
        self.clock = clock
        self.in_flight: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # "MailboxConcurrency" / "RequestRate"
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def configure(self, settings: GraphLimits) -> None:
        with self._lock:
            self.settings = settings
            self._recent.clear()

    def enter(self, mailbox: str) -> tuple[str, float] | None:
        """Take a slot for a request to ``mailbox``: None if admitted (``leave`` it after), else
        (the limit's message, Retry-After seconds)."""
        s = self.settings
        key = mailbox.lower()
        with self._lock:
            if s.mailbox_concurrency and self.in_flight[key] >= s.mailbox_concurrency:
                self.refused["MailboxConcurrency"] += 1
                return CONCURRENCY_MESSAGE, 1
            if s.mailbox_requests:
                now = self.clock()
                recent = self._recent.setdefault(key, deque())
                while recent and now - recent[0] >= s.window_s:
                    recent.popleft()
                if len(recent) >= s.mailbox_requests:
                    self.refused["RequestRate"] += 1
                    return RATE_MESSAGE, max(1.0, s.window_s - (now - recent[0]))
                recent.append(now)
            self.in_flight[key] += 1
            return None

    def leave(self, mailbox: str) -> None:
        with self._lock:
            self.in_flight[mailbox.lower()] -= 1
