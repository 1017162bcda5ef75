"""The access request (GDPR Art. 15, 20): find everything, merge, write a portable export."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from dsrflow.config import Config
from dsrflow.ledger import Ledger, Status
from dsrflow.manual import shown
from dsrflow.request import DataSubjectRequest, RequestType
from dsrflow.run_settings import current_run_settings
from flows.coverage import coverage_notice
from flows.discovery import discover_everywhere
from flows.manual import open_sources, settle_manual_tasks
from flows.parameters import shared_parameter_docs
from flows.private import private_run
from flows.runner import task_runner
from flows.tasks import (
    check_sources,
    merge_records,
    publish_summary,
    request_and_config,
    restriction_notice,
    write_access_export,
)


class AccessResult(BaseModel):
    """What the flow returns: counts and paths, no personal data."""

    request_id: str
    total_records: int
    records_per_source: dict[str, int]
    export_dir: str
    expansion_rounds: int
    coverage_warning: str | None = None  # the last coverage report is missing, old or open
    status: str = "completed"
    awaiting: list[str] = Field(
        default_factory=list, description="manual sources still to answer (awaiting_manual)"
    )


@flow(
    name="access-request",
    flow_run_name="{request_id}",
    persist_result=False,
    validate_parameters=True,
    task_runner=task_runner(),  # DSRFLOW_TASK_RUNNER (flows/runner.py)
)
@private_run
@shared_parameter_docs
def access_request(
    request_id: str,
    subject_emails: list[str] | None = None,
    subject_phones: list[str] | None = None,
    received_at: dt.datetime | None = None,
    subject_analytics_client_ids: list[str] | None = None,
    subject_analytics_user_ids: list[str] | None = None,
) -> AccessResult:
    """Answer an access request: every configured source, one portable export. The
    identifiers may be left out for a request already in the ledger. Analytics ids are not
    searched (the API cannot): the export names them where it says so.
    """
    logger = get_run_logger()
    request, config = request_and_config(
        RequestType.ACCESS,
        request_id,
        subject_emails,
        subject_phones,
        received_at,
        analytics_ids=(subject_analytics_client_ids, subject_analytics_user_ids),
    )
    ledger = Ledger.from_config(config)
    ledger.open_request(request)
    try:
        result = _answer(request, config, ledger, current_run_settings().output_dir(config))
    except Exception as exc:
        ledger.set_status(request.id, Status.FAILED, error=type(exc).__name__)
        raise
    finally:
        ledger.close()
    logger.info("request %s %s: %d record(s)", request.id, result.status, result.total_records)
    return result


def _answer(
    request: DataSubjectRequest, config: Config, ledger: Ledger, out_dir: Path
) -> AccessResult:
    """Discover to a fixed point of identities, merge, export; progress into the ledger."""
    mappings = check_sources(config)
    ledger.set_status(request.id, Status.IN_PROGRESS, sources=sorted(mappings))
    restriction_notice(ledger, request)  # an access request is what restricted data may serve
    coverage = coverage_notice(ledger, config)  # places no mapping names are missed unnoticed
    found = discover_everywhere(config, mappings, request.subject)
    request = request.model_copy(update={"subject": found.subject})
    frame = merge_records(found.records)
    per_source = frame.groupby("source").size().to_dict() if len(frame) else {}
    # The places without an API are searched by a person before the export is written: it
    # holds their answers and files, and is not written while one is missing.
    manual = settle_manual_tasks(request, config, ledger, out_dir)
    if manual is None:
        return AccessResult(
            request_id=request.id,
            total_records=len(frame),
            records_per_source={k: int(v) for k, v in per_source.items()},
            export_dir=str(out_dir / request.id),
            expansion_rounds=found.rounds,
            coverage_warning=coverage,
            status=Status.AWAITING_MANUAL.value,
            awaiting=[s.name for s in open_sources(config, request, out_dir / request.id)],
        )
    files = write_access_export(
        request,
        config,
        mappings,
        frame,
        out_dir,
        found.not_searched,
        [shown(source, answer) for source, answer in manual],
    )
    publish_summary(request, frame)
    ledger.record(
        request.id,
        "exported",
        records=len(frame),
        per_source={k: int(v) for k, v in per_source.items()},
        export_json_sha256=hashlib.sha256(files.export_json.read_bytes()).hexdigest(),
        export_dir=str(files.directory),  # erasure and the sweep remove it (dsrflow/copies.py)
    )
    ledger.set_status(request.id, Status.COMPLETED)
    return AccessResult(
        request_id=request.id,
        total_records=len(frame),
        records_per_source={k: int(v) for k, v in per_source.items()},
        export_dir=str(files.directory),
        expansion_rounds=found.rounds,
        coverage_warning=coverage,
    )
