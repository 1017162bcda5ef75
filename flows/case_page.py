"""The case page of each request: a Prefect markdown artifact under one key per request,
published again after every ledger write about the request during a flow run, so the
officer sees where a case stands on the UI's Artifacts page. It belongs to the request, not
to one run: it is created without a flow run, so a run's Artifacts tab keeps showing that
run's own artifacts (the plan, the summary) rather than every version of the case page."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger
from prefect.settings import PREFECT_UI_URL

from dsrflow.case import case_markdown, read_case
from dsrflow.ledger import Ledger, on_request_change


def case_key(request_id: str) -> str:
    """The artifact key (Prefect allows lowercase letters, digits and dashes)."""
    return f"case-{request_id.lower()}"


def case_url(request_id: str) -> str | None:
    """Where the UI shows the latest version of the case page, if the UI's address is known."""
    ui = PREFECT_UI_URL.value()
    return f"{ui.rstrip('/')}/artifacts/key/{case_key(request_id)}" if ui else None


def publish_case_page(ledger: Ledger, request_id: str) -> None:
    case = read_case(ledger, request_id)
    if case is None:
        return
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


@contextlib.contextmanager
def case_pages() -> Iterator[None]:
    """Within the block, every ledger write about a request republishes its case page."""
    token = on_request_change.set(publish_case_page)
    try:
        yield
    finally:
        on_request_change.reset(token)
