"""The erasure flow through Prefect: dry run, approval (CLI, UI pause resumed through the API,
rejection), verification, receipt, and resuming after a crash at every step."""

import json
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from connectors.sql.connector import SqlConnector
from connectors.sql.row_changes import RowChanges
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from dsrflow.run_settings import run_settings
from flows.approval import at_terminal
from flows.erasure import erasure_request
from sandbox.runtime import onprem_source, write_config
from tests.test_sql_erasure import snapshot

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
SUBJECT = "al@example.com"


@pytest.fixture(autouse=True)
def hmac_key(monkeypatch):
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "test-key")


@pytest.fixture
def box(tmp_path, sandbox_sqlite_url):
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "out")
    return config, sandbox_sqlite_url


def erase(config, request_id, approved_by=None, **kwargs):
    """The erasure as a terminal's --approve runs it; without ``approved_by`` as a deployment's
    run does (it pauses for the officer, unless an approved plan resumes)."""
    run = lambda: erasure_request(  # noqa: E731
        request_id=request_id, subject_emails=[SUBJECT], **kwargs
    )
    with run_settings(config):
        if approved_by is None:
            return run()
        with at_terminal(approved_by):
            return run()


def events(config, request_id):
    ledger = Ledger(load_config(config).ledger_url)
    try:
        assert ledger.verify() == []
        return [e.event for e in ledger.entries(request_id)]
    finally:
        ledger.close()


def test_dry_run_changes_nothing(box):
    config, url = box
    before = snapshot(url)
    result = erase(config, "DSR-2026-0101", dry_run=True)
    assert result.status == "dry_run"
    assert result.plan == {"delete": 5, "redact": 2, "keep": 5}
    assert snapshot(url) == before
    plan_file = load_config(config).output_dir / "DSR-2026-0101" / "plan.json"
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    assert events(config, "DSR-2026-0101") == ["received", "planned", "dry_run"]


def test_approved_on_the_command_line_completes_with_receipt(box):
    config, url = box
    result = erase(config, "DSR-2026-0102", approved_by="Ingrid Officer")
    assert result.status == "completed"
    assert result.executed == {"onprem": {"done": 7, "already_done": 0, "skipped": 0, "failed": 0}}
    receipt = json.loads(Path(result.receipt).read_text())
    assert receipt["approved_by"] == "Ingrid Officer"
    assert len(receipt["changed"]) == 7
    kept = {line["location"]: line for line in receipt["kept"]}
    assert kept["invoices"]["keep_until"] == "2030-12-31"
    assert "Bookkeeping Act" in kept["invoices"]["reason"]
    html = (Path(result.receipt).parent / "receipt.html").read_text()
    assert "Erasure receipt" in html
    assert "31 December 2030" in html and "31. desember 2030" in html
    assert events(config, "DSR-2026-0102")[-7:] == [
        "approved",
        "identity_not_required",  # the sandbox's invented subjects: said, not skipped in silence
        "status:in_progress",
        "executed",
        "holds_queued",
        "subject_forgotten",
        "status:completed",
    ]
    connector = SqlConnector("onprem", load_config(config).load_mappings()["onprem"], url)
    from dsrflow.request import Subject

    assert list(connector.discover(Subject.from_raw([SUBJECT]))) == []
    connector.close()


def _paused_run(config, request_id):
    """Start the erasure in a thread; return its flow run id once it is paused."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    outcome = {}

    def target():
        try:
            outcome["result"] = erase(config, request_id)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[request_id])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            )
            if runs and runs[0].state and runs[0].state.is_paused():
                return runs[0].id, thread, outcome
            time.sleep(0.3)
    raise AssertionError(f"the flow never paused: {outcome}")


@pytest.mark.parametrize("approved", [True, False])
def test_pause_resumed_through_the_api(box, approved):
    from prefect.flow_runs import resume_flow_run

    config, url = box
    before = snapshot(url)
    request_id = "DSR-2026-0103" if approved else "DSR-2026-0104"
    flow_run_id, thread, outcome = _paused_run(config, request_id)
    assert snapshot(url) == before  # nothing happens before the officer decides
    assert "status:awaiting_approval" in events(config, request_id)
    resume_flow_run(
        flow_run_id, run_input={"approved": approved, "officer": "Ingrid", "note": "checked"}
    )
    thread.join(timeout=90)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    if approved:
        assert result.status == "completed"
        assert snapshot(url) != before
    else:
        assert result.status == "rejected"
        assert snapshot(url) == before
        assert events(config, request_id)[-1] == "status:rejected"


def test_crash_at_every_step_then_rerun_ends_like_an_uninterrupted_run(box, tmp_path, monkeypatch):
    config, url = box
    pristine = tmp_path / "pristine.db"
    shutil.copy(url.removeprefix("sqlite:///"), pristine)

    # The reference: one uninterrupted run on a copy.
    reference_config = tmp_path / "reference.yaml"
    reference_db = tmp_path / "reference.db"
    shutil.copy(pristine, reference_db)
    write_config(reference_config, onprem_source(f"sqlite:///{reference_db}"), tmp_path / "ref")
    erase(reference_config, "DSR-2026-0110", approved_by="Ingrid")
    expected = snapshot(f"sqlite:///{reference_db}")

    original = RowChanges._execute
    for crash_after in range(7):  # the plan has 7 actions that change data
        database = url.removeprefix("sqlite:///")
        shutil.copy(pristine, database)
        request_id = f"DSR-2026-02{crash_after:02d}"
        calls = {"n": 0}

        def crashing(self, action, calls=calls, crash_after=crash_after):
            if calls["n"] == crash_after:
                raise KeyboardInterrupt("power cut")  # dies between two actions
            calls["n"] += 1
            return original(self, action)

        monkeypatch.setattr(RowChanges, "_execute", crashing)
        with pytest.raises(BaseException, match="power cut"):
            erase(config, request_id, approved_by="Ingrid")
        monkeypatch.setattr(RowChanges, "_execute", original)
        result = erase(config, request_id)  # no approval needed: the approved plan resumes
        assert result.status == "completed", crash_after
        # What the interrupted attempt did is this request's work: done, not already_done.
        assert result.executed["onprem"]["done"] == 7
        assert result.executed["onprem"]["already_done"] == 0
        receipt = json.loads(Path(result.receipt).read_text())
        assert {line["outcome"] for line in receipt["changed"]} == {"done"}
        assert snapshot(url) == expected, crash_after
        assert "resumed" in events(config, request_id)


def test_cli_erase_dry_run_then_approve(box, tmp_path):
    from typer.testing import CliRunner

    from dsrflow.cli import app

    config, url = box
    runner = CliRunner()
    before = snapshot(url)
    args = ["erase", "--subject", SUBJECT, "--config", str(config), "--out", str(tmp_path / "o")]
    dry = runner.invoke(app, [*args, "--dry-run", "--request-id", "DSR-2026-0301"])
    assert dry.exit_code == 0, dry.output
    assert "dry_run" in dry.output
    assert snapshot(url) == before
    done = runner.invoke(
        app, [*args, "--approve", "--officer", "Ingrid", "--request-id", "DSR-2026-0302"]
    )
    assert done.exit_code == 0, done.output
    assert "completed" in done.output
    assert "receipt.json" in done.output
    assert snapshot(url) != before


def test_records_kept_under_a_hold_are_erased_when_it_ends(box):
    import datetime as dt

    from flows.retention import retention_sweep

    config, url = box
    erase(config, "DSR-2026-0701", approved_by="Ingrid")
    ledger = Ledger(load_config(config).ledger_url)
    queued = ledger.due_holds(dt.date(2031, 1, 1))
    assert ledger.due_holds(dt.date(2026, 12, 1)) == []  # nothing due before the holds end
    ledger.close()
    # Licence 1 is also another person's (its billing contact): it stays kept after its hold.
    assert sorted(a.record_id for _, a in queued) == [
        "onprem:invoices:id=1",
        "onprem:licenses:id=2",
    ]
    before = snapshot(url)
    with run_settings(config):
        summary = retention_sweep(as_of=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    assert summary.holds_ended == 2
    after = snapshot(url)
    assert after["invoices"][1]["number"] is None  # redacted, as its table's erasure says
    assert after["invoices"][2] == before["invoices"][2]  # the colleague's invoice
    assert after["licenses"][2]["sen"] is None
    assert after["licenses"][2]["billing_contact_id"] == 4  # links stay
    assert after["licenses"][1] == before["licenses"][1]
    with run_settings(config):
        again = retention_sweep(as_of=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    assert again.holds_ended == 0
