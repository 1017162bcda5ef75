"""The intake: new requests from the service desk and the mailbox, and the officer's
confirmation that starts each one.

``intake`` (scheduled) opens every new ticket or mail in the ledger as ``received`` and starts
one ``confirm-request`` run per request. That run pauses with a typed form (``Confirmation``):
the officer confirms the type and the subject's identifiers in the Prefect UI, and the run
starts the request type's deployment with the request id only. The form takes no identifiers
(see ``Confirmation``) and its answer is deleted from Prefect's run input once read; artifacts
name request ids and counts, never a person.
"""

from __future__ import annotations

from typing import cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field

from dsrflow.identifiers import mask_identifier
from dsrflow.intake import DEPLOYMENTS, UNCLEAR, confirm, open_incoming
from dsrflow.intake_channels import read_channels
from dsrflow.ledger import Ledger
from dsrflow.request import RequestType
from dsrflow.run_settings import current_run_settings
from flows.private import private_run

CONFIRM_DEPLOYMENT = "confirm-request/confirm-request"


class IntakeResult(BaseModel):
    """Counts and request ids: no personal data."""

    opened: list[str]
    per_channel: dict[str, int]
    confirmations: list[str] = Field(description="ids of the confirm-request runs started")


@flow(name="intake", persist_result=False)
@private_run
def intake() -> IntakeResult:
    """Read new requests from the configured service desk and mailbox, open each in the ledger
    (received), and start a confirm-request run for each new one (unless the process that
    runs it says otherwise: dsrflow/run_settings.py)."""
    logger = get_run_logger()
    settings = current_run_settings()
    config = settings.config()
    if config.intake.servicedesk is None and config.intake.mailbox is None:
        # The schedule runs in every stack; without channels there is nothing to read.
        logger.warning("no intake channel in the config (intake.servicedesk, intake.mailbox)")
        return IntakeResult(opened=[], per_channel={}, confirmations=[])
    items = read_channels(config)
    with Ledger.from_config(config) as ledger:
        result = open_incoming(ledger, items, is_own=config.controller.is_own_address)
    opened = [request_id for request_id, _, _ in result.opened]
    counts = result.counts()
    logger.info("intake: %d new request(s), %d seen before", len(opened), result.known)
    create_markdown_artifact(
        key="intake",
        markdown="### Intake\n\n"
        + "".join(f"- {channel}: {n}\n" for channel, n in counts.items())
        + "".join(f"- opened {request_id}\n" for request_id in opened),
        description="requests opened by this intake run (ids and counts only)",
    )
    runs = []
    if settings.start_runs:
        for request_id in opened:
            runs.append(start_request(CONFIRM_DEPLOYMENT, request_id))
    return IntakeResult(opened=opened, per_channel=counts, confirmations=runs)


class Confirmation(RunInput):
    """The officer's confirmation of a request that came in through the intake.

    No identifiers are typed here: whatever a form receives is written to Prefect's database,
    and deleting it through the API leaves its bytes in the database file (tests/test_at_rest.py
    found a typed address in the SQLite write-ahead log). The subject is the requester, whose
    address the ledger already holds; other identifiers go straight into the ledger with
    ``dsr intake confirm ID --email …``."""

    request_type: RequestType = Field(description="the right the subject asks for")
    use_requester_address: bool = Field(
        default=True,
        description="the requester's address (from the ticket or mail, shown masked above) is "
        "the subject's; untick it to give the subject's identifiers at the terminal instead",
    )
    officer: str = Field(min_length=1, description="your name, as the ledger shall record it")
    note: str = Field(
        default="", description="how you checked who is asking (kept in the ledger; no names)"
    )


class ConfirmResult(BaseModel):
    request_id: str
    request_type: str
    started: str | None = Field(description="the id of the request's flow run, if started")


@flow(name="confirm-request", flow_run_name="confirm-{request_id}", persist_result=False)
@private_run
def confirm_request(request_id: str) -> ConfirmResult:
    """Wait for the officer's confirmation of a received request, record it, and start the
    request type's deployment with the request id only. A request whose subject is not the
    requester (or that names no address) is confirmed at the terminal instead.

    Args:
        request_id: The id of the received request to confirm, e.g. DSR-2026-0001 (the
            intake starts this run for each new request).
    """
    settings = current_run_settings()
    config = settings.config()
    with Ledger.from_config(config) as ledger:
        asked, requester = ledger.received_subject(request_id)
        row = ledger.request_row(request_id)
    assert row is not None  # received_subject found it
    shown = ", ".join(sorted(mask_identifier(i) for i in requester.identifiers)) or "none"
    form = Confirmation.with_initial_data(
        description=(
            f"### Confirm {request_id}\n\n- received: {row['received_at']:%Y-%m-%d %H:%M} UTC\n"
            f"- requester: {shown}\n- asks for: {asked}\n\n"
            "Check who is asking, then choose the request type and the subject's identifiers."
        ),
        **({"request_type": RequestType(asked)} if asked != UNCLEAR else {}),
    )
    answer = pause_flow_run(
        wait_for_input=form, timeout=config.intake.confirm_timeout_hours * 3600, poll_interval=2
    )
    _forget_answer()
    with Ledger.from_config(config) as ledger:
        if not (answer.use_requester_address and requester.emails):
            # The subject's identifiers are needed and the form takes none: the terminal.
            ledger.record(
                request_id, "confirmation_at_terminal", actor=answer.officer, note=answer.note
            )
            get_run_logger().warning(
                "%s: give the subject's identifiers with `dsr intake confirm %s --type %s "
                "--no-requester --email …`",
                request_id,
                request_id,
                answer.request_type.value,
            )
            return ConfirmResult(
                request_id=request_id, request_type=answer.request_type.value, started=None
            )
        confirm(
            ledger,
            request_id,
            answer.request_type,
            answer.officer,
            note=answer.note,
            phone_region=config.phone_region,
        )
        deployment, startable = DEPLOYMENTS[answer.request_type]
        started = None
        if settings.start_runs and startable:
            started = start_request(deployment, request_id)
            ledger.record(request_id, "started", actor=answer.officer, flow_run=started)
        elif not startable:
            get_run_logger().info(
                "%s confirmed; start it from the %s deployment's run form with its request id",
                request_id,
                deployment.split("/")[1],
            )
    return ConfirmResult(
        request_id=request_id, request_type=answer.request_type.value, started=started
    )


def start_request(deployment: str, request_id: str) -> str:
    """A run of ``deployment`` with the request id as its only parameter (the deployment
    gives the config); not waited for: it may pause for the officer in its turn."""
    run = run_deployment(deployment, parameters={"request_id": request_id}, timeout=0)
    return str(cast(FlowRun, run).id)


def _forget_answer() -> None:
    """The form's answer is in the ledger now: delete it from the run's inputs, where Prefect
    would keep it for ever (its note is free text)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        inputs = client.filter_flow_run_input(
            context.flow_run.id, key_prefix="", limit=200, exclude_keys=set()
        )
        for stored in inputs:
            if stored.key.endswith("-response"):
                client.delete_flow_run_input(context.flow_run.id, stored.key)
