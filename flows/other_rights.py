"""Rectification (Art. 16), consent withdrawal (Art. 7(3)) and restriction (Art. 18).

Rectification and consent withdrawal change data, so they pass the same approval gate as
erasure (flows/changes.py); restriction protects the subject and runs at once. Each writes its
progress to the ledger and a receipt for the subject.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from prefect import flow, get_run_logger

from dsrflow.config import Config
from dsrflow.ledger import Ledger, Status
from dsrflow.mapping import BaseMapping
from dsrflow.plan import Action, PlannedAction
from dsrflow.planning import (
    CONSENT_PURPOSES,
    build_consent_plan,
    build_rectification_plan,
    build_restriction_plan,
    parse_corrections,
    record_ref,
)
from dsrflow.request import DataSubjectRequest, RequestType
from dsrflow.run_settings import current_run_settings
from flows.changes import ChangeResult, run_change
from flows.discovery import discover_everywhere
from flows.parameters import shared_parameter_docs
from flows.private import private_run
from flows.runner import task_runner
from flows.tasks import forget_parameters, request_and_config

Purpose = Literal["analytics", "config_collection", "all"]


def deleted_residue(
    request: DataSubjectRequest,
    config: Config,
    mappings: dict[str, BaseMapping],
    plan: list[PlannedAction],
) -> list[str]:
    """Records the plan deleted that discovery still finds."""
    deleted = {a.record_id: a for a in plan if a.action == Action.DELETE}
    found = discover_everywhere(config, mappings, request.subject, label="verify")
    return sorted(record_ref(deleted[r.record_id]) for r in found.records if r.record_id in deleted)


@flow(
    name="rectification-request",
    flow_run_name="{request_id}",
    persist_result=False,
    task_runner=task_runner(),
)
@private_run
@shared_parameter_docs
def rectification_request(
    request_id: str,
    corrections: list[str],
    subject_emails: list[str] | None = None,
    subject_phones: list[str] | None = None,
    received_at: dt.datetime | None = None,
    dry_run: bool = False,
) -> ChangeResult:
    """Correct fields wherever they occur (``corrections``: ``email=new@example.com``,
    ``name=...``, ``phone=...`` or ``<data category>=value``); each change is read back.

    Args:
        corrections: One correction per item, field=new value: email=new@example.com,
            name=..., phone=... or <data category>=value. Moved out of Prefect once read.
    """
    request, config = request_and_config(
        RequestType.RECTIFICATION,
        request_id,
        subject_emails,
        subject_phones,
        received_at,
        draft=dry_run,
    )
    try:
        wanted = parse_corrections(corrections, config.phone_region)
    finally:
        forget_parameters(("corrections",), blank=[])  # the new values live in the plan
    get_run_logger().info("correcting %d categor(ies)", len(wanted))
    return run_change(
        request,
        config,
        current_run_settings().output_dir(config),
        lambda records, mappings, _subject: build_rectification_plan(records, mappings, wanted),
        None,  # each connector reads its changes back; DONE means they stuck
        gated=True,
        dry_run=dry_run,
    )


@flow(
    name="consent-withdrawal",
    flow_run_name="{request_id}",
    persist_result=False,
    task_runner=task_runner(),
)
@private_run
@shared_parameter_docs
def consent_withdrawal(
    request_id: str,
    purpose: Purpose,
    subject_emails: list[str] | None = None,
    subject_phones: list[str] | None = None,
    received_at: dt.datetime | None = None,
    dry_run: bool = False,
    subject_analytics_client_ids: list[str] | None = None,
    subject_analytics_user_ids: list[str] | None = None,
) -> ChangeResult:
    """Record the withdrawal (now, never back-dated) and erase the data whose only legal basis
    was that consent, through the same approval gate as an erasure (for ``analytics``: a user
    deletion request per Analytics id).

    Args:
        purpose: The consent withdrawn: analytics, config_collection, or all of them.
    """
    request, config = request_and_config(
        RequestType.CONSENT_WITHDRAWAL,
        request_id,
        subject_emails,
        subject_phones,
        received_at,
        draft=dry_run,
        analytics_ids=(subject_analytics_client_ids, subject_analytics_user_ids),
    )
    purposes: set[str] = set(CONSENT_PURPOSES) if purpose == "all" else {purpose}
    now = dt.datetime.now(dt.UTC)
    if not dry_run:
        # Art. 7(3): the withdrawal counts from now, whatever the officer decides later.
        with Ledger.from_config(config) as ledger:
            ledger.open_request(request)
            ledger.record(
                request.id, "consent_withdrawn", purposes=sorted(purposes), at=now.isoformat()
            )
    return run_change(
        request,
        config,
        current_run_settings().output_dir(config),
        lambda records, mappings, subject: build_consent_plan(
            records, mappings, purposes, now, subject
        ),
        deleted_residue,
        gated=True,
        dry_run=dry_run,
        # The consent records get their withdrawal time at once (the processing that relied
        # on them stops); only the erasure that follows waits for the officer.
        immediate=lambda action: action.action == Action.RECTIFY,
    )


@flow(
    name="restriction-request",
    flow_run_name="{request_id}",
    persist_result=False,
    task_runner=task_runner(),
)
@private_run
@shared_parameter_docs
def restriction_request(
    request_id: str,
    subject_emails: list[str] | None = None,
    lift: bool = False,
    subject_phones: list[str] | None = None,
    received_at: dt.datetime | None = None,
    officer: str | None = None,
) -> ChangeResult:
    """Put the subject on the restriction list that every flow honours, and mark their records
    where a source can; ``lift=True`` takes them off again (its own logged action).

    Args:
        lift: Lift the restriction instead: take the subject off the list again (tell
            them first, Art. 18(3)).
        officer: Your name, as the ledger shall record it (empty: officer).
    """
    request, config = request_and_config(
        RequestType.RESTRICTION,
        request_id,
        subject_emails,
        subject_phones,
        received_at,
    )
    with Ledger.from_config(config) as ledger:
        ledger.open_request(request)
        if lift:
            lifted = ledger.lift_restriction(request.subject, request.id, officer or "officer")
            ledger.set_status(request.id, Status.COMPLETED, lifted=lifted)
            return ChangeResult(request_id=request.id, status="lifted", plan={})
        ledger.add_restriction(request.subject, request.id, officer or "officer")
    return run_change(
        request,
        config,
        current_run_settings().output_dir(config),
        lambda records, _mappings, _subject: build_restriction_plan(records),
        None,
        gated=False,
        dry_run=False,
        actor=officer or "officer",
    )


__all__ = ["consent_withdrawal", "rectification_request", "restriction_request"]
