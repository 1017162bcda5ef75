"""Intake (issue 16, "Intake"): new requests from the service desk's privacy request type and
from a mailbox folder, read over real HTTP from the Jira and Graph emulators with the real
clients, are opened in the ledger as received with their own received time, once; the officer's
confirmation (at the terminal, or the run's pause form answered through Prefect's API) records
the type and identifiers and starts the request with its id only."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.errors import ConfigError
from dsrflow.identifiers import IdentifierError
from dsrflow.intake import UNCLEAR, asked_for, confirm, open_incoming
from dsrflow.intake_channels import read_channels
from dsrflow.ledger import Ledger, LedgerError, Status, UnknownRequest
from dsrflow.request import RequestType
from dsrflow.run_settings import run_settings
from sandbox import jira_seed
from sandbox.emulators.jira.store import REQUEST_TYPE_FIELD
from sandbox.runtime import write_config
from tests.support.graph import Graph
from tests.support.jira_site import MAPPING_PATH, TOKEN_ENV, Site
from tests.support.runs import wait_paused

REPO = Path(__file__).resolve().parents[1]
MAILBOX = "privacy@fjelltopp.example"
FOLDER = "Privacy requests"
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
TICKET_CREATED = dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.UTC)
MAIL_RECEIVED = dt.datetime(2026, 11, 28, 14, 5, tzinfo=dt.UTC)


def privacy_ticket(site: Site) -> None:
    """A privacy request from Bob, and a ticket of another type that reads like one."""
    site.store.request_type_id("SUP", "Privacy request")
    site.store.add_issue(
        "SUP-901",
        {
            "summary": "Personvern",
            "description": "Jeg ber om innsyn i opplysningene dere har om meg.",
            "created": TICKET_CREATED.isoformat(),
            "reporter": {"accountId": "u-bob"},
            REQUEST_TYPE_FIELD: {"requestType": {"name": "Privacy request"}},
        },
    )
    site.store.add_issue(
        "SUP-902",
        {
            "summary": "Please delete my old attachment",
            "description": "Not a privacy request: a file in ticket SUP-3.",
            "created": TICKET_CREATED.isoformat(),
            "reporter": {"accountId": "u-al"},
            REQUEST_TYPE_FIELD: {"requestType": {"name": "Get help"}},
        },
    )


def privacy_mail(
    graph: Graph,
    received: dt.datetime = MAIL_RECEIVED,
    n: int = 1,
    sender: str = "Kari@Example.ORG",
    conversation: str | None = None,
    subject: str = "Request to erase my personal data",
) -> None:
    graph.store.load(
        {
            MAILBOX: [
                {
                    "id": f"privacy-mail-{n}",
                    "subject": subject,
                    "from": {"emailAddress": {"name": "Kari", "address": sender}},
                    "toRecipients": [{"emailAddress": {"address": MAILBOX}}],
                    "receivedDateTime": received.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "sentDateTime": received.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "body": {"contentType": "text", "content": "Please delete everything."},
                    "internetMessageId": f"<privacy-{n}@mail.example.org>",
                    "conversationId": conversation or f"conversation-{n}",
                    "folder": FOLDER,
                }
            ]
        }
    )


@pytest.fixture
def config(tmp_path: Path, site: Site, graph: Graph) -> Path:
    """A config whose intake reads the emulators' desk and mailbox folder."""
    path = tmp_path / "dsrflow.yaml"
    sources = {
        "jira": {
            "kind": "jira",
            "mapping": str(MAPPING_PATH),
            "url": site.url,
            "email": jira_seed.SANDBOX_EMAIL,
            "api_token": {"env": TOKEN_ENV},
            "max_retries": 0,
        },
        "mail": {
            "kind": "mail",
            "mapping": str(REPO / "mappings" / "mail.yaml"),
            "base_url": f"{graph.url}/v1.0",
            "max_retries": 0,
        },
    }
    write_config(path, sources, tmp_path / "out")
    data = yaml.safe_load(path.read_text())
    data["intake"] = {
        "servicedesk": {"source": "jira", "project": "SUP", "request_type": "privacy REQUEST"},
        "mailbox": {"source": "mail", "mailbox": MAILBOX, "folder": FOLDER},
        "lookback_days": 30,
    }
    path.write_text(yaml.safe_dump(data))
    privacy_ticket(site)
    privacy_mail(graph)
    return path


def rows(path: Path) -> dict[str, dict[str, Any]]:
    """The ledger's intake requests by channel reference."""
    loaded = load_config(path)
    with Ledger.from_config(loaded) as ledger:
        with ledger.engine.connect() as conn:
            links = conn.exec_driver_sql("SELECT reference, request_id FROM intake").all()
        return {ref: ledger.request_row(rid) or {} for ref, rid in links}


def run_intake(path: Path) -> Any:
    loaded = load_config(path)
    with Ledger.from_config(loaded) as ledger:
        found = read_channels(loaded, now=NOW)
        return open_incoming(ledger, found, is_own=loaded.controller.is_own_address)


def test_ticket_and_mail_are_opened_with_their_own_received_time(config: Path):
    outcome = run_intake(config)
    assert outcome.counts() == {"servicedesk": 1, "mail": 1, "known": 0}
    opened = rows(config)
    assert set(opened) == {"SUP-901", "conversation-1"}
    ticket, mail = opened["SUP-901"], opened["conversation-1"]
    assert ticket["received_at"] == TICKET_CREATED
    assert mail["received_at"] == MAIL_RECEIVED
    assert ticket["due_at"] == dt.date(2026, 12, 20)  # a month from the ticket, not from now
    assert ticket["status"] == mail["status"] == Status.RECEIVED.value
    assert (ticket["type"], mail["type"]) == ("access", "erasure")
    assert ticket["subject"]["emails"] == ["bob@example.com"]
    assert ticket["subject"]["others"] == ["jira_account_id:u-bob"]
    assert mail["subject"]["emails"] == ["kari@example.org"]
    with Ledger.from_config(load_config(config)) as ledger:
        assert ledger.verify() == []  # the intake table is proven by the chain too
        entries = [e for e in ledger.entries() if e.event == "received"]
    assert sorted(e.details["channel"] for e in entries) == ["mail", "servicedesk"]
    # The chain keeps digests of the references and the subject, never them in clear.
    chained = json.dumps([e.changes for e in entries])
    assert "SUP-901" not in chained and "kari@example.org" not in chained


def test_a_second_run_opens_nothing(config: Path):
    run_intake(config)
    again = run_intake(config)
    assert again.opened == [] and again.known == 2
    assert len(rows(config)) == 2


def test_a_reply_in_the_same_thread_is_not_a_new_request(config: Path, graph: Graph):
    run_intake(config)
    reply = MAIL_RECEIVED + dt.timedelta(days=2)
    privacy_mail(graph, reply, n=4, conversation="conversation-1", subject="Re: any news?")
    again = run_intake(config)
    assert again.opened == [] and again.known == 3
    assert rows(config)["conversation-1"]["received_at"] == MAIL_RECEIVED


def test_a_ticket_of_another_request_type_is_ignored(config: Path, site: Site):
    run_intake(config)
    assert "SUP-902" not in rows(config)
    # ... even though the emulator serves it to the same listing without the type filter.
    assert "SUP-902" in site.store.issues


def test_mail_older_than_the_lookback_is_not_read(config: Path, graph: Graph):
    privacy_mail(graph, NOW - dt.timedelta(days=45), n=2)
    run_intake(config)
    assert "conversation-2" not in rows(config)


def test_a_request_forwarded_from_an_own_address_names_no_requester(config: Path, graph: Graph):
    """The DPO forwarded it: the DPO is not the subject; the officer gives the subject's."""
    privacy_mail(graph, n=3, sender="dpo@fjelltopp.example")
    run_intake(config)
    forwarded = rows(config)["conversation-3"]
    assert forwarded["status"] == Status.RECEIVED.value
    assert forwarded["subject"] == {"emails": [], "phones": []}
    assert rows(config)["conversation-1"]["subject"]["emails"] == ["kari@example.org"]


def test_a_missing_request_type_or_folder_is_an_error_not_an_empty_channel(config: Path):
    data = yaml.safe_load(config.read_text())
    data["intake"]["servicedesk"]["request_type"] = "Privacy requests (old)"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception, match="no request type named"):
        run_intake(config)
    data["intake"]["servicedesk"] = None
    data["intake"]["mailbox"]["folder"] = "Nowhere"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception, match="no top-level folder named 'Nowhere'"):
        run_intake(config)


def test_the_config_names_a_source_of_the_right_kind(config: Path):
    data = yaml.safe_load(config.read_text())
    data["intake"]["mailbox"]["source"] = "jira"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="'jira' is a jira source, not mail"):
        load_config(config)


@pytest.mark.parametrize(
    ("text", "right"),
    [
        ("Jeg ber om innsyn etter artikkel 15", "access"),
        ("Please send me a copy of my data", "access"),
        ("Vennligst slett alle opplysninger om meg", "erasure"),
        ("I want to be forgotten", "erasure"),
        ("Adressen min er feil i systemet, kan dere rette opp", "rectification"),
        ("Jeg trekker tilbake mitt samtykke", "consent_withdrawal"),
        ("Please restrict the processing of my data", "restriction"),
        ("Delete my data and send me a copy first", UNCLEAR),
        ("Hei, jeg har et spørsmål om personvern", UNCLEAR),
    ],
)
def test_the_right_asked_for(text: str, right: str):
    assert asked_for(text) == right


def test_confirmation_is_needed_and_given_once(config: Path):
    run_intake(config)
    request_id = rows(config)["SUP-901"]["id"]
    with Ledger.from_config(load_config(config)) as ledger:
        with pytest.raises(UnknownRequest, match="not confirmed yet"):
            ledger.request(request_id)  # what every request flow reads first
        with pytest.raises(IdentifierError, match="at least one e-mail"):
            confirm(ledger, request_id, RequestType.ACCESS, "Ingrid", use_requester=False)
        confirm(ledger, request_id, RequestType.ERASURE, "Ingrid", emails=["bob@work.example"])
        request = ledger.request(request_id)
        assert request is not None
        assert request.type is RequestType.ERASURE
        assert request.received_at == TICKET_CREATED
        assert set(request.subject.emails) == {"bob@example.com", "bob@work.example"}
        with pytest.raises(LedgerError, match="not awaiting confirmation"):
            confirm(ledger, request_id, RequestType.ACCESS, "Ingrid")
        assert ledger.verify() == []


def test_dsr_intake_lists_what_it_opened_and_confirms(config: Path):
    runner = CliRunner()
    listed = runner.invoke(app, ["intake", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "2 new" in listed.output
    assert "b***@example.com" in listed.output and "bob@example.com" not in listed.output
    request_id = rows(config)["conversation-1"]["id"]
    assert request_id in listed.output
    confirming = ["intake", "confirm", request_id, "--type", "erasure", "--officer", "Ingrid"]
    bad = runner.invoke(app, [*confirming, "--email", "not-an-address", "--config", str(config)])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1, bad.output
    done = runner.invoke(app, [*confirming, "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert rows(config)["conversation-1"]["status"] == Status.OPEN.value


# -- through Prefect ---------------------------------------------------------------------------


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_confirmation_form_answered_through_prefect_starts_the_request(config: Path):
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from flows.access import access_request
    from flows.intake import confirm_request

    run_intake(config)
    request_id = rows(config)["SUP-901"]["id"]
    deployment_id = access_request.to_deployment(name="access-request").apply()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with run_settings(config):
                outcome["result"] = confirm_request(request_id=request_id)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    with get_client(sync_client=True) as client:
        paused = wait_paused(client, f"confirm-{request_id}", outcome, seconds=60)
        # The form's schema and description name no one (the requester is shown masked).
        stored = client.filter_flow_run_input(paused.id, "", 50, set())
        assert stored and all("bob@example.com" not in s.value for s in stored)
        resume_flow_run(
            paused.id,
            run_input={
                "request_type": "access",
                "use_requester_address": True,
                "officer": "Ingrid",
                "note": "customer account matches",
            },
        )
        thread.join(timeout=90)
        assert "error" not in outcome, outcome.get("error")
        result = outcome["result"]
        started = client.read_flow_run(result.started)
        after = client.filter_flow_run_input(paused.id, "", 50, set())
    # The request's run carries its id only; the answer left Prefect's run inputs.
    assert started.deployment_id == deployment_id
    assert started.parameters == {"request_id": request_id}
    assert not any("customer account matches" in s.value for s in after)
    assert not any(s.key.endswith("-response") for s in after)
    with Ledger.from_config(load_config(config)) as ledger:
        request = ledger.request(request_id)
        entries = list(ledger.entries(request_id))
    assert request is not None and request.type is RequestType.ACCESS
    assert request.subject.emails == ("bob@example.com",)
    assert [e.event for e in entries] == ["received", "intake_confirmed", "started"]
    assert (entries[1].actor, entries[1].details["note"]) == ("Ingrid", "customer account matches")


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_a_subject_other_than_the_requester_is_confirmed_at_the_terminal(config: Path):
    """The form takes no identifiers: unticking the requester leaves the request received."""
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from flows.intake import confirm_request

    run_intake(config)
    request_id = rows(config)["conversation-1"]["id"]
    outcome: dict[str, Any] = {}

    def run() -> None:
        with run_settings(config):  # a new thread starts with an empty context
            outcome.update(result=confirm_request(request_id=request_id))

    thread = threading.Thread(target=run)
    thread.start()
    with get_client(sync_client=True) as client:
        paused = wait_paused(client, f"confirm-{request_id}", outcome, seconds=60)
        answer = {"request_type": "erasure", "use_requester_address": False, "officer": "Ingrid"}
        resume_flow_run(paused.id, run_input=answer)
    thread.join(timeout=90)
    assert outcome["result"].started is None
    row = rows(config)["conversation-1"]
    assert row["status"] == Status.RECEIVED.value
    with Ledger.from_config(load_config(config)) as ledger:
        assert [e.event for e in ledger.entries(request_id)][-1] == "confirmation_at_terminal"


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_scheduled_intake_starts_one_confirmation_per_new_request(config: Path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.intake import confirm_request, intake

    deployment_id = confirm_request.to_deployment(name="confirm-request").apply()
    with run_settings(config):
        first = intake()
    assert len(first.opened) == 2 and first.per_channel == {
        "servicedesk": 1,
        "mail": 1,
        "known": 0,
    }
    with run_settings(config):
        again = intake()
    assert again.opened == [] and again.confirmations == []
    with get_client(sync_client=True) as client:
        started = [client.read_flow_run(run_id) for run_id in first.confirmations]
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["intake"]))
        )
    assert [r.deployment_id for r in started] == [deployment_id] * 2
    assert sorted(r.parameters["request_id"] for r in started) == sorted(first.opened)
    assert all(set(r.parameters) == {"request_id"} for r in started)
    shown = [str(a.data) for a in artifacts]
    assert any(all(request_id in text for request_id in first.opened) for text in shown)
    assert not any("example.com" in text or "example.org" in text for text in shown)


def test_the_generated_sandbox_has_a_request_in_each_channel(tmp_path: Path):
    """`dsr sandbox up` writes an intake section; its desk and mailbox hold one request each."""
    from sandbox import runtime

    with runtime.start(tmp_path / "sandbox") as running:
        listed = CliRunner().invoke(app, ["intake", "--config", str(running.config_path)])
        again = CliRunner().invoke(app, ["intake", "--config", str(running.config_path)])
    assert listed.exit_code == 0, listed.output
    assert "Intake: 2 new, 0 seen before" in listed.output
    assert "servicedesk" in listed.output and "asks for erasure" in listed.output
    assert "mail" in listed.output and "asks for access" in listed.output
    assert "Intake: 0 new, 2 seen before" in again.output


def test_dsr_intake_without_channels_or_with_a_bad_type_says_so_in_one_line(config: Path):
    data = yaml.safe_load(config.read_text())
    del data["intake"]
    bare = config.with_name("bare.yaml")
    bare.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    none = runner.invoke(app, ["intake", "--config", str(bare)])
    assert none.exit_code == 2 and none.output.count("\n") == 1, none.output
    assert "intake.servicedesk" in none.output
    bogus = runner.invoke(
        app, ["intake", "confirm", "DSR-2026-0001", "--type", "forget", "--config", str(config)]
    )
    assert bogus.exit_code == 2 and "--type must be one of" in bogus.output


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_dsr_intake_confirm_starts_the_request_on_the_stack(config: Path, tmp_path: Path):
    """--stack DIR: the confirmed request's deployment starts there, with its id only."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from dsrflow import stack
    from flows.access import access_request

    directory = tmp_path / "stack"
    directory.mkdir(mode=0o700)
    (directory / stack.STATE_FILE).write_text(json.dumps({"api_url": PREFECT_API_URL.value()}))
    stack.credential(directory)  # the harness's server takes any credential
    deployment_id = access_request.to_deployment(name="access-request").apply()
    run_intake(config)
    request_id = rows(config)["conversation-1"]["id"]
    confirming = ["intake", "confirm", request_id, "--type", "access", "--officer", "Ingrid"]
    done = CliRunner().invoke(
        app, [*confirming, "--stack", str(directory), "--config", str(config)]
    )
    assert done.exit_code == 0, done.output
    run_id = done.output.split("flow run ")[1].split()[0]
    with get_client(sync_client=True) as client:
        started = client.read_flow_run(run_id)
    assert started.deployment_id == deployment_id
    assert started.parameters == {"request_id": request_id}
