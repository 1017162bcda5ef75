"""The erasure request (GDPR Art. 17): plan, officer approval, execution, verification, receipt.

Nothing is changed before an officer approves the plan (in the Prefect UI, or ``--approve`` on
the command line); the request is complete only when discovering again finds nothing but the
records kept on purpose. See flows/changes.py for what every changing request shares.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow

from dsrflow.config import Config
from dsrflow.mapping import BaseMapping
from dsrflow.plan import Action, PlannedAction
from dsrflow.planning import build_erasure_plan, record_ref
from dsrflow.records import Record
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from dsrflow.run_settings import current_run_settings
from flows.changes import ChangeResult, run_change
from flows.discovery import discover_everywhere
from flows.parameters import shared_parameter_docs
from flows.private import private_run
from flows.runner import task_runner
from flows.tasks import request_and_config


def _erasure_planner(
    records: list[Record], mappings: dict[str, BaseMapping], subject: Subject
) -> list[PlannedAction]:
    """Every kind plans in its mapping (the officer can read why); no source is opened. A
    delete-only source plans from the subject's identifiers (dsrflow/planning.py)."""
    return build_erasure_plan(records, mappings, dt.datetime.now(dt.UTC).date(), subject)


@flow(
    name="erasure-request",
    flow_run_name="{request_id}",
    persist_result=False,
    task_runner=task_runner(),
)
@private_run
@shared_parameter_docs
def erasure_request(
    request_id: str,
    subject_emails: list[str] | None = None,
    subject_phones: list[str] | None = None,
    received_at: dt.datetime | None = None,
    dry_run: bool = False,
    subject_analytics_client_ids: list[str] | None = None,
    subject_analytics_user_ids: list[str] | None = None,
) -> ChangeResult:
    """Erase the subject's data everywhere, after the officer approves the plan. Analytics
    ids (the _ga cookie's client id, the site's user id) get a user deletion request each.

    The run pauses for the officer's decision (the run's Resume form, or ``dsr approve``);
    nothing a run is started with can approve it (flows/approval.py). The identifiers may be
    left out for a request already in the ledger.
    """
    request, config = request_and_config(
        RequestType.ERASURE,
        request_id,
        subject_emails,
        subject_phones,
        received_at,
        draft=dry_run,
        analytics_ids=(subject_analytics_client_ids, subject_analytics_user_ids),
    )
    return run_change(
        request,
        config,
        current_run_settings().output_dir(config),
        _erasure_planner,
        erasure_residue,
        gated=True,
        dry_run=dry_run,
    )


def erasure_residue(
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
