"""Places without an API (issue 15, "manual tasks"): each manual source in the config is a task
the request waits for; a run started as a deployment's pauses with a typed form answered through
Prefect's real API; a terminal's request stays awaiting_manual until ``dsr manual answer``; the
export, its manifest and the receipt carry each answer; a wrong answer is refused."""

from __future__ import annotations

import datetime as dt
import json
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from dsrflow.manual import ManualAnswerError, check_answer
from dsrflow.request import RequestType
from dsrflow.run_settings import run_settings
from tests.conftest import REPO
from tests.support.runs import runs_named
from tests.test_sql_erasure import snapshot

pytestmark = [
    pytest.mark.usefixtures("masking_key"),
    pytest.mark.prefect,
    pytest.mark.usefixtures("prefect_harness"),
]
SUBJECT = "al@example.com"
TODAY = dt.datetime.now(dt.UTC).date().isoformat()
PHONES = {
    "name": "sales-phones",
    "instructions": "Search the sales phones' contacts for the subject.",
    "responsible": "Head of sales",
}
PAPER = {
    "name": "paper",
    "instructions": "Look through the contracts binder.",
    "responsible": "Office manager",
    "rights": ["access"],
}


def with_manual(config: Path, *sources: dict[str, Any]) -> Path:
    data = yaml.safe_load(config.read_text())
    data["manual_sources"] = list(sources)
    config.write_text(yaml.safe_dump(data))
    return config


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def ledger_of(config: Path) -> Ledger:
    return Ledger(load_config(config).ledger_url)


def events(config: Path, request_id: str) -> list[str]:
    with ledger_of(config) as ledger:
        assert ledger.verify() == []
        return [e.event for e in ledger.entries(request_id)]


def status(config: Path, request_id: str) -> str | None:
    with ledger_of(config) as ledger:
        row = ledger.request_row(request_id)
    return str(row["status"]) if row else None


def wait_until(check: Callable[[], bool], outcome: dict[str, Any], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert "error" not in outcome, outcome["error"]
        assert time.monotonic() < deadline, outcome
        time.sleep(0.3)


def in_thread(
    run: Callable[[], Any], config: Path, out: Path
) -> tuple[threading.Thread, dict[str, Any]]:
    """A flow run as a deployment's worker runs it: no terminal, so it pauses for forms (a new
    thread starts with an empty context: its run settings are set in it)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            with run_settings(config, out):
                outcome["result"] = run()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def paused_run(request_id: str) -> Any:
    """The run named after the request, if Prefect shows it paused."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = runs_named(client, request_id)
    return runs[0] if runs and runs[0].state and runs[0].state.is_paused() else None


def asking(config: Path, request_id: str, source: str) -> Callable[[], bool]:
    """The ledger says the paused run shows ``source``'s form, and Prefect shows it paused."""

    def check() -> bool:
        with ledger_of(config) as ledger:
            statuses = [e for e in ledger.entries(request_id) if e.event.startswith("status:")]
        if not statuses or statuses[-1].details.get("asking") != source:
            return False
        return paused_run(request_id) is not None

    return check


def run_inputs(flow_run_id: Any) -> set[str]:
    """The keys of the phone task's inputs Prefect keeps for the run (``N-schema`` ...)."""
    from prefect.client.orchestration import get_client

    prefix = "paused-manual-sales-phones-"
    with get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(flow_run_id, prefix, 100, set())
    return {i.key.removeprefix(prefix) for i in found}


def test_a_broken_manual_source_is_one_line_and_exit_2(onprem_config):
    with_manual(onprem_config, {**PHONES, "name": "Sales Phones"})
    result = cli("requests", "--config", str(onprem_config))
    assert result.exit_code == 2
    assert "manual_sources.0.name" in result.output
    assert "'Sales Phones' is not a manual source name" in result.output
    assert "Traceback" not in result.output
    with_manual(onprem_config, PHONES, {**PAPER, "name": "sales-phones"})
    twice = cli("requests", "--config", str(onprem_config))
    assert twice.exit_code == 2
    assert "'sales-phones' is named twice" in twice.output
    with_manual(onprem_config, {**PHONES, "rights": ["access", "objection"]})
    unknown = cli("requests", "--config", str(onprem_config))
    assert unknown.exit_code == 2
    assert "manual_sources.0.rights.1" in unknown.output


def test_the_shipped_configs_name_their_places_without_an_api(tmp_path):
    from sandbox.runtime import MANUAL_SOURCES, onprem_source, write_config

    kantega = load_config(REPO / "config" / "kantega.yaml")
    places = {s.name: s for s in kantega.manual_sources}
    assert set(places) == {"mobile-devices", "paper"}  # the policy: devices may hold e-mails
    assert places["mobile-devices"].applies_to(RequestType.ERASURE)
    assert not places["paper"].applies_to(RequestType.RESTRICTION)
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source("sqlite:///x.db"), tmp_path / "out")
    assert load_config(config).manual_sources == []  # the sandbox has none unless asked
    write_config(
        config, onprem_source("sqlite:///x.db"), tmp_path / "out", manual_sources=MANUAL_SOURCES
    )
    assert [s.name for s in load_config(config).manual_sources] == ["sales-phones", "paper"]


@pytest.mark.parametrize(
    ("request_type", "fields", "message"),
    [
        (RequestType.ERASURE, {"outcome": "erased"}, "erased needs the date"),
        (RequestType.ACCESS, {"outcome": "found"}, "found needs the attachment"),
        (RequestType.ACCESS, {"outcome": "erased", "on": TODAY}, "does not answer the access"),
        (RequestType.ERASURE, {"outcome": "found", "attachment": "/x"}, "does not answer"),
        (RequestType.ERASURE, {"outcome": "erased", "on": "2999-01-01"}, "in the future"),
        (RequestType.ERASURE, {"outcome": "kept"}, "kept needs the reason"),
        (RequestType.ACCESS, {"outcome": "found_nothing", "on": TODAY}, "takes no date"),
        (RequestType.ACCESS, {"outcome": "maybe"}, "Input should be"),
        (RequestType.ACCESS, {"outcome": "found_nothing", "officer": ""}, "at least 1 character"),
    ],
)
def test_a_malformed_answer_is_refused(request_type, fields, message):
    with pytest.raises(ManualAnswerError, match=message):
        check_answer({"officer": "Ingrid", **fields}, request_type)


def test_the_terminal_request_is_not_complete_until_every_manual_answer(onprem_config, tmp_path):
    config = with_manual(onprem_config, PHONES, PAPER)
    out = tmp_path / "exports"
    args = ["--config", str(config)]
    started = cli("access", "--subject", SUBJECT, "--request-id", "DSR-2026-0901", "--out",
                  str(out), *args)  # fmt: skip
    assert started.exit_code == 0, started.output
    assert "not complete" in started.output
    assert "sales-phones, paper" in started.output
    assert status(config, "DSR-2026-0901") == "awaiting_manual"
    assert not (out / "DSR-2026-0901" / "export.json").exists()  # no answer pretends complete
    listed = cli("requests", *args)
    assert "DSR-2026-0901" in listed.output and "awaiting_manual" in listed.output

    # A wrong answer changes nothing; the phone's right answer still leaves the paper open.
    scan = tmp_path / "DSR-2026-0901-phone.vcf"
    scan.write_text("BEGIN:VCARD\nEMAIL:al@example.com\nEND:VCARD\n")
    wrong = cli("manual", "answer", "DSR-2026-0901", "sales-phones", "--outcome", "found",
                "--officer", "Ingrid", *args)  # fmt: skip
    assert wrong.exit_code == 2
    assert "found needs the attachment" in wrong.output
    unknown = cli("manual", "answer", "DSR-2026-0901", "laptops", "--outcome", "found_nothing",
                  "--officer", "Ingrid", *args)  # fmt: skip
    assert unknown.exit_code == 2
    assert "no manual source 'laptops'" in unknown.output
    assert "manual_answered" not in events(config, "DSR-2026-0901")
    phone = cli("manual", "answer", "DSR-2026-0901", "sales-phones", "--outcome", "found",
                "--attachment", str(scan), "--note", "one contact card", "--officer", "Ingrid",
                *args)  # fmt: skip
    assert phone.exit_code == 0, phone.output
    assert "not complete" in phone.output and "paper" in phone.output
    assert status(config, "DSR-2026-0901") == "awaiting_manual"
    again = cli("manual", "answer", "DSR-2026-0901", "sales-phones", "--outcome",
                "found_nothing", "--officer", "Per", *args)  # fmt: skip
    assert again.exit_code == 2
    assert "already answered" in again.output

    # The last answer runs the request again here: it completes with both answers.
    paper = cli("manual", "answer", "DSR-2026-0901", "paper", "--outcome", "found_nothing",
                "--note", "binder checked", "--officer", "Per", *args)  # fmt: skip
    assert paper.exit_code == 0, paper.output
    assert "export written to" in paper.output
    assert status(config, "DSR-2026-0901") == "completed"
    folder = out / "DSR-2026-0901"
    document = json.loads((folder / "export.json").read_text())
    answers = {m["name"]: m for m in document["manual_sources"]}
    assert answers["sales-phones"]["outcome"] == "found"
    assert answers["sales-phones"]["officer"] == "Ingrid"
    assert answers["sales-phones"]["responsible"] == "Head of sales"
    assert answers["paper"]["outcome"] == "found_nothing"
    assert answers["paper"]["note"] == "binder checked"
    copied = folder / answers["sales-phones"]["file"]
    assert copied.read_bytes() == scan.read_bytes()
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert stat.S_IMODE(copied.parent.stat().st_mode) == 0o700
    manifest = json.loads((folder / "manifest.json").read_text())
    assert answers["sales-phones"]["file"] in [f["name"] for f in manifest["files"]]
    html = (folder / "export.html").read_text()
    assert "Places searched by hand" in html and "binder checked" in html
    copied.write_bytes(b"changed")
    changed = cli("export", "verify", str(folder))
    assert changed.exit_code == 1 and copied.name in changed.output
    # The ledger keeps the outcome and digests; the note and the file's name stay out of it.
    trail = events(config, "DSR-2026-0901")
    assert trail.count("manual_answered") == 2
    ledger_file = Path(load_config(config).ledger_url.removeprefix("sqlite:///"))
    assert b"binder checked" not in ledger_file.read_bytes()
    assert b"phone.vcf" not in ledger_file.read_bytes()


def test_access_run_pauses_for_each_task_and_prefect_api_answers(onprem_config, tmp_path):
    """Started as a deployment's run: a form per manual source; ``dsr manual answer`` resumes
    it through Prefect's API, a malformed answer through the API is refused and asked again."""
    from prefect.flow_runs import resume_flow_run

    from flows.access import access_request

    config = with_manual(onprem_config, PHONES, PAPER)
    out = tmp_path / "exports"
    thread, outcome = in_thread(
        lambda: access_request(request_id="DSR-2026-0902", subject_emails=[SUBJECT]), config, out
    )
    wait_until(asking(config, "DSR-2026-0902", "sales-phones"), outcome)
    assert status(config, "DSR-2026-0902") == "awaiting_manual"
    run = paused_run("DSR-2026-0902")
    # The UI's form: what the API would send for a "found" without its file.
    resume_flow_run(run.id, run_input={"outcome": "found", "note": "", "officer": "Ingrid"})
    wait_until(lambda: "manual_answer_refused" in events(config, "DSR-2026-0902"), outcome)
    wait_until(asking(config, "DSR-2026-0902", "sales-phones"), outcome)
    # The refused answer left Prefect's database; asked again under a new key.
    assert run_inputs(run.id) == {"1-description", "1-schema", "2-description", "2-schema"}

    answered = cli("manual", "answer", "DSR-2026-0902", "sales-phones", "--outcome",
                   "found_nothing", "--note", "three phones", "--officer", "Ingrid",
                   "--config", str(config))  # fmt: skip
    assert answered.exit_code == 0, answered.output
    assert "resumes" in answered.output
    wait_until(asking(config, "DSR-2026-0902", "paper"), outcome)
    assert not {k for k in run_inputs(run.id) if k.endswith("response")}  # nor the note
    assert "export.json" not in {p.name for p in (out / "DSR-2026-0902").glob("*")}
    resume_flow_run(
        run.id, run_input={"outcome": "found_nothing", "note": "none", "officer": "Per"}
    )
    thread.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.status == "completed"
    document = json.loads((out / "DSR-2026-0902" / "export.json").read_text())
    assert [(m["name"], m["outcome"], m["officer"]) for m in document["manual_sources"]] == [
        ("sales-phones", "found_nothing", "Ingrid"),
        ("paper", "found_nothing", "Per"),
    ]
    trail = events(config, "DSR-2026-0902")
    assert trail.count("manual_asked") == 2 and trail.count("manual_answered") == 2
    assert trail[-1] == "status:completed"


def test_erasure_asks_after_approval_and_before_execution(
    onprem_config, tmp_path, sandbox_sqlite_url
):
    """The plan approved, the run pauses for the phone; nothing is erased until it is
    answered; the receipt says what was done on the phone and when."""
    from flows.erasure import erasure_request

    config = with_manual(onprem_config, PHONES, PAPER)  # paper: access only
    out = tmp_path / "plans"
    before = snapshot(sandbox_sqlite_url)
    thread, outcome = in_thread(
        lambda: erasure_request(request_id="DSR-2026-0903", subject_emails=[SUBJECT]), config, out
    )
    wait_until(lambda: status(config, "DSR-2026-0903") == "awaiting_approval", outcome)
    wait_until(lambda: paused_run("DSR-2026-0903") is not None, outcome)
    early = cli("manual", "answer", "DSR-2026-0903", "sales-phones", "--outcome", "erased",
                "--on", TODAY, "--officer", "Ingrid", "--config", str(config))  # fmt: skip
    assert early.exit_code == 2
    assert "not awaiting a manual answer (its status is awaiting_approval)" in early.output
    approved = cli("approve", "DSR-2026-0903", "--officer", "Ingrid", "--config", str(config))
    assert approved.exit_code == 0, approved.output
    wait_until(asking(config, "DSR-2026-0903", "sales-phones"), outcome)
    assert snapshot(sandbox_sqlite_url) == before  # approved, not yet executed
    done = cli("manual", "answer", "DSR-2026-0903", "sales-phones", "--outcome", "erased",
               "--on", TODAY, "--note", "contact deleted", "--officer", "Per",
               "--config", str(config))  # fmt: skip
    assert done.exit_code == 0, done.output
    thread.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].status == "completed"
    assert snapshot(sandbox_sqlite_url) != before
    receipt = json.loads((out / "DSR-2026-0903" / "receipt.json").read_text())
    assert [(m["name"], m["outcome"], m["on"]) for m in receipt["manual_sources"]] == [
        ("sales-phones", "erased", TODAY)
    ]
    html = (out / "DSR-2026-0903" / "receipt.html").read_text()
    assert "contact deleted" in html and "sales-phones" in html
    trail = events(config, "DSR-2026-0903")
    assert trail.index("approved") < trail.index("manual_answered") < trail.index("executed")


def test_terminal_erasure_stops_for_the_manual_task_and_the_answer_finishes_it(
    onprem_config, tmp_path, sandbox_sqlite_url
):
    config = with_manual(onprem_config, PHONES)
    out = tmp_path / "plans"
    before = snapshot(sandbox_sqlite_url)
    args = ["--config", str(config)]
    started = cli("erase", "--subject", SUBJECT, "--approve", "--officer", "Ingrid",
                  "--request-id", "DSR-2026-0904", "--out", str(out), *args)  # fmt: skip
    assert started.exit_code == 0, started.output
    assert "awaiting_manual" in started.output and "not complete" in started.output
    assert snapshot(sandbox_sqlite_url) == before
    assert not (out / "DSR-2026-0904" / "receipt.json").exists()
    kept = cli("manual", "answer", "DSR-2026-0904", "sales-phones", "--outcome", "kept",
               "--note", "SMS thread under a litigation hold", "--officer", "Ingrid",
               *args)  # fmt: skip
    assert kept.exit_code == 0, kept.output
    assert "completed" in kept.output
    assert snapshot(sandbox_sqlite_url) != before
    receipt = json.loads((out / "DSR-2026-0904" / "receipt.json").read_text())
    assert receipt["manual_sources"][0]["outcome"] == "kept"
    assert receipt["manual_sources"][0]["note"] == "SMS thread under a litigation hold"
    assert status(config, "DSR-2026-0904") == "completed"


def test_rectification_waits_for_the_correction_on_the_phone(onprem_config, tmp_path):
    config = with_manual(onprem_config, PHONES)
    out = tmp_path / "plans"
    args = ["--config", str(config)]
    started = cli("rectify", "--subject", SUBJECT, "--set", "name=Al Berg", "--approve",
                  "--officer", "Ingrid", "--request-id", "DSR-2026-0905", "--out", str(out),
                  *args)  # fmt: skip
    assert started.exit_code == 0, started.output
    assert status(config, "DSR-2026-0905") == "awaiting_manual"
    erased = cli("manual", "answer", "DSR-2026-0905", "sales-phones", "--outcome", "erased",
                 "--on", TODAY, "--officer", "Ingrid", *args)  # fmt: skip
    assert erased.exit_code == 2
    assert "erased does not answer the rectification request" in erased.output
    corrected = cli("manual", "answer", "DSR-2026-0905", "sales-phones", "--outcome",
                    "corrected", "--on", TODAY, "--officer", "Ingrid", *args)  # fmt: skip
    assert corrected.exit_code == 0, corrected.output
    assert status(config, "DSR-2026-0905") == "completed"
    receipt = json.loads((out / "DSR-2026-0905" / "receipt.json").read_text())
    assert [(m["name"], m["outcome"]) for m in receipt["manual_sources"]] == [
        ("sales-phones", "corrected")
    ]
