"""The officer's decision on a request that waits for approval, given after the fact.

A request planned at a terminal without ``--approve`` waits in the ledger: ``dsr approve``
records the approval of exactly the plan that was shown and runs ``approved_request``, which
resumes that plan (flows/changes.py). A request paused in a Prefect run (started from a
deployment) is answered through Prefect's resume API, as the run's Resume form does; the run
then records the decision itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect import flow

from dsrflow.config import Config
from dsrflow.ledger import Ledger, Status, UnknownRequest
from dsrflow.request import RequestType
from dsrflow.run_settings import current_run_settings
from flows.approval import Approval, check_four_eyes
from flows.changes import ChangeResult, Verifier, approved_plan, plan_path, run_change
from flows.erasure import erasure_residue
from flows.other_rights import deleted_residue
from flows.private import private_run

VERIFIERS: dict[RequestType, Verifier | None] = {
    RequestType.ERASURE: erasure_residue,
    RequestType.CONSENT_WITHDRAWAL: deleted_residue,
    RequestType.RECTIFICATION: None,  # each connector reads its changes back
}


@dataclass(frozen=True)
class Waiting:
    """Where a request waits for the officer: at a terminal, or in a paused Prefect run."""

    plan_sha256: str
    where: str
    flow_run: str | None = None


def waiting(ledger: Ledger, request_id: str) -> Waiting:
    """The request's wait for approval, as the ledger last recorded it."""
    last = ledger.waiting_entry(request_id, Status.AWAITING_APPROVAL, "approval")
    return Waiting(
        plan_sha256=last.details["plan_sha256"],
        where=last.details.get("waiting", "prefect"),
        flow_run=last.details.get("flow_run"),
    )


def resume_paused(flow_run_id: str, decision: Approval) -> None:
    """Answer a paused run's Resume form through Prefect's API."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(UUID(flow_run_id), run_input=decision.model_dump())


def record_decision(config: Config, request_id: str, decision: Approval) -> Waiting:
    """For a request waiting at a terminal: check and record the decision in the ledger (a
    rejection closes the request). Returns the wait that was answered."""
    with Ledger.from_config(config) as ledger:
        wait = waiting(ledger, request_id)
        if wait.where != "terminal":
            return wait
        if decision.approved:
            check_four_eyes(config.approval, ledger, request_id, decision.officer)
            event = "approved"
        else:
            event = "rejected"
        ledger.record(
            request_id,
            event,
            actor=decision.officer,
            plan_sha256=wait.plan_sha256,
            note=decision.note,
        )
        if not decision.approved:
            ledger.close_request(
                request_id, Status.REJECTED, decision.officer, reason=decision.note or "rejected"
            )
        return wait


@flow(name="approved-request", flow_run_name="{request_id}", persist_result=False)
@private_run
def approved_request(request_id: str) -> ChangeResult:
    """Carry out the plan an officer approved with ``dsr approve``; verify; receipt.

    Args:
        request_id: The id of the request whose approved plan is carried out, e.g.
            DSR-2026-0001.
    """
    settings = current_run_settings()
    config = settings.config()
    directory = settings.output_dir(config)
    with Ledger.from_config(config) as ledger:
        request = ledger.request(request_id)
        if request is None:
            raise UnknownRequest(f"no request {request_id} in the ledger")
        if approved_plan(ledger, plan_path(directory, request_id), request_id) is None:
            raise UnknownRequest(
                f"{request_id} has no approved plan in {directory}; give --out where it was planned"
            )
    return run_change(
        request,
        config,
        directory,
        lambda _records, _mappings, _subject: [],  # never called: the approved plan is resumed
        VERIFIERS[request.type],
        gated=True,
        dry_run=False,
    )
