"""The case page of each request: a Prefect markdown artifact under one key per request,
published again after the ledger writes about the request during a flow run, so the officer
sees where a case stands on the UI's Artifacts page. It belongs to the request, not to one
run: it is created without a flow run, so a run's Artifacts tab keeps showing that run's own
artifacts (the plan, the summary) rather than every version of the case page.

Within a run the page is published at most once per ``CASE_PAGE_EVERY_S`` per request: the
first write at once, later ones (read from the ledger when they happen) by a timer when due,
and the latest when the run ends. Each version is an API call, and a small request writes four
steps within half a second (issue 18); a step that waits (an approval, a manual answer) is on
the page within those seconds.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import threading
import time
from collections.abc import Iterator

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger
from prefect.settings import PREFECT_UI_URL

from dsrflow.case import Case, case_markdown, read_case
from dsrflow.ledger import Ledger, on_request_change

CASE_PAGE_EVERY_S = 2.0


def case_key(request_id: str) -> str:
    """The artifact key (Prefect allows lowercase letters, digits and dashes)."""
    return f"case-{request_id.lower()}"


def case_url(request_id: str) -> str | None:
    """Where the UI shows the latest version of the case page, if the UI's address is known."""
    ui = PREFECT_UI_URL.value()
    return f"{ui.rstrip('/')}/artifacts/key/{case_key(request_id)}" if ui else None


def publish_case_page(ledger: Ledger, request_id: str) -> None:
    """Publish the case as the ledger holds it now (a command outside a flow run)."""
    case = read_case(ledger, request_id)
    if case is not None:
        _publish(request_id, case)


def _publish(request_id: str, case: Case) -> None:
    try:
        with get_client(sync_client=True) as client:
            client.create_artifact(
                ArtifactCreate(
                    key=case_key(request_id),
                    type="markdown",
                    data=case_markdown(case),
                    description=f"{request_id}: the case, step by step",
                )
            )
    except Exception as exc:  # the ledger holds the truth; a page not updated is a warning
        _logger().warning("case page of %s not updated: %s", request_id, exc)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger inside a flow run; a command's own logger outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("dsrflow.case_page")


class _Throttled:
    """Publishes each request's case at most once per ``every_s``; what is not due yet waits
    for a timer or for ``flush``. Versions go out one at a time, each the latest read."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._lock = threading.Lock()  # guards the fields below
        self._publishing = threading.Lock()  # one version at a time, in order
        self._pending: dict[str, Case] = {}
        self._last: dict[str, float] = {}
        self._timer: threading.Timer | None = None

    def changed(self, ledger: Ledger, request_id: str) -> None:
        # Read now: by the time it is due the run may have closed its ledger.
        case = read_case(ledger, request_id)
        if case is None:
            return
        with self._lock:
            self._pending[request_id] = case
            wait = self._last.get(request_id, -math.inf) + self.every_s - time.monotonic()
            if wait > 0:
                if self._timer is None:  # the timer publishes whatever is pending then
                    self._timer = threading.Timer(wait, contextvars.copy_context().run, [self._due])
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._due()

    def _due(self) -> None:
        with self._publishing:
            with self._lock:
                due, self._pending, self._timer = self._pending, {}, None
                now = time.monotonic()
                self._last.update(dict.fromkeys(due, now))
            for request_id, case in due.items():
                _publish(request_id, case)

    def flush(self) -> None:
        """Publish what waits now; no timer is left running."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            timer.join()  # a version it is publishing goes out before the latest
        self._due()


@contextlib.contextmanager
def case_pages(every_s: float = CASE_PAGE_EVERY_S) -> Iterator[None]:
    """Within the block, ledger writes about a request republish its case page (at most once
    per ``every_s``); its latest state is published when the block ends."""
    pages = _Throttled(every_s)
    token = on_request_change.set(pages.changed)
    try:
        yield
    finally:
        on_request_change.reset(token)
        pages.flush()
