"""Approval that cannot be skipped (issue 11 §2, §4, §6): nothing a run is started with
approves it; a terminal without --approve stops after the plan and ``dsr approve`` / ``dsr
reject`` decide later, for a terminal's request or a paused Prefect run alike; the four-eyes
rule; a consent withdrawal takes effect before the approval; receipts say who decided what."""

from __future__ import annotations

import importlib
import inspect
import json
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from tests.conftest import REPO
from tests.support.runs import wait_paused
from tests.test_sql_erasure import snapshot

pytestmark = [
    pytest.mark.usefixtures("masking_key"),
    pytest.mark.prefect,
    pytest.mark.usefixtures("prefect_harness"),
]
SUBJECT = "al@example.com"


@pytest.fixture
def box(onprem_config, sandbox_sqlite_url):
    return onprem_config, sandbox_sqlite_url


def four_eyes(config: Path) -> Path:
    data = yaml.safe_load(config.read_text())
    data["approval"] = {"four_eyes": True}
    config.write_text(yaml.safe_dump(data))
    return config


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def ledger_of(config: Path) -> Ledger:
    return Ledger(load_config(config).ledger_url)


def events(config: Path, request_id: str) -> list[str]:
    ledger = ledger_of(config)
    try:
        return [e.event for e in ledger.entries(request_id)]
    finally:
        ledger.close()


def test_no_deployment_can_be_started_approved():
    """A deployment's parameters are all anyone starting a run controls: none approves."""
    for deployment in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        parameters = set(inspect.signature(flow.fn).parameters)
        assert not {p for p in parameters if "approv" in p}, deployment["name"]


def test_erasure_refuses_an_approval_parameter(box):
    from prefect.exceptions import ParameterBindError

    from flows.erasure import erasure_request

    config, url = box
    before = snapshot(url)
    with pytest.raises(ParameterBindError), run_settings(config):
        erasure_request(
            request_id="DSR-2026-0801",
            subject_emails=[SUBJECT],
            approved_by="anyone",
        )
    assert snapshot(url) == before


def test_terminal_without_approve_stops_after_the_plan_then_approve_executes_it(box, tmp_path):
    config, url = box
    before = snapshot(url)
    out = tmp_path / "o"
    args = ["--config", str(config), "--out", str(out)]
    planned = cli("erase", "--subject", SUBJECT, "--request-id", "DSR-2026-0802", *args)
    assert planned.exit_code == 0, planned.output
    assert "awaiting_approval" in planned.output
    assert "dsr approve DSR-2026-0802" in planned.output
    assert snapshot(url) == before  # nothing changed, and nothing waits for a UI
    assert events(config, "DSR-2026-0802")[-1] == "status:awaiting_approval"

    done = cli("approve", "DSR-2026-0802", "--officer", "Ingrid", "--note", "checked", *args)
    assert done.exit_code == 0, done.output
    assert "completed" in done.output
    assert snapshot(url) != before
    receipt = json.loads((out / "DSR-2026-0802" / "receipt.json").read_text())
    assert receipt["approved_by"] == "Ingrid"
    # The receipt carries the ledger's head: a later rewrite of the chain shows against it.
    kept = cli("ledger", "verify", "--head", receipt["ledger_head"], "--config", str(config))
    assert kept.exit_code == 0, kept.output
    trail = events(config, "DSR-2026-0802")
    assert trail.index("approved") < trail.index("executed")
    assert trail[-2:] == ["subject_forgotten", "status:completed"]
    # After the erasure the ledger keeps keyed hashes of her identifiers, not the address.
    ledger_file = Path(load_config(config).ledger_url.removeprefix("sqlite:///"))
    assert SUBJECT.encode() not in ledger_file.read_bytes()
    ledger = ledger_of(config)
    try:
        assert ledger.verify() == []
        assert ledger.requests_of(Subject.from_raw([SUBJECT])) == ["DSR-2026-0802"]
    finally:
        ledger.close()

    again = cli("approve", "DSR-2026-0802", "--officer", "Ingrid", *args)
    assert again.exit_code == 2
    assert "not awaiting approval" in again.output


def test_reject_at_the_terminal_changes_nothing_and_closes(box):
    config, url = box
    before = snapshot(url)
    args = ["--config", str(config)]
    assert cli("erase", "--subject", SUBJECT, "--request-id", "DSR-2026-0803", *args).exit_code == 0
    rejected = cli("reject", "DSR-2026-0803", "--reason", "identity not proven", *args)
    assert rejected.exit_code == 0, rejected.output
    assert snapshot(url) == before
    assert events(config, "DSR-2026-0803")[-2:] == ["rejected", "status:rejected"]
    assert cli("approve", "DSR-2026-0803", "--officer", "Per", *args).exit_code == 2
    assert snapshot(url) == before


def test_approve_resumes_a_run_paused_in_prefect(box):
    """A run started as a deployment's is (no terminal): it pauses; ``dsr approve`` answers its
    Resume form through Prefect's API."""
    from prefect.client.orchestration import get_client

    from flows.erasure import erasure_request

    config, url = box
    before = snapshot(url)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            with run_settings(config):
                outcome["result"] = erasure_request(
                    request_id="DSR-2026-0804", subject_emails=[SUBJECT]
                )
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while "status:awaiting_approval" not in events(config, "DSR-2026-0804"):
        assert time.monotonic() < deadline, outcome
        time.sleep(0.3)
    with get_client(sync_client=True) as client:  # the run is paused, not finished
        wait_paused(client, "DSR-2026-0804", outcome, seconds=max(deadline - time.monotonic(), 1))
    assert snapshot(url) == before
    answered = cli("approve", "DSR-2026-0804", "--officer", "Ingrid", "--config", str(config))
    assert answered.exit_code == 0, answered.output
    assert "resumes" in answered.output
    thread.join(timeout=90)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].status == "completed"
    assert snapshot(url) != before
    ledger = ledger_of(config)
    try:
        approvals = [e for e in ledger.entries("DSR-2026-0804") if e.event == "approved"]
    finally:
        ledger.close()
    assert [a.actor for a in approvals] == ["Ingrid"]


def test_four_eyes_refuses_the_opener_and_takes_another_officer(box):
    config, url = box
    four_eyes(config)
    before = snapshot(url)
    args = ["--config", str(config)]
    own = cli(
        "erase", "--subject", SUBJECT, "--approve", "--officer", "Ingrid", "--request-id",
        "DSR-2026-0805", *args,
    )  # fmt: skip
    assert own.exit_code == 2
    assert "four_eyes" in own.output
    assert snapshot(url) == before
    opened = cli(
        "erase", "--subject", SUBJECT, "--officer", "Ingrid", "--request-id", "DSR-2026-0806",
        *args,
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    refused = cli("approve", "DSR-2026-0806", "--officer", "ingrid", *args)
    assert refused.exit_code == 2
    assert "four_eyes" in refused.output
    assert snapshot(url) == before
    other = cli("approve", "DSR-2026-0806", "--officer", "Per", *args)
    assert other.exit_code == 0, other.output
    assert snapshot(url) != before


def test_consent_withdrawal_takes_effect_before_the_approval(box):
    config, url = box
    before = snapshot(url)
    args = ["--config", str(config)]
    result = cli(
        "withdraw-consent", "--subject", SUBJECT, "--purpose", "analytics", "--request-id",
        "DSR-2026-0807", *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "awaiting_approval" in result.output
    now = snapshot(url)
    assert now["consents"][1]["withdrawn_at"] is not None  # recorded at once
    assert now["consents"][2] == before["consents"][2]
    assert now["usage_events"] == before["usage_events"]  # the erasure waits for the officer
    trail = events(config, "DSR-2026-0807")
    assert trail[1] == "consent_withdrawn"
    assert "took_effect" in trail
    assert cli("approve", "DSR-2026-0807", "--officer", "Per", *args).exit_code == 0
    after = snapshot(url)
    assert after["usage_events"][1]["user_hash"] is None
    assert after["consents"][1]["withdrawn_at"] == now["consents"][1]["withdrawn_at"]


def test_restriction_receipt_claims_no_approval_and_keeps_the_received_time(box, tmp_path):
    config, _ = box
    out = tmp_path / "r"
    result = cli(
        "restrict", "--subject", SUBJECT, "--officer", "Ingrid", "--received-at", "2026-11-20",
        "--request-id", "DSR-2026-0808", "--out", str(out), "--config", str(config),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    receipt = json.loads((out / "DSR-2026-0808" / "receipt.json").read_text())
    assert receipt["approved_by"] is None
    assert receipt["recorded_by"] == "Ingrid"
    assert receipt["received_at"].startswith("2026-11-20")
    html = (out / "DSR-2026-0808" / "receipt.html").read_text()
    assert "approved by" not in html
    assert "needed\nno approval" in html or "needed no approval" in html
    assert "approved" not in events(config, "DSR-2026-0808")


def test_received_at_is_the_ledgers_and_the_receipts(box, tmp_path):
    config, _ = box
    out = tmp_path / "o"
    result = cli(
        "erase", "--subject", SUBJECT, "--approve", "--officer", "Ingrid", "--received-at",
        "2026-11-03T09:30:00+00:00", "--request-id", "DSR-2026-0809", "--out", str(out),
        "--config", str(config),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    receipt = json.loads((out / "DSR-2026-0809" / "receipt.json").read_text())
    assert receipt["received_at"].startswith("2026-11-03T09:30")
    ledger = ledger_of(config)
    try:
        row = ledger.request_row("DSR-2026-0809")
    finally:
        ledger.close()
    assert row is not None
    assert row["received_at"].isoformat().startswith("2026-11-03T09:30")
    assert row["due_at"].isoformat() == "2026-12-03"


def test_a_request_id_is_never_reused_for_another_subject(box):
    config, url = box
    args = ["--config", str(config), "--request-id", "DSR-2026-0810", "--dry-run"]
    assert cli("erase", "--subject", SUBJECT, *args).exit_code == 0
    before = snapshot(url)
    other = cli("erase", "--subject", "sal@example.com", "--approve", *args[:-1])
    assert other.exit_code == 2
    assert "another subject" in other.output
    assert snapshot(url) == before
