"""Who may let a changing request go ahead, and how.

A run started from a deployment (the UI's run form, the API, a schedule) always pauses for the
officer's decision: the Resume form of the run (``Approval``), or ``dsr approve`` / ``dsr
reject``, which answer that form through Prefect's API. Approval given at the terminal
(``--approve``) is not a flow parameter, so nothing that starts a deployment can set it: the
command line says so for its own process with ``at_terminal``, a context that a worker's
process never has. A terminal run without ``--approve`` never waits for a form that nobody can
reach: it stops after the plan, leaving the request awaiting approval.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from dsrflow.config import ApprovalPolicy
from dsrflow.errors import DsrflowError
from dsrflow.ledger import Ledger, Status
from dsrflow.request import DataSubjectRequest


class Approval(RunInput):
    """The form the officer fills in the Prefect UI to resume a paused request."""

    approved: bool = Field(description="approve the plan shown in this run's artifacts")
    officer: str = Field(min_length=1, description="your name, as the ledger shall record it")
    note: str = Field(default="", description="why (kept in the ledger)")


@dataclass(frozen=True)
class Terminal:
    """A flow run in the process of a ``dsr`` command; ``approver`` is who gave --approve."""

    approver: str | None = None
    note: str = "--approve at the terminal"


_terminal: ContextVar[Terminal | None] = ContextVar("dsrflow_terminal", default=None)


@contextlib.contextmanager
def at_terminal(approver: str | None = None, note: str | None = None) -> Iterator[None]:
    """Flows run inside this block belong to the person at the terminal: approved by
    ``approver`` if given, else stopped after the plan (``dsr approve`` goes on later)."""
    token = _terminal.set(Terminal(approver, note or Terminal.note))
    try:
        yield
    finally:
        _terminal.reset(token)


def terminal() -> Terminal | None:
    """The terminal this flow runs for, if any (flows/manual.py asks: no form can reach it)."""
    return _terminal.get()


class FourEyesError(DsrflowError, ValueError):
    """The config asks for a second person and the approver is the one who opened it."""


def check_four_eyes(policy: ApprovalPolicy, ledger: Ledger, request_id: str, officer: str) -> None:
    opener = ledger.opened_by(request_id)
    if policy.four_eyes and officer.strip().casefold() == opener.strip().casefold():
        raise FourEyesError(
            f"{request_id} was opened by {opener}; approval.four_eyes in the config asks for "
            "another officer to approve it"
        )


def obtain_approval(
    request: DataSubjectRequest, ledger: Ledger, digest: str, policy: ApprovalPolicy
) -> Approval | None:
    """The officer's decision on the plan with SHA-256 ``digest``, recorded in the ledger;
    None when the run belongs to a terminal without --approve (the request stays awaiting)."""
    terminal = _terminal.get()
    if terminal is not None and terminal.approver is None:
        ledger.set_status(
            request.id, Status.AWAITING_APPROVAL, plan_sha256=digest, waiting="terminal"
        )
        return None
    if terminal is not None and terminal.approver is not None:
        decision = Approval(approved=True, officer=terminal.approver, note=terminal.note)
        check_four_eyes(policy, ledger, request.id, decision.officer)
    else:
        decision = _ask_in_the_ui(request, ledger, digest, policy)
    event = "approved" if decision.approved else "rejected"
    ledger.record(request.id, event, actor=decision.officer, plan_sha256=digest, note=decision.note)
    return decision


def _ask_in_the_ui(
    request: DataSubjectRequest, ledger: Ledger, digest: str, policy: ApprovalPolicy
) -> Approval:
    """Pause until the officer answers; an approval the four-eyes rule refuses is logged and
    the run pauses again for another officer."""
    from prefect import get_run_logger
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else None
    ledger.set_status(
        request.id, Status.AWAITING_APPROVAL, plan_sha256=digest, waiting="prefect", flow_run=run_id
    )
    while True:
        # Polls the API every 2 s: the officer sees the run continue right after Resume.
        decision = pause_flow_run(
            wait_for_input=Approval, timeout=policy.timeout_hours * 3600, poll_interval=2
        )
        if not decision.approved:
            return decision
        try:
            check_four_eyes(policy, ledger, request.id, decision.officer)
        except FourEyesError as exc:
            ledger.record(request.id, "approval_refused", actor=decision.officer, why="four_eyes")
            get_run_logger().warning("%s; waiting again", exc)
            continue
        return decision
