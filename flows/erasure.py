"""The erasure request (GDPR Art. 17): plan, officer approval, execution, verification, receipt.

Safety before speed: nothing is changed before an officer approves the plan (or the command
line is given ``--approve``); every action is idempotent; the approved plan is kept, so running
the same request again after a crash finishes the job without planning anew; and the request is
complete only when discovering again finds nothing but the records kept on purpose.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel

from connectors import ErasingConnector, open_connector
from dsrflow.config import Config, load_config
from dsrflow.export import write_private
from dsrflow.ledger import Ledger, Status
from dsrflow.mapping import BaseMapping
from dsrflow.plan import Action, ExecutionReport, Outcome, PlannedAction
from dsrflow.planning import build_erasure_plan, plan_counts, plan_table, record_ref
from dsrflow.receipt import build_receipt, plan_digest, write_receipt
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from flows.discovery import discover_everywhere
from flows.tasks import PRIVATE, check_sources


class ErasureApproval(RunInput):
    """The form the officer fills in the Prefect UI to resume a paused erasure."""

    approved: bool
    officer: str
    note: str = ""


class ErasureResult(BaseModel):
    request_id: str
    status: str
    plan: dict[str, int]
    executed: dict[str, dict[str, int]] = {}
    residue: list[str] = []
    receipt: str | None = None


class ResidueError(RuntimeError):
    """Discovery after erasure found records the plan did not mean to keep."""


@task(name="plan-erasure", **PRIVATE)
def plan_erasure(
    request: DataSubjectRequest, records: list, mappings: dict[str, BaseMapping]
) -> list[PlannedAction]:
    plan = build_erasure_plan(records, mappings, dt.datetime.now(dt.UTC).date())
    key = f"erasure-plan-{request.id.lower()}"
    create_table_artifact(key=key, table=plan_table(plan), description=f"{request.id}: plan")
    counts = plan_counts(plan)
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=(
            f"### Erasure plan for {request.id}\n\n"
            f"- subject: {', '.join(request.subject.masked())}\n"
            + "".join(f"- {action}: {n}\n" for action, n in counts.items())
            + "\nApprove or reject with the Resume button of this flow run."
        ),
        description=f"{request.id}: plan summary",
    )
    get_run_logger().info("plan: %s", counts)
    return plan


@task(name="execute-erasure", **PRIVATE)
def execute_erasure(
    name: str, config: Config, mapping: BaseMapping, actions: list[PlannedAction]
) -> ExecutionReport:
    connector = open_connector(name, config.sources[name], mapping, config.phone_region)
    try:
        if not isinstance(connector, ErasingConnector):
            raise RuntimeError(f"source {name!r} cannot erase yet; its actions stay open")
        report = connector.erase(actions)
    finally:
        connector.close()
    get_run_logger().info("%s: %s", name, outcome_counts(report))
    return report


def outcome_counts(report: ExecutionReport) -> dict[str, int]:
    return {outcome.value: report.count(outcome) for outcome in Outcome}


def _plan_path(out_dir: Path, request_id: str) -> Path:
    return out_dir / request_id / "plan.json"


def _approved_plan(
    ledger: Ledger, path: Path, request_id: str
) -> tuple[list[PlannedAction], str] | None:
    """The plan approved earlier for this request, if its file is intact: resume with it."""
    approvals = [e for e in ledger.entries(request_id) if e.event == "approved"]
    if not approvals or not path.exists():
        return None
    plan = [PlannedAction.model_validate(a) for a in json.loads(path.read_text("utf-8"))]
    digest = plan_digest(plan)
    if digest != approvals[-1].details.get("plan_sha256"):
        raise RuntimeError(f"{path} differs from the plan that was approved; refusing to resume")
    return plan, approvals[-1].actor


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
) -> ErasureResult:
    """Erase the subject's data everywhere, after the officer approves the plan.

    ``approved_by`` approves non-interactively (the command line's ``--approve``); without it
    the flow pauses and the officer approves or rejects in the Prefect UI.
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
) -> ErasureResult:
    logger = get_run_logger()
    mappings = check_sources(config)
    path = _plan_path(directory, request.id)
    resumed = None if dry_run else _approved_plan(ledger, path, request.id)
    if resumed:
        plan, officer = resumed
        digest = plan_digest(plan)
        logger.info("resuming the approved plan of %d action(s)", len(plan))
        ledger.record(request.id, "resumed", plan_sha256=digest)
    else:
        found = discover_everywhere(config, mappings, request.subject)
        request = request.model_copy(update={"subject": found.subject})
        plan = plan_erasure(request, found.records, mappings)
        digest = plan_digest(plan)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, json.dumps([a.model_dump(mode="json") for a in plan]).encode())
        ledger.record(request.id, "planned", plan_sha256=digest, **plan_counts(plan))
        if dry_run:
            ledger.record(request.id, "dry_run")
            return ErasureResult(request_id=request.id, status="dry_run", plan=plan_counts(plan))
        if approved_by:
            decision = ErasureApproval(approved=True, officer=approved_by, note="--approve")
        else:
            ledger.set_status(request.id, Status.AWAITING_APPROVAL, plan_sha256=digest)
            decision = pause_flow_run(
                wait_for_input=ErasureApproval, timeout=approval_timeout_hours * 3600
            )
        if not decision.approved:
            ledger.set_status(
                request.id, Status.REJECTED, actor=decision.officer, note=decision.note
            )
            return ErasureResult(request_id=request.id, status="rejected", plan=plan_counts(plan))
        officer = decision.officer
        ledger.record(request.id, "approved", actor=officer, plan_sha256=digest)

    ledger.set_status(request.id, Status.IN_PROGRESS)
    reports = []
    for name in config.sources:
        actions = [a for a in plan if a.source == name]
        if not any(a.action in (Action.DELETE, Action.REDACT) for a in actions):
            continue
        report = execute_erasure.with_options(task_run_name=f"erase-{name}")(
            name, config, mappings[name], actions
        )
        ledger.record(request.id, "executed", source=name, **outcome_counts(report))
        reports.append(report)

    residue = _verify(request, config, mappings, plan)
    executed = {r.source: outcome_counts(r) for r in reports}
    if residue or not all(r.complete for r in reports):
        ledger.record(request.id, "verification_failed", residue=len(residue))
        raise ResidueError(
            f"{request.id} is not complete: {len(residue)} record(s) still found that the plan "
            f"did not keep ({', '.join(residue[:20])}); actions not done: "
            f"{sum(not r.complete for r in reports)} source(s). The request stays open."
        )
    receipt = build_receipt(request, config.controller, plan, reports, officer, digest)
    json_path, _ = write_receipt(receipt, path.parent)
    ledger.set_status(request.id, Status.COMPLETED, receipt=json_path.name)
    return ErasureResult(
        request_id=request.id,
        status="completed",
        plan=plan_counts(plan),
        executed=executed,
        receipt=str(json_path),
    )


def _verify(
    request: DataSubjectRequest,
    config: Config,
    mappings: dict[str, BaseMapping],
    plan: list[PlannedAction],
) -> list[str]:
    """Discover again: what is still found must be what the plan kept or redacted on purpose."""
    kept = {a.record_id for a in plan if a.action != Action.DELETE}
    found = discover_everywhere(config, mappings, request.subject, label="verify")
    planned = {a.record_id: a for a in plan}
    residue = []
    for record in found.records:
        action = planned.get(record.record_id)
        if record.record_id not in kept or (
            action and action.action == Action.REDACT and record.matched
        ):
            residue.append(record_ref(action) if action else f"{record.source}:{record.location}")
    return sorted(residue)
