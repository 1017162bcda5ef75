"""The machinery every request that changes data shares (erasure, rectification, consent
withdrawal): a plan, stored owner-only; officer approval; execution, source by source and
idempotently; verification; progress in the ledger at every step.

The approved plan is kept with its SHA-256 in the ledger, so running the same request again
after a crash resumes that plan instead of planning anew: actions already done answer
``already_done`` and nothing outside the plan is touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from connectors import (
    Capability,
    Connector,
    Erasing,
    Rectifying,
    Restricting,
    SourceContext,
    open_connector,
)
from dsrflow.config import Config
from dsrflow.copies import Removed, earlier_copies
from dsrflow.copies import remove as remove_copies
from dsrflow.errors import DsrflowError
from dsrflow.export import write_private
from dsrflow.identity import require_verified
from dsrflow.ledger import HELD_FOR, Ledger, Status
from dsrflow.manual import shown
from dsrflow.mapping import BaseMapping
from dsrflow.mapping.common import DeleteOnly
from dsrflow.merge import fold_records
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
from dsrflow.planning import plan_counts, plan_notices, plan_table, recordless_deletions
from dsrflow.receipt import build_receipt, plan_digest, write_receipt
from dsrflow.records import Record
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from flows.approval import obtain_approval
from flows.discovery import discover_everywhere
from flows.manual import open_sources, settle_manual_tasks
from flows.restriction import Restricted, restricted_in, restricted_subjects, spare_restricted
from flows.tasks import check_sources, restriction_notice

# Which right carries out which actions (connectors/base.py: one protocol per right).
RIGHTS: dict[Action, Capability] = {
    Action.DELETE: Capability.ERASE,
    Action.REDACT: Capability.ERASE,
    Action.RECTIFY: Capability.RECTIFY,
    Action.RESTRICT: Capability.RESTRICT,
}


class ChangeResult(BaseModel):
    """What a changing flow returns: counts and paths, no personal data."""

    request_id: str
    status: str
    plan: dict[str, int]
    executed: dict[str, dict[str, int]] = Field(default_factory=dict)
    remains: dict[str, int] = Field(
        default_factory=dict,
        description="per source, how many done actions left something at the vendor (a mail "
        "in Recoverable Items, an issue's history, an account): the receipt says each, and the "
        "step that finishes it",
    )
    receipt: str | None = None
    awaiting: list[str] = Field(
        default_factory=list, description="manual sources still to answer (awaiting_manual)"
    )


class IncompleteError(DsrflowError, RuntimeError):
    """Execution or verification left something undone; the request stays open."""


# records, mappings, and the subject as discovery found them (with the identifiers found on
# the way): sources without records (connectors/base.py: delete-only) plan from the subject.
Planner = Callable[[list[Record], dict[str, BaseMapping], Subject], list[PlannedAction]]
Verifier = Callable[
    [DataSubjectRequest, Config, dict[str, BaseMapping], list[PlannedAction]], list[str]
]


@dataclass(frozen=True)
class Approved:
    plan: list[PlannedAction]
    digest: str
    officer: str


def after_hold(action: PlannedAction, subject: Subject | None = None) -> PlannedAction | None:
    """The action a kept record is due when its legal hold ends (queued in the ledger), in
    every kind: what its mapping planned for that day (dsrflow/planning.py), due on
    ``keep_until``; the sweep hands it over then (connectors/base.py ``hold_checked_on``).
    ``subject``: what a kind's erasure needs of them then (``subject_at_hold_end``)."""
    after = action.hints.get("after_hold")
    if action.action != Action.KEEP or not after or action.keep_until is None:
        return None
    if after["action"] == Action.KEEP:
        return None  # kept for another reason too (shared with others): stays as it is
    hints = dict(after.get("hints", {}))
    if subject is not None:
        hints[HELD_FOR] = subject.model_dump(mode="json")
    return action.model_copy(
        update={
            "action": Action(after["action"]),
            "fields": after.get("fields", {}),
            "reason": f"legal hold ended ({action.reason})",
            "hints": hints,
        }
    )


def outcome_counts(report: ExecutionReport) -> dict[str, int]:
    return {outcome.value: report.count(outcome) for outcome in Outcome}


def remains_count(report: ExecutionReport) -> int:
    return sum(r.remains is not None for r in report.results)


def plan_path(directory: Path, request_id: str) -> Path:
    return directory / request_id / "plan.json"


def approved_plan(ledger: Ledger, path: Path, request_id: str) -> Approved | None:
    """The plan approved earlier for this request, if its file is intact: resume with it."""
    approvals = [e for e in ledger.entries(request_id) if e.event == "approved"]
    if not approvals or not path.exists():
        return None
    plan = [PlannedAction.model_validate(a) for a in json.loads(path.read_text("utf-8"))]
    digest = plan_digest(plan)
    if digest != approvals[-1].details.get("plan_sha256"):
        raise IncompleteError(f"{path} differs from the plan that was approved; refusing to resume")
    return Approved(plan=plan, digest=digest, officer=approvals[-1].actor)


@task(name="plan", persist_result=False, cache_policy=NO_CACHE)
def make_plan(
    request: DataSubjectRequest,
    records: list[Record],
    mappings: dict[str, BaseMapping],
    planner: Planner,
    notice: str | None = None,
    subject: Subject | None = None,
) -> list[PlannedAction]:
    """Plan, and show the plan to the officer: record references and reasons, no values;
    ``notice`` is something the officer must know before approving; ``subject``: as
    discovery found it (default: the request's)."""
    folded = fold_records(records)
    plan = planner(folded, mappings, subject or request.subject)
    shared = {r.record_id for r in folded if r.shared}
    key = f"{request.type.value.replace('_', '-')}-plan-{request.id.lower()}"
    create_table_artifact(
        key=key, table=plan_table(plan, shared), description=f"{request.id}: plan"
    )
    counts = plan_counts(plan)
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=(
            f"### {request.type.value} plan for {request.id}\n\n"
            f"- subject: {', '.join(request.subject.masked())}\n"
            + (f"\n**Note:** {notice}.\n\n" if notice else "")
            + "".join(f"- **{line}**\n" for line in plan_notices(plan, shared))
            + "".join(f"- {action}: {n}\n" for action, n in counts.items())
            + "\nApprove or reject with the Resume button of this flow run."
        ),
        description=f"{request.id}: plan summary",
    )
    get_run_logger().info("plan: %s", counts)
    return plan


def store_plan(
    request: DataSubjectRequest, plan: list[PlannedAction], ledger: Ledger, directory: Path
) -> str:
    path = plan_path(directory, request.id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, json.dumps([a.model_dump(mode="json") for a in plan]).encode("utf-8"))
    digest = plan_digest(plan)
    counts: dict[str, Any] = plan_counts(plan)  # one per action, in the entry's details
    ledger.record(request.id, "planned", plan_sha256=digest, **counts)
    return digest


@task(name="execute", persist_result=False, cache_policy=NO_CACHE)
def execute_actions(
    name: str,
    config: Config,
    mapping: BaseMapping,
    actions: list[PlannedAction],
    subject: Subject,
) -> ExecutionReport:
    """Hand a source its actions, right by right; a source that cannot do one fails it."""
    report = ExecutionReport(source=name)
    with open_connector(name, config.sources[name], mapping, SourceContext.of(config)) as connector:
        for right in (Capability.ERASE, Capability.RECTIFY, Capability.RESTRICT):
            batch = [a for a in actions if RIGHTS.get(a.action) is right]
            if batch:
                report.results += carry_out(connector, right, batch, subject)
    get_run_logger().info("%s: %s", name, outcome_counts(report))
    return report


def carry_out(
    connector: Connector, right: Capability, batch: list[PlannedAction], subject: Subject
) -> list[ActionResult]:
    """The connector's method for ``right``. A source without one: a restriction is held by
    the ledger's restriction list; anything else fails, so the request is not complete."""
    if right is Capability.ERASE and isinstance(connector, Erasing):
        return connector.erase(batch, subject).results
    if right is Capability.RECTIFY and isinstance(connector, Rectifying):
        return connector.rectify(batch, subject).results
    if right is Capability.RESTRICT and isinstance(connector, Restricting):
        return connector.restrict(batch, subject).results
    if right is Capability.RESTRICT:
        outcome, detail = Outcome.DONE, "restricted in the ledger only"
    else:
        outcome, detail = Outcome.FAILED, f"cannot {right.value}"
    return [ActionResult(record_id=a.record_id, outcome=outcome, detail=detail) for a in batch]


def execute_plan(
    request: DataSubjectRequest,
    config: Config,
    mappings: dict[str, BaseMapping],
    plan: list[PlannedAction],
    ledger: Ledger,
    interrupted: bool = False,
    subject: Subject | None = None,
) -> list[ExecutionReport]:
    """``interrupted``: this resumes an execution of the same approved plan that was cut
    off; what it finds gone is credited to this request (``credit_interrupted``).
    ``subject``: the one the plan was made for (default: the request's)."""
    ledger.set_status(request.id, Status.IN_PROGRESS)
    reports = []
    for name in config.sources:
        actions = [a for a in plan if a.source == name and a.action in RIGHTS]
        if not actions:
            continue
        report = execute_actions.with_options(task_run_name=f"execute-{name}")(
            name, config, mappings[name], actions, subject or request.subject
        )
        if interrupted:
            report = credit_interrupted(report)
        counts: dict[str, Any] = {**outcome_counts(report), "remains": remains_count(report)}
        ledger.record(request.id, "executed", source=name, **counts)
        reports.append(report)
    return reports


def credit_interrupted(report: ExecutionReport) -> ExecutionReport:
    """A resumed execution finds gone what its interrupted first attempt already did: that is
    this request's work, so the receipt counts it as done (saying how it was found), not as
    ``already_done`` by someone else."""
    return report.model_copy(
        update={
            "results": [
                r.model_copy(
                    update={
                        "outcome": Outcome.DONE,
                        "detail": "gone when the request resumed after an interrupted "
                        "execution: counted as this request's",
                    }
                )
                if r.outcome is Outcome.ALREADY_DONE
                else r
                for r in report.results
            ]
        }
    )


def sparing(
    planner: Planner,
    config: Config,
    mappings: dict[str, BaseMapping],
    ledger: Ledger,
    subject: Subject,
) -> Planner:
    """``planner``, keeping what it would destroy of a restricted subject other than
    ``subject`` (flows/restriction.py)."""
    others = restricted_subjects(ledger, excluding=subject)
    restricted = restricted_in(config, mappings, others) if others else Restricted()

    def plan(
        records: list[Record], mappings: dict[str, BaseMapping], subject: Subject
    ) -> list[PlannedAction]:
        return spare_restricted(planner(records, mappings, subject), records, restricted)

    return plan


def remove_earlier_copies(
    request: DataSubjectRequest, ledger: Ledger, plan_folders: list[Path]
) -> Removed:
    """An erasure removes dsrflow's own earlier copies of the subject's data (dsrflow/copies.py)
    and logs how many; the receipt lists them."""
    copies = remove_copies(earlier_copies(ledger, request.subject, request.id, plan_folders))
    if copies.removed or copies.remaining:
        ledger.record(
            request.id,
            "earlier_copies_removed",
            removed=len(copies.removed),
            remaining=len(copies.remaining),
        )
    return copies


def _subject_for(
    plan: list[PlannedAction],
    opened_with: Subject,
    config: Config,
    mappings: dict[str, BaseMapping],
) -> Subject:
    """The subject a resumed plan is carried out for. The ledger keeps only the identifiers
    the request was opened with; a delete-only source's deletion planned for an identifier
    discovery found (an Analytics id from a consent record) is filed only for the subject's
    own ids, so discovery is asked again for them rather than trusting the plan file."""
    expected = {a.record_id for a in recordless_deletions(mappings, opened_with)}
    delete_only = {name for name, m in mappings.items() if isinstance(m, DeleteOnly)}
    if all(a.record_id in expected for a in plan if a.source in delete_only):
        return opened_with
    return discover_everywhere(config, mappings, opened_with, label="resume").subject


def run_change(
    request: DataSubjectRequest,
    config: Config,
    directory: Path,
    planner: Planner,
    verifier: Verifier | None,
    *,
    gated: bool,
    dry_run: bool,
    immediate: Callable[[PlannedAction], bool] | None = None,
    actor: str | None = None,
) -> ChangeResult:
    """Plan (or resume the approved plan), approve, execute, verify, receipt; all in the
    ledger, which marks the request failed if anything raises.

    ``gated`` requests wait for an officer's approval (flows/approval.py); an ungated one (a
    restriction, which protects the subject) is carried out for ``actor`` without one. The
    actions ``immediate`` picks (a consent withdrawal's own record) take effect before the
    approval; the rest of the plan waits for it."""
    ledger = Ledger.from_config(config)
    ledger.open_request(request, draft=dry_run)
    try:
        mappings = check_sources(config, right=request.type)  # all execution needs
        notice = restriction_notice(ledger, request)
        path = plan_path(directory, request.id)
        resumed = None if dry_run else approved_plan(ledger, path, request.id)
        officer: str | None
        interrupted = False
        subject = request.subject  # a resumed plan: the ids the request was opened with
        if resumed:
            plan, digest, officer = resumed.plan, resumed.digest, resumed.officer
            interrupted = any(
                e.event == f"status:{Status.IN_PROGRESS.value}" for e in ledger.entries(request.id)
            )
            ledger.record(request.id, "resumed", plan_sha256=digest)
            subject = _subject_for(plan, request.subject, config, mappings)
        else:
            found = discover_everywhere(config, mappings, request.subject)
            subject = found.subject  # with what discovery found, e.g. an Analytics id
            if gated:  # Art. 18: others' restrictions hold (flows/restriction.py)
                planner = sparing(planner, config, mappings, ledger, subject)
            plan = make_plan(request, found.records, mappings, planner, notice, subject)
            digest = store_plan(request, plan, ledger, directory)
            if dry_run:
                ledger.record(request.id, "dry_run")
                return ChangeResult(request_id=request.id, status="dry_run", plan=plan_counts(plan))
            if immediate and (now := [a for a in plan if immediate(a)]):
                reports = execute_plan(request, config, mappings, now, ledger, subject=subject)
                ledger.record(request.id, "took_effect", actions=len(now))
                if not all(r.complete for r in reports):
                    raise IncompleteError(f"{request.id}: the withdrawal itself was not recorded")
            if gated:
                decision = obtain_approval(request, ledger, digest, config.approval)
                if decision is None:
                    return ChangeResult(
                        request_id=request.id, status="awaiting_approval", plan=plan_counts(plan)
                    )
                if not decision.approved:
                    ledger.set_status(request.id, Status.REJECTED, actor=decision.officer)
                    return ChangeResult(
                        request_id=request.id, status="rejected", plan=plan_counts(plan)
                    )
                officer = decision.officer
            else:
                officer = None
        if gated:  # Art. 12(6): an approved change runs only for a verified requester
            require_verified(ledger, request.id, config.identity, "execution")
        # The officer changes the places without an API once the plan is approved (and the
        # requester verified), before the sources are (flows/manual.py); the request waits
        # while one is unanswered.
        settled = settle_manual_tasks(request, config, ledger, directory)
        if settled is None:
            return ChangeResult(
                request_id=request.id,
                status=Status.AWAITING_MANUAL.value,
                plan=plan_counts(plan),
                awaiting=[s.name for s in open_sources(config, request, directory / request.id)],
            )
        reports = execute_plan(request, config, mappings, plan, ledger, interrupted, subject)
        residue = verifier(request, config, mappings, plan) if verifier else []
        if residue or not all(r.complete for r in reports):
            ledger.record(request.id, "verification_failed", residue=len(residue))
            raise IncompleteError(
                f"{request.id} is not complete: residue {residue[:20]}; sources with actions "
                f"not done: {[r.source for r in reports if not r.complete]}. It stays open."
            )
        copies = (
            remove_earlier_copies(request, ledger, [config.output_dir, directory])
            if request.type is RequestType.ERASURE
            else None
        )
        receipt = build_receipt(
            request,
            config.controller,
            plan,
            reports,
            officer,
            digest,
            recorded_by=actor,
            ledger_head=ledger.anchor(),
            copies=copies,
            manual=[shown(source, answer) for source, answer in settled],
        )
        json_path, _ = write_receipt(receipt, path.parent, config.language)
        needs = {
            name: mappings[name].subject_at_hold_end(
                request.subject, [a for a in plan if a.source == name]
            )
            for name in {a.source for a in plan if a.keep_until}
        }
        deferred = [d for a in plan if (d := after_hold(a, needs.get(a.source))) is not None]
        if deferred:
            ledger.add_holds(request.id, deferred)
        if request.type is RequestType.ERASURE:
            # What proving the erasure needs stays (ids, plan digests, keyed hashes); the
            # subject's identifiers in clear go from every request of theirs.
            ledger.forget_subject(request.subject, request.id)
        ledger.set_status(request.id, Status.COMPLETED, receipt=json_path.name)
        return ChangeResult(
            request_id=request.id,
            status="completed",
            plan=plan_counts(plan),
            executed={r.source: outcome_counts(r) for r in reports},
            remains={r.source: n for r in reports if (n := remains_count(r))},
            receipt=str(json_path),
        )
    except Exception as exc:
        ledger.set_status(request.id, Status.FAILED, error=type(exc).__name__)
        raise
    finally:
        ledger.close()
