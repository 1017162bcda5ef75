"""Art. 12(6) by one-time code, as a Prefect run: the code is mailed to the subject's address
from the officer's mailbox, then the run pauses with a typed form (``CodeEntry``) in which the
officer types the code the requester sends back.

The code never reaches Prefect: the run's only parameter is the request id (the config is the
deployment's), the ledger keeps only a keyed hash (dsrflow/identity.py), logs say counts. What
the officer types into the form is stored by Prefect as the run's input; the run deletes that
input as soon as it has read it. A wrong code pauses the run again, until the attempts are used
up (the run then fails and the code is void).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput, keyset_from_base_key
from pydantic import BaseModel, Field

from connectors.mail.send import send_mail
from dsrflow.config import load_config
from dsrflow.delivery import mail_sender
from dsrflow.identity import IdentityError, Method, check_code, issue_code
from dsrflow.ledger import Ledger
from dsrflow.run_settings import current_run_settings
from flows.private import private_run


class CodeEntry(RunInput):
    """The form the officer fills in when the requester has sent the code back."""

    code: str = Field(min_length=1, max_length=40, description="the code, as the requester gave it")
    officer: str = Field(min_length=1, description="your name, as the ledger shall record it")


class IdentityResult(BaseModel):
    request_id: str
    verified: bool
    method: str
    wrong_attempts: int


def code_mail_text(request_id: str, code: str, expires_at: dt.datetime) -> str:
    return (
        f"We received a request about your personal data ({request_id}). To confirm it was "
        f"you, send us this code: {code}\n\nIt is valid until {expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not make the request, ignore this message."
    )


def send_code(config_path: str | Path | None, request_id: str, actor: str) -> dt.datetime:
    """Issue a code and mail it to the subject; returns when it expires."""
    config = load_config(config_path)
    name, source, sender = mail_sender(config)
    with Ledger.from_config(config) as ledger:
        issued = issue_code(ledger, request_id, config.identity, actor=actor)
    send_mail(
        name,
        source,
        sender,
        issued.to,
        f"Your confirmation code ({request_id})",
        code_mail_text(request_id, issued.code, issued.expires_at),
    )
    return issued.expires_at


def _forget_input(pause_key: str) -> None:
    """Delete the form's answer from Prefect's database once read."""
    from prefect.client.orchestration import get_client

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    key = keyset_from_base_key(f"paused-{pause_key}")["response"]
    with get_client(sync_client=True) as client:
        client.delete_flow_run_input(UUID(str(context.flow_run.id)), key)


@flow(name="identity-code", flow_run_name="{request_id}", persist_result=False)
@private_run
def identity_by_code(request_id: str) -> IdentityResult:
    """Mail a one-time code to the subject and wait for the officer to type it back.

    Args:
        request_id: The id of the request whose requester is to be checked, e.g.
            DSR-2026-0001 (the code goes to the subject's address in the ledger).
    """
    logger = get_run_logger()
    settings = current_run_settings()
    config = settings.config()
    expires = send_code(settings.config_path, request_id, actor="dsrflow")
    logger.info("code sent for %s; valid until %s", request_id, f"{expires:%Y-%m-%d %H:%M} UTC")
    wrong = 0
    while True:
        left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
        if left <= 0:
            raise IdentityError(f"{request_id}'s code expired; start the check again")
        pause_key = f"identity-code-{wrong}"
        entry = pause_flow_run(
            wait_for_input=CodeEntry, timeout=int(left) + 1, poll_interval=2, key=pause_key
        )
        _forget_input(pause_key)
        with Ledger.from_config(config) as ledger:
            result = check_code(ledger, request_id, entry.code, config.identity, entry.officer)
        if result.verified:
            logger.info("identity of %s verified by code", request_id)
            return IdentityResult(
                request_id=request_id,
                verified=True,
                method=Method.ONE_TIME_CODE.value,
                wrong_attempts=wrong,
            )
        wrong += 1
        if result.attempts_left <= 0:
            raise IdentityError(f"{request_id}: {result.reason}")
        logger.warning("%s: %s", request_id, result.reason)
