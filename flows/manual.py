"""The manual tasks of a request: one per manual source that applies (dsrflow/manual.py).

A run started from a deployment pauses for each open task with a typed form (``ManualTask``)
in the Prefect UI; ``dsr manual answer`` answers the same form through Prefect's API. A run at a
terminal has no form anybody can reach: it leaves the request ``awaiting_manual`` and stops, and
``dsr manual answer`` records the answers and, with the last one, runs the request again.
Answers given before the run reaches a task (recorded while no run waited for it) are taken as
they are, so nothing is asked twice.

Where the tasks come in the flows: an access request asks after discovery and before the export
(the answers and files go into it); a changing request asks after the officer approved the plan
and before anything is executed: the officer changes the device or the paper once the plan is
approved, as the connectors do in the sources, and the approval cannot be skipped for either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from dsrflow.config import Config
from dsrflow.ledger import Ledger, Status, UnknownRequest
from dsrflow.manual import (
    OUTCOMES,
    ManualAnswer,
    ManualAnswerError,
    ManualFields,
    ManualSource,
    ManualStore,
    StoredAnswer,
    check_answer,
)
from dsrflow.request import DataSubjectRequest, RequestType
from flows.approval import terminal


class ManualTask(ManualFields, RunInput):
    """The form of one manual task in the Prefect UI (the instructions are its description)."""


def open_sources(config: Config, request: DataSubjectRequest, folder: Path) -> list[ManualSource]:
    """The manual sources of the request that have no answer yet."""
    answered = ManualStore(folder).load()
    return [
        s for s in config.manual_sources if s.applies_to(request.type) and s.name not in answered
    ]


def record_answer(
    ledger: Ledger,
    request: DataSubjectRequest,
    folder: Path,
    source: str,
    answer: ManualFields | dict[str, Any],
) -> StoredAnswer:
    """Check an answer, keep it beside the request, and log it (digests only)."""
    checked = check_answer(answer, request.type)
    stored = ManualStore(folder).save(source, checked)
    ledger.record(request.id, "manual_answered", actor=checked.officer, **stored.ledger_details())
    return stored


def settle_manual_tasks(
    request: DataSubjectRequest, config: Config, ledger: Ledger, out_dir: Path
) -> list[tuple[ManualSource, StoredAnswer]] | None:
    """Every applicable manual source with its answer; None when one is still open and this
    run cannot ask for it (a terminal, or the wait timed out): the request then stays
    ``awaiting_manual``, with where its answers go, for ``dsr manual answer``."""
    folder = out_dir / request.id
    sources = [s for s in config.manual_sources if s.applies_to(request.type)]
    if not sources:
        return []
    while pending := open_sources(config, request, folder):
        source = pending[0]
        if terminal() is not None:
            _awaiting(ledger, request, out_dir, pending, "terminal")
            return None
        try:
            _ask(request, config, ledger, out_dir, source)
        except FlowPauseTimeout:
            _awaiting(ledger, request, out_dir, pending, "later")
            return None
    answers = ManualStore(folder).load()
    return [(s, answers[s.name]) for s in sources]


def _awaiting(
    ledger: Ledger,
    request: DataSubjectRequest,
    out_dir: Path,
    pending: list[ManualSource],
    where: str,
    flow_run: str | None = None,
    asking: str | None = None,
) -> None:
    """``where``: terminal, later (a paused run timed out) or prefect (the run ``flow_run``
    shows the form of ``asking``)."""
    run: dict[str, Any] = {"flow_run": flow_run, "asking": asking} if flow_run else {}
    ledger.set_status(
        request.id,
        Status.AWAITING_MANUAL,
        waiting=where,
        sources=[s.name for s in pending],
        out_dir=str(out_dir),  # where the answers go (a path, no personal data)
        **run,
    )


def _ask(
    request: DataSubjectRequest, config: Config, ledger: Ledger, out_dir: Path, source: ManualSource
) -> None:
    """Pause for one task until it has a whole answer; a wrong one is logged and asked again.
    Each answer is deleted from Prefect as soon as it is read: the note is kept beside the
    request, not in Prefect's database."""
    from prefect.context import FlowRunContext
    from prefect.input import delete_flow_run_input

    logger = get_run_logger()
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else None
    pending = open_sources(config, request, out_dir / request.id)
    _awaiting(ledger, request, out_dir, pending, "prefect", run_id, asking=source.name)
    ledger.record(request.id, "manual_asked", source=source.name)
    allowed = ", ".join(o.value for o in OUTCOMES[request.type])
    description = (
        f"### Manual task `{source.name}` of {request.id} ({request.type.value})\n\n"
        f"**Responsible:** {source.responsible}\n\n{source.instructions}\n\n"
        f"Outcome: one of {allowed}. The note must not hold the person's data: attach it as a "
        "file (with found), by a path this flow can read."
    )
    create_markdown_artifact(
        key=f"manual-{request.id.lower()}-{source.name}",
        markdown=description,
        description=f"{request.id}: manual task {source.name}",
    )
    attempt = 0
    while True:
        attempt += 1
        key = f"manual-{source.name}-{attempt}"  # a pause key is answered once
        form = pause_flow_run(
            wait_for_input=ManualTask.with_initial_data(description=description),
            timeout=config.approval.timeout_hours * 3600,
            poll_interval=2,
            key=key,
        )
        delete_flow_run_input(form.metadata.key, flow_run_id=form.metadata.receiver)
        if source.name in ManualStore(out_dir / request.id).load():
            logger.warning(
                "%s was answered at the terminal meanwhile; that answer stands", source.name
            )
            return
        try:
            record_answer(ledger, request, out_dir / request.id, source.name, form)
        except ManualAnswerError as exc:
            ledger.record(request.id, "manual_answer_refused", source=source.name)
            why = str(exc).replace(form.attachment, "<attachment>") if form.attachment else exc
            logger.warning("%s; asking again", why)  # a file's path may name the person
            continue
        logger.info("manual task %s answered", source.name)
        return


@dataclass(frozen=True)
class ManualWait:
    """How a request waits for manual answers, as the ledger last recorded it."""

    where: str  # terminal | later | prefect
    sources: list[str]
    out_dir: Path
    flow_run: str | None = None
    asking: str | None = None


def manual_wait(ledger: Ledger, request_id: str) -> ManualWait:
    last = ledger.waiting_entry(request_id, Status.AWAITING_MANUAL, "a manual answer")
    return ManualWait(
        where=last.details["waiting"],
        sources=list(last.details["sources"]),
        out_dir=Path(last.details["out_dir"]),
        flow_run=last.details.get("flow_run"),
        asking=last.details.get("asking"),
    )


@dataclass(frozen=True)
class Answered:
    """What ``answer_task`` did: ``resumed`` the paused run's form, or recorded the answer
    (``remaining``: the request's tasks still open)."""

    wait: ManualWait
    request_type: RequestType
    resumed: bool
    remaining: list[str]


def answer_task(config: Config, request_id: str, source: str, fields: dict[str, Any]) -> Answered:
    """Answer a manual task from outside the run: through the paused run's form when it asks
    for exactly this source, else straight into the request's answers and the ledger."""
    with Ledger.from_config(config) as ledger:
        request = ledger.request(request_id)
        if request is None:
            raise UnknownRequest(f"no request {request_id} in the ledger")
        wait = manual_wait(ledger, request_id)
        names = [s.name for s in config.manual_sources if s.applies_to(request.type)]
        if source not in names:
            raise ManualAnswerError(
                f"{request_id} has no manual source {source!r} (its manual sources: "
                f"{', '.join(names) or 'none'})"
            )
        folder = wait.out_dir / request_id
        if source in ManualStore(folder).load():
            raise ManualAnswerError(f"{source} of {request_id} was already answered")
        answer = check_answer(fields, request.type)
        if wait.where == "prefect" and wait.asking == source and wait.flow_run:
            if _resume(wait.flow_run, answer):
                return Answered(wait, request.type, True, [n for n in wait.sources if n != source])
            # The run ended without its answer (stopped with the stack, crashed): the answer
            # is recorded here and the request finishes at a terminal.
            pending = open_sources(config, request, folder)
            _awaiting(ledger, request, wait.out_dir, pending, "later")
            wait = replace(wait, where="later")
        record_answer(ledger, request, folder, source, answer)
        remaining = [s.name for s in open_sources(config, request, folder)]
    return Answered(wait, request.type, False, remaining)


def _resume(flow_run: str, answer: ManualAnswer) -> bool:
    """Answer the paused run's form through Prefect's API; False if the run has ended
    without an answer (nothing waits any more); ManualAnswerError if it runs on."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    try:
        # The run checks, copies the file and records it, as for the UI's form.
        resume_flow_run(UUID(flow_run), run_input=answer.model_dump(mode="json"))
        return True
    except (NotPausedError, FlowPauseTimeout):
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(flow_run)).state
        if state is not None and state.is_final():
            return False
        raise ManualAnswerError(
            f"flow run {flow_run} is {state.name if state else 'unknown'}, not waiting for "
            "this answer; try again when it asks (see the Prefect UI)"
        ) from None
