"""Art. 12(6) (issue 16, Identity): how the requester was verified is recorded — the officer's
own check, a logged-in service-desk account whose address is the subject's, or a one-time code
mailed through Graph ``sendMail`` (the real msgraph-sdk against the emulator) and typed back,
at the terminal or in the run's typed pause form answered through Prefect's API."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from connectors.mail.client import _jwt_part
from dsrflow.config import load_config
from dsrflow.identity import CODE_DIGITS, check_code, issue_code
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from dsrflow.run_settings import run_settings
from sandbox.emulators.graph import GraphStore, create_app
from sandbox.emulators.server import EmulatorServer
from tests.support.handover import OFFICER_BOX, SUBJECT, Channels
from tests.support.runs import runs_named

REQUEST = "DSR-2026-1601"


def opened(channels: Channels, request_id: str = REQUEST) -> str:
    """The request in the ledger, as intake or a flow opens it."""
    with channels.ledger() as ledger:
        ledger.open_request(
            DataSubjectRequest(
                id=request_id,
                type=RequestType.ACCESS,
                subject=Subject.from_raw([SUBJECT]),
                received_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
            )
        )
    return request_id


def code_in(message: dict[str, object]) -> str:
    body = message["body"]
    assert isinstance(body, dict)
    found = re.search(rf"\b(\d{{{CODE_DIGITS}}})\b", str(body["content"]))
    assert found, body
    return found.group(1)


def test_officer_check_is_recorded_with_its_note(channels):
    request = opened(channels)
    assert channels.cli("identity", "status", request).exit_code == 1
    empty = channels.cli("identity", "check", request, "--officer", "Ingrid", "--note", " ")
    assert empty.exit_code == 2
    assert "note" in empty.output
    done = channels.cli(
        "identity", "check", request, "--officer", "Ingrid", "--note", "passport seen at desk"
    )
    assert done.exit_code == 0, done.output
    with channels.ledger() as ledger:
        (entry,) = [e for e in ledger.entries(request) if e.event == "identity_verified"]
    assert entry.actor == "Ingrid"
    assert entry.details == {"method": "officer_check", "note": "passport seen at desk"}
    assert "officer_check" in channels.cli("identity", "status", request).output


def test_code_goes_out_by_sendmail_and_only_its_keyed_hash_is_kept(channels):
    request = opened(channels)
    sent = channels.cli("identity", "send-code", request, "--officer", "Ingrid")
    assert sent.exit_code == 0, sent.output
    (message,) = channels.sent()
    assert message["toRecipients"] == [{"emailAddress": {"address": SUBJECT}}]
    assert message["from"]["emailAddress"]["address"] == OFFICER_BOX
    code = code_in(message)
    assert code not in sent.output
    ledger_file = Path(load_config(channels.config).ledger_url.removeprefix("sqlite:///"))
    assert code.encode() not in ledger_file.read_bytes()

    entered = channels.cli("identity", "enter-code", request, "--officer", "Per", input=code)
    assert entered.exit_code == 0, entered.output
    assert channels.events(request)[-1] == "identity_verified"
    with channels.ledger() as ledger:
        details = [e.details for e in ledger.entries(request)]
    assert {"method": "one_time_code"} in details
    # A code is used once.
    again = channels.cli("identity", "enter-code", request, "--officer", "Per", input=code)
    assert again.exit_code == 2
    assert "used or void" in again.output


def test_wrong_codes_are_refused_and_counted_until_the_code_is_void(channels):
    request = opened(channels)
    channels.set_identity(max_attempts=2)
    assert channels.cli("identity", "send-code", request).exit_code == 0
    code = code_in(channels.sent()[0])
    wrong = f"{(int(code) + 1) % 10**CODE_DIGITS:0{CODE_DIGITS}d}"
    first = channels.cli("identity", "enter-code", request, "--officer", "Per", input=wrong)
    assert first.exit_code == 2
    assert "1 attempt(s) left" in first.output
    second = channels.cli("identity", "enter-code", request, "--officer", "Per", input=wrong)
    assert second.exit_code == 2
    assert "void" in second.output
    # Even the right code no longer counts.
    right = channels.cli("identity", "enter-code", request, "--officer", "Per", input=code)
    assert right.exit_code == 2
    trail = channels.events(request)
    assert trail.count("identity_code_wrong") == 2
    assert "identity_code_void" in trail
    assert "identity_verified" not in trail


def test_an_expired_code_is_refused(channels):
    request = opened(channels)
    config = load_config(channels.config)
    sent_at = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
    with channels.ledger() as ledger:
        issued = issue_code(ledger, request, config.identity, "Ingrid", now=sent_at)
        late = sent_at + dt.timedelta(hours=config.identity.code_ttl_hours)
        with pytest.raises(ValueError, match="expired"):
            check_code(ledger, request, issued.code, config.identity, "Per", now=late)
        in_time = late - dt.timedelta(seconds=1)
        with pytest.raises(ValueError, match="void"):  # the expired check voided it
            check_code(ledger, request, issued.code, config.identity, "Per", now=in_time)


def test_a_code_needs_the_ledger_key(channels, monkeypatch):
    request = opened(channels)
    monkeypatch.delenv("DSRFLOW_LEDGER_KEY")
    refused = channels.cli("identity", "send-code", request)
    assert refused.exit_code == 2
    assert "ledger key" in refused.output
    assert channels.sent() == []


@pytest.mark.parametrize(
    ("ticket", "verified", "why"),
    [
        ("SUP-1", True, ""),
        ("SUP-3", False, "does not show the reporter's address"),
        ("SUP-4", False, "not one of"),  # sal@example.com is not al@example.com
    ],
)
def test_service_desk_account_verifies_only_a_shown_matching_address(
    channels, ticket, verified, why
):
    request = opened(channels)
    result = channels.cli("identity", "service-desk", request, "--ticket", ticket)
    assert (result.exit_code == 0) is verified, result.output
    assert why in result.output
    last = channels.events(request)[-1]
    assert last == ("identity_verified" if verified else "identity_refused")


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_code_form_is_answered_through_prefects_api(channels):
    """The flow mails the code and pauses on a typed form; a wrong code is refused and
    counted, the run pauses again, the right one verifies; Prefect keeps no answer."""
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from flows.identity import identity_by_code

    request = opened(channels, "DSR-2026-1602")
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            with run_settings(channels.config):
                outcome["result"] = identity_by_code(request_id=request)
        except BaseException as exc:
            outcome["error"] = exc

    def paused_run(times: int) -> str:
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while True:
                runs = runs_named(client, request)
                paused = runs and runs[0].state and runs[0].state.is_paused()
                if paused and channels.events(request).count("identity_code_wrong") == times:
                    return str(runs[0].id)
                assert time.monotonic() < deadline, outcome
                time.sleep(0.3)

    thread = threading.Thread(target=run)
    thread.start()
    run_id = paused_run(0)
    code = code_in(channels.sent()[0])
    wrong = f"{(int(code) + 3) % 10**CODE_DIGITS:0{CODE_DIGITS}d}"
    resume_flow_run(run_id, run_input={"code": wrong, "officer": "Per"})
    run_id = paused_run(1)
    resume_flow_run(run_id, run_input={"code": code, "officer": "Per"})
    thread.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.verified and result.wrong_attempts == 1  # type: ignore[attr-defined]
    assert channels.events(request)[-2:] == ["identity_code_wrong", "identity_verified"]
    with get_client(sync_client=True) as client:
        from uuid import UUID

        answers = client.filter_flow_run_input(UUID(run_id), "paused-", 100, set())
        assert [a.key for a in answers if a.key.endswith("-response")] == []
        assert all(code not in a.value for a in answers)


def test_sendmail_needs_mail_send_and_answers_202_without_a_body():
    """The emulator's sendMail as Graph documents it (sandbox/emulators/graph/send.py)."""
    store = GraphStore()
    store.add_mailbox(OFFICER_BOX, "Privacy")
    message = {
        "message": {
            "subject": "hello",
            "body": {"contentType": "Text", "content": "hi"},
            "toRecipients": [{"emailAddress": {"address": SUBJECT}}],
        }
    }

    def token(*roles: str) -> str:
        claims = {"aud": "https://graph.microsoft.com", "roles": list(roles)}
        return f"{_jwt_part({'alg': 'none'})}.{_jwt_part(claims)}.x"

    with EmulatorServer(create_app(store), name="graph-sendmail") as url:
        endpoint = f"{url}/v1.0/users/{OFFICER_BOX}/sendMail"
        reader = {"Authorization": f"Bearer {token('Mail.ReadWrite')}"}
        sender = {"Authorization": f"Bearer {token('Mail.Send')}"}
        assert httpx.post(endpoint, json=message, headers=reader).status_code == 403
        nobody = {"message": {**message["message"], "toRecipients": []}}
        refused = httpx.post(endpoint, json=nobody, headers=sender)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "ErrorInvalidRecipients"
        accepted = httpx.post(endpoint, json=message, headers=sender)
        assert accepted.status_code == 202
        assert accepted.content == b""
        unsaved = {**message, "saveToSentItems": False}
        assert httpx.post(endpoint, json=unsaved, headers=sender).status_code == 202
    box = store.mailbox(OFFICER_BOX)
    assert box is not None
    sent_items = box.folder("sentitems")
    assert sent_items is not None
    saved = [s for s in box.messages.values() if s.resource["parentFolderId"] == sent_items.id]
    assert [s.resource["subject"] for s in saved] == ["hello"]  # saveToSentItems: false kept none
