"""The erasure request (GDPR Art. 17): plan, officer approval, execution, verification, receipt.

Nothing is changed before an officer approves the plan (in the Prefect UI, or ``--approve`` on
the command line); the request is complete only when discovering again finds nothing but the
records kept on purpose. See flows/changes.py for what every changing request shares.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow

from connectors import open_connector
from dsrflow.config import Config, load_config
from dsrflow.ledger import Ledger, Status
from dsrflow.mapping import BaseMapping
from dsrflow.plan import Action, PlannedAction
from dsrflow.planning import build_erasure_plan, plan_counts, record_ref
from dsrflow.receipt import build_receipt, write_receipt
from dsrflow.records import Record
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from flows.changes import (
    ChangeResult,
    IncompleteError,
    Planner,
    approved_plan,
    execute_plan,
    make_plan,
    obtain_approval,
    outcome_counts,
    plan_path,
    store_plan,
)
from flows.discovery import discover_everywhere
from flows.tasks import check_sources


def _erasure_planner(config: Config) -> Planner:
    """Plan with the mappings; a connector with a ``plan_erasure`` of its own plans its part."""

    def plan(records: list[Record], mappings: dict[str, BaseMapping]) -> list[PlannedAction]:
        today = dt.datetime.now(dt.UTC).date()
        actions: list[PlannedAction] = []
        for name in config.sources:
            mine = [r for r in records if r.source == name]
            connector = open_connector(
                name, config.sources[name], mappings[name], config.phone_region
            )
            try:
                own = getattr(connector, "plan_erasure", None)
                actions += (
                    own(mine, today)
                    if own
                    else build_erasure_plan(mine, {name: mappings[name]}, today)
                )
            finally:
                connector.close()
        return sorted(actions, key=lambda a: a.record_id)

    return plan


@flow(name="erasure-request", flow_run_name="{request_id}", persist_result=False)
def erasure_request(
    request_id: str,
    subject_emails: list[str],
    subject_phones: list[str] | None = None,
    received_at: dt.datetime | None = None,
    config_path: str | None = None,
    out_dir: str | None = None,
    dry_run: bool = False,
    approved_by: str | None = None,
    approval_timeout_hours: int = 72,
) -> ChangeResult:
    """Erase the subject's data everywhere, after the officer approves the plan.

    ``approved_by`` approves non-interactively (the command line's ``--approve``); without it
    the flow pauses and the officer approves or rejects with the Resume form of the run.
    """
    config = load_config(config_path)
    request = DataSubjectRequest(
        id=request_id,
        type=RequestType.ERASURE,
        subject=Subject.from_raw(subject_emails, subject_phones or [], None, config.phone_region),
        received_at=received_at or dt.datetime.now(dt.UTC),
    )
    directory = Path(out_dir) if out_dir else config.output_dir
    ledger = Ledger(config.ledger_url)
    ledger.open_request(request)
    try:
        return _erase(
            request, config, ledger, directory, dry_run, approved_by, approval_timeout_hours
        )
    except Exception as exc:
        ledger.set_status(request.id, Status.FAILED, error=type(exc).__name__)
        raise
    finally:
        ledger.close()


def _erase(
    request: DataSubjectRequest,
    config: Config,
    ledger: Ledger,
    directory: Path,
    dry_run: bool,
    approved_by: str | None,
    approval_timeout_hours: int,
) -> ChangeResult:
    mappings = check_sources(config)
    path = plan_path(directory, request.id)
    resumed = None if dry_run else approved_plan(ledger, path, request.id)
    if resumed:
        plan, digest, officer = resumed.plan, resumed.digest, resumed.officer
        ledger.record(request.id, "resumed", plan_sha256=digest)
    else:
        found = discover_everywhere(config, mappings, request.subject)
        request = request.model_copy(update={"subject": found.subject})
        plan = make_plan(request, found.records, mappings, _erasure_planner(config))
        digest = store_plan(request, plan, ledger, directory)
        if dry_run:
            ledger.record(request.id, "dry_run")
            return ChangeResult(request_id=request.id, status="dry_run", plan=plan_counts(plan))
        decision = obtain_approval(request, ledger, digest, approved_by, approval_timeout_hours)
        if not decision.approved:
            ledger.set_status(request.id, Status.REJECTED, actor=decision.officer)
            return ChangeResult(request_id=request.id, status="rejected", plan=plan_counts(plan))
        officer = decision.officer

    reports = execute_plan(request, config, mappings, plan, ledger)
    residue = _residue(request, config, mappings, plan)
    if residue or not all(r.complete for r in reports):
        ledger.record(request.id, "verification_failed", residue=len(residue))
        raise IncompleteError(
            f"{request.id} is not complete: {len(residue)} record(s) still found that the plan "
            f"did not keep ({', '.join(residue[:20])}); sources with actions not done: "
            f"{[r.source for r in reports if not r.complete]}. The request stays open."
        )
    receipt = build_receipt(request, config.controller, plan, reports, officer, digest)
    json_path, _ = write_receipt(receipt, path.parent)
    ledger.set_status(request.id, Status.COMPLETED, receipt=json_path.name)
    return ChangeResult(
        request_id=request.id,
        status="completed",
        plan=plan_counts(plan),
        executed={r.source: outcome_counts(r) for r in reports},
        receipt=str(json_path),
    )


def _residue(
    request: DataSubjectRequest,
    config: Config,
    mappings: dict[str, BaseMapping],
    plan: list[PlannedAction],
) -> list[str]:
    """Discover again: what is still found must be what the plan kept on purpose (a redacted
    record may still be reached through a link, but no longer by the subject's identifiers)."""
    planned = {a.record_id: a for a in plan}
    found = discover_everywhere(config, mappings, request.subject, label="verify")
    residue = []
    for record in found.records:
        action = planned.get(record.record_id)
        if (
            action is None
            or action.action == Action.DELETE
            or (action.action == Action.REDACT and record.matched)
        ):
            residue.append(record_ref(action) if action else f"{record.source}:{record.location}")
    return sorted(residue)
