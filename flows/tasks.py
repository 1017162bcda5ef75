"""Prefect tasks shared by the request flows.

Tasks that carry record contents never persist their results and never cache (a cache key would
hash personal data); logs say counts, never contents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from connectors import Discovering, SourceContext, open_connector
from dsrflow.config import Config
from dsrflow.export import ExportFiles, build_export, write_export
from dsrflow.ledger import Ledger, UnknownRequest
from dsrflow.manual import ManualSourceAnswer, ManualStore
from dsrflow.mapping import BaseMapping
from dsrflow.mapping.common import DeleteOnly
from dsrflow.merge import merge, records_frame, summary
from dsrflow.preflight import preflight, take_over
from dsrflow.records import Record
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from dsrflow.run_settings import current_run_settings


def restriction_notice(ledger: Ledger, request: DataSubjectRequest) -> str | None:
    """Art. 18: a restricted subject's data is stored, not processed. Answering the subject's
    own request is processing they asked for, so it goes ahead; the ledger and the officer are
    told. Returns the notice, or None for a subject without a restriction."""
    if request.type is RequestType.RESTRICTION:
        return None
    since = ledger.restricted_since(request.subject)
    if since is None:
        return None
    ledger.record(request.id, "subject_restricted", since=since.date().isoformat())
    get_run_logger().info("the subject's processing is restricted; answering their own request")
    return (
        f"processing of this subject's data is restricted (Art. 18) since {since:%Y-%m-%d}: "
        "this request processes it only because the subject asked"
    )


def request_and_config(
    request_type: RequestType,
    request_id: str,
    emails: list[str] | None,
    phones: list[str] | None,
    received_at: dt.datetime | None,
    draft: bool = False,
    analytics_ids: tuple[list[str] | None, list[str] | None] = (None, None),
) -> tuple[DataSubjectRequest, Config]:
    """The run's config (dsrflow/run_settings.py), and the request: as the ledger has it when
    it was opened before (by the command line, so that the flow run's parameters carry its id
    only), else validated from the flow's parameters (identifiers first). The ledger's
    received time wins: the deadline counts from receipt. ``analytics_ids``: the subject's
    Analytics client ids and user ids."""
    try:
        return _request_and_config(
            request_type, request_id, emails, phones, received_at, draft, analytics_ids
        )
    finally:
        # Whatever happens, identifiers typed into the run form do not stay in Prefect.
        if emails or phones or any(analytics_ids):
            forget_parameters(IDENTIFIER_PARAMETERS)


def _request_and_config(
    request_type: RequestType,
    request_id: str,
    emails: list[str] | None,
    phones: list[str] | None,
    received_at: dt.datetime | None,
    draft: bool,
    analytics_ids: tuple[list[str] | None, list[str] | None],
) -> tuple[DataSubjectRequest, Config]:
    config = current_run_settings().config()
    client_ids, user_ids = analytics_ids
    given = (
        # Analytics ids without an address are refused (IdentifierError), never dropped.
        Subject.from_raw(
            emails or [],
            phones or [],
            None,
            config.phone_region,
            analytics_client_ids=client_ids or [],
            analytics_user_ids=user_ids or [],
        )
        if emails or client_ids or user_ids
        else None
    )
    with Ledger.from_config(config) as ledger:
        known = ledger.request(request_id)
        if known is None and given is None:
            raise UnknownRequest(
                f"{request_id} is not in the ledger; give the subject's identifiers to open it"
            )
        asked = DataSubjectRequest(
            id=request_id,
            type=request_type,
            subject=given or known.subject,  # type: ignore[union-attr]
            received_at=received_at or dt.datetime.now(dt.UTC),
        )
        # The ledger refuses an id of another subject or type; a dry run's request is a draft.
        ledger.open_request(asked, draft=draft)
        request = ledger.request(request_id) or asked
    return request, config


IDENTIFIER_PARAMETERS = (
    "subject_emails",
    "subject_phones",
    "subject_analytics_client_ids",
    "subject_analytics_user_ids",
)


def forget_parameters(names: tuple[str, ...], blank: object = None) -> None:
    """Prefect keeps a run's parameters in its database for ever. A run started with personal
    data in its parameters (the UI's run form: identifiers, corrections) has it in the ledger
    or the plan now: blank those parameters, so Prefect keeps the request id only."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    parameters = dict(context.flow_run.parameters)
    if not any(parameters.get(name) for name in names):
        return
    # Only the flow's own parameters (not every flow takes every identifier kind).
    parameters.update(dict.fromkeys((n for n in names if n in parameters), blank))
    with get_client(sync_client=True) as client:
        client.update_flow_run(context.flow_run.id, parameters=parameters)
    # The run's copy must follow: a second call writes the whole dict again, and would
    # otherwise put back what the first one blanked.
    context.flow_run.parameters = parameters
    get_run_logger().info("%s moved out of the run's parameters", ", ".join(names))


@task(name="check-sources", persist_result=False, cache_policy=NO_CACHE)
def check_sources(config: Config, right: RequestType | None = None) -> dict[str, BaseMapping]:
    """Before reading any data: every mapping valid and matching its live source, every source
    reachable, and everything ``right`` needs to execute in place (dsrflow.preflight); one
    PreflightError listing every problem otherwise. No right: what discovery needs."""
    checked = take_over(config, right) or preflight(config, right)  # the command's, if just run
    checked.raise_for_problems()
    mappings = checked.mappings
    get_run_logger().info("%d source(s) ready: %s", len(mappings), ", ".join(sorted(mappings)))
    return mappings


@dataclass(frozen=True)
class Found:
    """A source's records, and what it could not search (e.g. a mailbox Graph cannot reach):
    the answer says so rather than pass a partial search as the whole."""

    records: list[Record]
    not_searched: list[str]


@task(name="discover", retries=0, persist_result=False, cache_policy=NO_CACHE)
def discover_source(
    name: str, config: Config, mapping: BaseMapping, subject: Subject, known: Subject | None = None
) -> Found:
    """The records of ``subject`` in one source. ``known``: the whole subject, when ``subject``
    holds only the identifiers a later round searches by (flows/discovery.py): what the source
    finds is still judged against all of them (connectors.third_parties)."""
    context = SourceContext.of(config)
    if known is not None:
        context = context.knowing(known)
    with open_connector(name, config.sources[name], mapping, context) as connector:
        if not isinstance(connector, Discovering):  # a delete-only API: said, not "nothing"
            if isinstance(mapping, DeleteOnly):  # its own words, e.g. Analytics' (Art. 15)
                return Found([], [mapping.explain_access(subject)])
            return Found([], [f"{name}: its API cannot look a person up, it can only erase"])
        records = list(connector.discover(subject))
        not_searched = list(getattr(connector, "not_searched", []))
    shared = sum(r.shared for r in records)
    get_run_logger().info(
        "%s: %d record(s), %d shared with others, %d place(s) not searched",
        name,
        len(records),
        shared,
        len(not_searched),
    )
    return Found(records, not_searched)


@task(name="merge", persist_result=False, cache_policy=NO_CACHE)
def merge_records(records: list[Record]) -> pd.DataFrame:
    frame = merge(records_frame(records))
    get_run_logger().info("merged %d record(s) into %d", len(records), len(frame))
    return frame


@task(name="write-export", persist_result=False, cache_policy=NO_CACHE)
def write_access_export(
    request: DataSubjectRequest,
    config: Config,
    mappings: dict[str, BaseMapping],
    frame: pd.DataFrame,
    out_dir: Path,
    not_searched: dict[str, list[str]] | None = None,
    manual: list[ManualSourceAnswer] | None = None,
) -> ExportFiles:
    document = build_export(
        request, config, mappings, frame, not_searched=not_searched, manual=manual
    )
    folder = out_dir / request.id
    files = write_export(document, folder, config.language, ManualStore(folder).attachments())
    get_run_logger().info("export of %d record(s) written (owner-only)", document.total_records)
    return files


@task(name="publish-summary", persist_result=False, cache_policy=NO_CACHE)
def publish_summary(request: DataSubjectRequest, frame: pd.DataFrame) -> None:
    """An artifact for the officer: counts per source, the subject masked."""
    counts = summary(frame)
    key = f"access-{request.id.lower()}"
    create_table_artifact(
        key=key,
        table=[{str(k): v for k, v in row.items()} for row in counts.to_dict("records")],
        description=f"{request.id}: records found per source and location",
    )
    masked = ", ".join(request.subject.masked())
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=(
            f"### Access request {request.id}\n\n"
            f"- subject: {masked}\n- records: {len(frame)}\n"
            f"- shared with others: {int(frame['shared'].sum()) if len(frame) else 0}\n"
            f"- due: {request.due_at.isoformat()}\n"
        ),
        description=f"{request.id}: summary",
    )
