"""The vendors' per-minute quotas, as Google documents them, for the Drive + Sheets emulator.

Sheets v4 ("Usage limits", https://developers.google.com/sheets/api/limits, read 2026-12-06):
read requests 300 per minute per project and 60 per minute per user per project; write
requests the same, counted apart. Over a quota the request is refused with 429
RESOURCE_EXHAUSTED, "you should use an exponential backoff algorithm. After 1 minute, you can
execute requests again". A read is any method that retrieves data from a spreadsheet
(``spreadsheets.get``, ``values.get``, ``values.batchGet``).

Drive v3 ("Usage limits", https://developers.google.com/drive/api/guides/limits, the model in
force since May 2026): quota units, 1,000,000 per minute per project and 325,000 per minute per
user per project; over a quota, 403 ``userRateLimitExceeded`` (the per-user limit) or
``rateLimitExceeded`` (the project's). The page does not say here how many units each method
costs: ``drive_units_per_request`` is 1 unless set (unsure; under the older model, which counted
queries, the limits were 12,000 queries per minute per project and per user). Either way a
Drive listing or export of a few hundred spreadsheets stays far below them.

A batch counts each call in it (Drive's batch guide: "each inner request counts"). The user is
the one a token acts for (with domain-wide delegation, the impersonated user); the emulator is
one Cloud project, so every token shares the project's quota.

The windows are real minutes, sliding: a request counts against the 60 s before it. Google
refills "every minute"; a sliding window is never kinder than that. The emulator's default is
no quota at all (``GoogleQuotas()``): the sandbox and most tests need speed; the benchmarks
switch ``GoogleQuotas.documented()`` on by default, and ``POST /_emulator/quota`` sets any of
them at run time.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

WINDOW_S = 60.0


@dataclass
class GoogleQuotas:
    """Per-minute limits; 0 turns one off."""

    sheets_reads_per_minute_per_user: int = 0
    sheets_reads_per_minute: int = 0
    sheets_writes_per_minute_per_user: int = 0
    sheets_writes_per_minute: int = 0
    drive_units_per_minute_per_user: int = 0
    drive_units_per_minute: int = 0
    drive_units_per_request: int = 1

    @classmethod
    def documented(cls) -> GoogleQuotas:
        """The numbers of the two usage-limits pages cited above."""
        return cls(
            sheets_reads_per_minute_per_user=60,
            sheets_reads_per_minute=300,
            sheets_writes_per_minute_per_user=60,
            sheets_writes_per_minute=300,
            drive_units_per_minute_per_user=325_000,
            drive_units_per_minute=1_000_000,
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def updated(self, changes: dict[str, object]) -> GoogleQuotas:
        """A copy with ``changes`` (names of this class's fields, integers >= 0) applied."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown quota {unknown[0]!r}; known: {', '.join(sorted(known))}")
        values = self.as_dict()
        for name, value in changes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"quota {name!r} must be a whole number >= 0")
            values[name] = value
        return GoogleQuotas(**values)


@dataclass(frozen=True)
class Exceeded:
    """Which limit a refused request ran into: ``per_user`` or the project's."""

    per_user: bool
    limit: int


class QuotaMeter:
    """Sliding one-minute windows of spent units, per key (``sheets-read:user``, ...)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)

    def _used(self, key: str, now: float) -> int:
        spent = self._spent[key]
        while spent and spent[0][0] <= now - WINDOW_S:
            spent.popleft()
        return sum(units for _, units in spent)

    def take(
        self, kind: str, user: str, per_user: int, per_project: int, units: int = 1
    ) -> Exceeded | None:
        """Spend ``units`` of ``kind`` for ``user`` if both windows have room; else spend
        nothing and say which limit is full (the user's is checked first, as Google names it
        in the refusal)."""
        with self._lock:
            now = self._clock()
            user_key, project_key = f"{kind}:{user.lower()}", f"{kind}:*"
            if per_user and self._used(user_key, now) + units > per_user:
                return Exceeded(per_user=True, limit=per_user)
            if per_project and self._used(project_key, now) + units > per_project:
                return Exceeded(per_user=False, limit=per_project)
            if per_user:
                self._spent[user_key].append((now, units))
            if per_project:
                self._spent[project_key].append((now, units))
            return None

    def reset(self) -> None:
        with self._lock:
            self._spent.clear()
