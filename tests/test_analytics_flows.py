"""Google Analytics in the request flows: erasure and consent withdrawal file a user deletion
per Analytics id of the subject (also an id a consent record holds, found by identity
expansion), after the approval and never before; the receipt carries Google's
deletionRequestTime and what Google still keeps; an access export names the ids and says why
nothing is listed; the ids never stay in Prefect's run parameters; the command line refuses a
bad id with one line. What was filed is read from the Google emulator's own state, over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from connectors.analytics.connector import REMAINS
from connectors.analytics.mapping import AnalyticsMapping
from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from dsrflow.mapping import load_mapping
from dsrflow.plan import Action
from dsrflow.planning import build_consent_plan, build_erasure_plan
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from flows.approval import at_terminal
from sandbox.analytics_part import PROPERTY_ID, start_analytics
from sandbox.onprem_seed import DEMO_SUBJECT
from sandbox.runtime import MAPPINGS, SandboxContext, start, write_config
from tests.support.runs import wait_paused

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

SUBJECT = "al@example.com"
CLIENT = "1197596843.1673515099"
USER = "customer-4711"


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The sandbox's Analytics part: its config entry (the emulator's URL in ``api_url``)."""
    part = start_analytics(SandboxContext(directory=tmp_path / "box"))
    try:
        yield part.sources
    finally:
        part.stop()


def filed(sources: dict[str, Any]) -> dict[str, Any]:
    """What the emulator holds: the deletions filed and the day's count of requests."""
    answer = httpx.get(f"{sources['analytics']['api_url']}/_emulator/analytics", timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def events(config: Path, request_id: str) -> list[str]:
    ledger = Ledger(load_config(config).ledger_url)
    try:
        return [e.event for e in ledger.entries(request_id)]
    finally:
        ledger.close()


def consent_db(tmp_path: Path) -> dict[str, Any]:
    """A SQL source whose consent records hold the visitor's Analytics client id (hers as the
    whole _ga cookie), declared as an identity of kind analytics_client_id (expands_identity),
    and a look-alike's row."""
    url = f"sqlite:///{tmp_path / 'consents.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE consents (id INTEGER PRIMARY KEY, email TEXT, ga_client_id TEXT, "
                "purpose TEXT)"
            )
        )
        conn.execute(
            sa.text(
                f"INSERT INTO consents VALUES (1, '{SUBJECT}', 'GA1.1.{CLIENT}', 'analytics'),"
                " (2, 'sal@example.com', '555.666', 'analytics')"
            )
        )
    engine.dispose()
    mapping = tmp_path / "consents.yaml"
    mapping.write_text(
        "kind: sql\n"
        "categories:\n"
        "  user: {purposes: [consent records], legal_basis: legal_obligation, retention: test}\n"
        "  system: {purposes: [consent records], legal_basis: legal_obligation, retention: t}\n"
        "tables:\n  consents:\n    primary_key: [id]\n"
        "    identities: [{column: email, kind: email}]\n"
        "    expands_identity: [{column: ga_client_id, kind: analytics_client_id}]\n"
        "    columns: {email: {category: user.contact.email}, ga_client_id: {category: user}}\n"
    )
    return {"consents": {"kind": "sql", "url": url, "mapping": str(mapping)}}


def test_erasure_files_the_client_id_a_consent_record_holds(
    analytics: dict[str, Any], tmp_path: Path
) -> None:
    # The officer types the address only: the consent record gives the client id.
    config = tmp_path / "dsrflow.yaml"
    write_config(config, {**consent_db(tmp_path), **analytics}, tmp_path / "out")
    from flows.erasure import erasure_request

    with at_terminal("Ingrid"), run_settings(config):
        result = erasure_request(request_id="DSR-2026-0701", subject_emails=[SUBJECT])
    assert result.status == "completed"
    assert result.executed["analytics"] == {
        "done": 1,
        "already_done": 0,
        "skipped": 0,
        "failed": 0,
    }
    state = filed(analytics)
    # Exactly one request, for her id: not the look-alike's id that sits in the same table.
    assert [(d["propertyId"], d["type"], d["userId"]) for d in state["deletions"]] == [
        (PROPERTY_ID, "CLIENT_ID", CLIENT)
    ]
    assert sum(state["used"].values()) == 1
    receipt = json.loads(Path(result.receipt or "").read_text())
    line = next(x for x in receipt["changed"] if x["source"] == "analytics")
    # Done means requested: the receipt says when Google recorded it and what it still keeps.
    assert line["outcome"] == "done"
    assert line["requested_at"] == state["deletions"][0]["deletionRequestTime"]
    assert line["remains"] == REMAINS
    assert result.remains == {"analytics": 1}
    html = (Path(result.receipt or "").parent / "receipt.html").read_text()
    assert f"deletion requested at {line['requested_at']}" in html


def test_an_approval_given_later_files_the_client_id_a_consent_record_holds(
    analytics: dict[str, Any], tmp_path: Path
) -> None:
    """Planned at a terminal without ``--approve``, the plan waits; ``dsr approve`` resumes
    it in another process, which has only the ledger's identifiers (the address): the id the
    consent record gave at planning is still filed, and only it."""
    config = tmp_path / "dsrflow.yaml"
    write_config(config, {**consent_db(tmp_path), **analytics}, tmp_path / "out")
    args = ["--config", str(config), "--out", str(tmp_path / "out")]
    runner = CliRunner()
    planned = runner.invoke(
        app, ["erase", "--subject", SUBJECT, "--request-id", "DSR-2026-0706", *args]
    )
    assert planned.exit_code == 0, planned.output
    assert "awaiting_approval" in planned.output
    assert filed(analytics)["deletions"] == []
    done = runner.invoke(app, ["approve", "DSR-2026-0706", "--officer", "Ingrid", *args])
    assert done.exit_code == 0, done.output
    assert "completed" in done.output
    assert [(d["type"], d["userId"]) for d in filed(analytics)["deletions"]] == [
        ("CLIENT_ID", CLIENT)
    ]


def test_an_erasure_without_an_analytics_id_says_nothing_was_asked_of_analytics(
    analytics: dict[str, Any], tmp_path: Path
) -> None:
    from flows.erasure import erasure_request

    config = tmp_path / "dsrflow.yaml"
    write_config(config, analytics, tmp_path / "out")
    with at_terminal("Ingrid"), run_settings(config):
        result = erasure_request(request_id="DSR-2026-0705", subject_emails=[SUBJECT])
    assert result.status == "completed"
    assert filed(analytics)["deletions"] == []
    receipt = json.loads(Path(result.receipt or "").read_text())
    assert receipt["changed"] == []
    [line] = receipt["kept"]
    assert (line["source"], line["action"]) == ("analytics", "not_applicable")
    assert "nothing was asked of it" in line["reason"]


def test_consent_withdrawal_files_the_deletions_only_after_the_approval(
    analytics: dict[str, Any], tmp_path: Path
) -> None:
    """Started as the UI starts it (ids in the run's parameters, no terminal): the run pauses
    with nothing filed and the ids gone from Prefect's parameters; ``dsr approve`` answers the
    pause through Prefect's API, and then both ids are filed."""
    from prefect.client.orchestration import get_client

    from flows.other_rights import consent_withdrawal

    config = tmp_path / "dsrflow.yaml"
    write_config(config, analytics, tmp_path / "out")
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with run_settings(config):
                outcome["result"] = consent_withdrawal(
                    request_id="DSR-2026-0702",
                    purpose="analytics",
                    subject_emails=[SUBJECT],
                    subject_analytics_client_ids=[f"GA1.1.{CLIENT}"],
                    subject_analytics_user_ids=[USER],
                )
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    with get_client(sync_client=True) as client:
        paused = wait_paused(client, "DSR-2026-0702", outcome, seconds=90)
        parameters = client.read_flow_run(paused.id).parameters
    assert filed(analytics)["deletions"] == []  # the approval gate holds
    stored = json.dumps(parameters)
    assert CLIENT not in stored and USER not in stored and SUBJECT not in stored, stored
    assert parameters["subject_analytics_client_ids"] is None

    answered = CliRunner().invoke(
        app, ["approve", "DSR-2026-0702", "--officer", "Ingrid", "--config", str(config)]
    )
    assert answered.exit_code == 0, answered.output
    thread.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].status == "completed"
    state = filed(analytics)
    assert sorted((d["type"], d["userId"]) for d in state["deletions"]) == [
        ("CLIENT_ID", CLIENT),
        ("USER_ID", USER),
    ]
    receipt = json.loads(Path(outcome["result"].receipt).read_text())
    times = sorted(x["requested_at"] for x in receipt["changed"] if x["source"] == "analytics")
    assert times == sorted(d["deletionRequestTime"] for d in state["deletions"])


def test_withdrawing_another_consent_files_nothing_in_analytics(
    analytics: dict[str, Any], tmp_path: Path
) -> None:
    from flows.other_rights import consent_withdrawal

    config = tmp_path / "dsrflow.yaml"
    write_config(config, analytics, tmp_path / "out")
    with at_terminal("Ingrid"), run_settings(config):
        result = consent_withdrawal(
            request_id="DSR-2026-0703",
            purpose="config_collection",
            subject_emails=[SUBJECT],
            subject_analytics_client_ids=[CLIENT],
        )
    assert result.status == "completed"
    assert result.plan == {}
    assert filed(analytics) == {"deletions": [], "used": {}, "daily_quota": 500}


def test_an_access_export_names_the_ids_and_says_why_nothing_is_listed(
    analytics: dict[str, Any], tmp_path: Path
) -> None:
    from flows.access import access_request

    config = tmp_path / "dsrflow.yaml"
    write_config(config, analytics, tmp_path / "out")
    with run_settings(config):
        result = access_request(
            request_id="DSR-2026-0704",
            subject_emails=[SUBJECT],
            subject_analytics_client_ids=[CLIENT],
        )
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    assert result.total_records == 0
    [note] = document["not_searched"]["analytics"]
    assert note.startswith("Google Analytics holds pseudonymous usage data")
    assert f"CLIENT_ID {CLIENT}" in note
    assert "cannot look a person up" not in note  # the generic words, replaced by the mapping's
    assert (
        "Google Analytics holds pseudonymous"
        in (Path(result.export_dir) / "export.html").read_text()
    )
    assert filed(analytics)["deletions"] == []  # an access request files nothing


def test_an_access_in_the_whole_sandbox_covers_analytics_without_filing(tmp_path: Path) -> None:
    """Every source of the sandbox: the others' records in the export, Analytics named with the
    id the request gives, and nothing filed at Google by an access request."""
    from flows.access import access_request

    with start(tmp_path / "sandbox") as box:
        with run_settings(box.config_path):
            result = access_request(
                request_id="DSR-2026-0706",
                subject_emails=[DEMO_SUBJECT],
                subject_analytics_client_ids=[CLIENT],
            )
        assert filed(box.parts["analytics"].sources)["deletions"] == []
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    assert set(document["records"]) == {"onprem", "mail", "drive", "jira", "marketplace"}
    assert f"analytics_client_id:{CLIENT}" in document["subject"]["other_identifiers"]
    [note] = document["not_searched"]["analytics"]
    assert "cannot return it per person" in note
    assert f"CLIENT_ID {CLIENT}" in note


def test_the_access_note_says_when_no_id_was_given() -> None:
    mapping = load_mapping(MAPPINGS / "analytics.yaml")
    assert isinstance(mapping, AnalyticsMapping)
    note = mapping.explain_access(Subject.from_raw([SUBJECT]))
    assert note.endswith("names no Analytics id (Analytics cannot be searched by address)")


def test_consent_plans_file_deletions_only_where_everything_rests_on_that_consent() -> None:
    mapping = load_mapping(MAPPINGS / "analytics.yaml")
    subject = Subject.from_raw([SUBJECT], analytics_user_ids=[USER])
    now = dt.datetime.now(dt.UTC)
    assert [a.native_id for a in build_consent_plan([], {"ga": mapping}, {"analytics"}, now)] == []
    planned = build_consent_plan([], {"ga": mapping}, {"analytics"}, now, subject)
    assert [(a.action, a.native_id) for a in planned] == [
        (Action.DELETE, {"type": "USER_ID", "userId": USER})
    ]
    assert build_consent_plan([], {"ga": mapping}, {"config_collection"}, now, subject) == []
    # Held under legitimate interests too: a withdrawal of consent does not delete it all.
    data = yaml.safe_load((MAPPINGS / "analytics.yaml").read_text())
    data["categories"]["user.behavior.security"] = {
        "purposes": ["fraud prevention"],
        "legal_basis": "legitimate_interests",
        "retention": "14 months",
    }
    mixed = AnalyticsMapping.model_validate(data)
    assert build_consent_plan([], {"ga": mixed}, {"analytics"}, now, subject) == []
    # Erasure files it whatever the basis.
    erased = build_erasure_plan([], {"ga": mixed}, now.date(), subject)
    assert [a.action for a in erased] == [Action.DELETE]


@pytest.mark.parametrize(
    ("command", "option", "value", "complaint"),
    [
        ("erase", "--analytics-client-id", "GA1.1.abc", "a Google Analytics client id is two"),
        ("access", "--analytics-client-id", "12345", "a Google Analytics client id is two"),
        ("withdraw-consent", "--analytics-user-id", "has space", "a Google Analytics user id"),
    ],
)
def test_a_bad_analytics_id_is_one_line_and_exit_2(
    command: str, option: str, value: str, complaint: str, tmp_path: Path
) -> None:
    extra = {"access": ["--out", str(tmp_path)], "withdraw-consent": ["--purpose", "analytics"]}
    result = CliRunner().invoke(
        app,
        [
            command,
            "--subject",
            SUBJECT,
            option,
            value,
            *extra.get(command, []),
            "--config",
            str(tmp_path / "absent.yaml"),  # never read: identifiers are checked first
        ],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert complaint in lines[0]
