"""A vendor's refusal ends in one line naming the source, exit status 2, and a ledger that says
the request failed (issue 12 §4, §7): `dsr access` in this process, as an officer runs it,
against the emulators with a fault injected after the preflight's checks would pass."""

from __future__ import annotations

import logging
import re
import sys

import pytest
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from sandbox.drive_part import start_drive
from sandbox.emulators.faults import FaultSettings
from sandbox.jira_part import start_jira
from sandbox.mail_part import start_mail
from sandbox.runtime import SandboxContext, write_config
from tests.conftest import FIXTURES

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

STARTS = {"drive": start_drive, "jira": start_jira, "mail": start_mail}


@pytest.fixture(autouse=True)
def hmac_key(monkeypatch):
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "test-key")


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when written to: CliRunner swaps it for each invoke."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return False


@pytest.fixture(autouse=True)
def prefect_console_follows_stderr(monkeypatch):
    """Prefect's console handlers keep the stream they were made with (the first invoke's);
    this test reads what each invoke prints, Prefect's lines included."""
    from prefect.logging.handlers import PrefectConsoleHandler

    emit = PrefectConsoleHandler.emit

    def to_current_stderr(handler: PrefectConsoleHandler, record: logging.LogRecord) -> None:
        handler.stream = handler.console.file = _CurrentStderr()
        emit(handler, record)

    monkeypatch.setattr(PrefectConsoleHandler, "emit", to_current_stderr)


@pytest.fixture(autouse=True)
def failed_runs_leave_nothing_personal():
    """Prefect's flow engine writes a failed flow run's exception to result storage whatever
    ``persist_result`` says (prefect/flow_engine.py, ``write_result=True``; issue 12 §6). What
    these failures write must carry no identifier; it is removed again so that the session's
    later check of an empty storage (tests/test_access_flow.py) sees only its own runs."""
    import base64
    import contextlib

    from prefect.settings import PREFECT_HOME

    storage = PREFECT_HOME.value() / "storage"
    before = set(storage.iterdir()) if storage.exists() else set()
    yield
    for path in (set(storage.iterdir()) if storage.exists() else set()) - before:
        raw = path.read_bytes()
        with contextlib.suppress(ValueError):  # a pickle, base64-encoded as Prefect writes it
            raw += base64.b64decode(raw, validate=False)
        for identifier in (b"kari.nordmann", b"al@example.com"):
            assert identifier not in raw, path
        path.unlink()


@pytest.fixture
def one_source(tmp_path):
    """``start(kind, faults)``: that source's emulator, seeded from the test fixtures, with the
    faults, and a config naming it alone."""
    parts = []

    def start(kind: str, faults: FaultSettings):
        context = SandboxContext(directory=tmp_path, fixtures=FIXTURES / kind, faults=faults)
        parts.append(STARTS[kind](context))
        config = tmp_path / "dsrflow.yaml"
        write_config(config, parts[-1].sources, tmp_path / "out")
        return config

    yield start
    for part in parts:
        part.stop()


def access(config, subject: str, request_id: str):
    return CliRunner().invoke(
        app,
        [
            "access",
            "--subject",
            subject,
            "--request-id",
            request_id,
            "--out",
            str(config.parent / "export"),
            "--config",
            str(config),
        ],
    )


def status_of(config, request_id: str) -> str:
    ledger = Ledger(load_config(config).ledger_url)
    try:
        return [e.event for e in ledger.entries(request_id)][-1]
    finally:
        ledger.close()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("kind", "faults", "subject", "reason"),
    [
        pytest.param(
            "drive",
            FaultSettings(fail_path=r"/export$", fail_status=404, fail_count=1000),
            "kari.nordmann@example.com",
            "HTTP 404",
            id="drive-404-on-files.export",
        ),
        pytest.param(
            "jira",
            FaultSettings(fail_path=r"/search(/jql)?$", fail_status=404, fail_count=1000),
            "al@example.com",
            "Jira refused .*HTTP 404",
            id="jira-404-on-search",
        ),
        pytest.param(
            "mail",
            FaultSettings(
                fail_path=r"/\$batch$", fail_status=400, fail_count=1000, fail_code="BadRequest"
            ),
            "al@example.com",
            "HTTP 400 BadRequest",
            id="graph-batch-refused",
        ),
    ],
)
def test_a_vendors_refusal_is_one_error_line_exit_2_and_a_failed_request(
    one_source, kind, faults, subject, reason
):
    config = one_source(kind, faults)
    result = access(config, subject, "DSR-2026-1201")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Task run failed with exception" in result.output  # Prefect's lines were read too
    lines = error_lines(result.output)
    assert len(lines) == 1, result.output
    assert f"source {kind!r}" in lines[0]
    assert re.search(reason, lines[0]), lines[0]
    assert status_of(config, "DSR-2026-1201") == "status:failed"
    assert not (config.parent / "export" / "DSR-2026-1201").exists()


def test_an_erasure_whose_re_read_gets_a_404_is_not_complete_and_changes_nothing(one_source):
    """Planned, then (before the officer approves) Sheets answers 404 for the spreadsheet the
    plan deletes rows of, while Drive still lists it: never "already done"."""
    import httpx

    from connectors.drive.settings import DriveSource
    from tests.test_drive_connector import sheet_values
    from tests.test_write_faults_drive import USAGE

    config = one_source("drive", FaultSettings())
    source = DriveSource.model_validate(load_config(config).sources["drive"].model_dump())
    before = sheet_values(source, *USAGE)[1]
    args = ["--config", str(config), "--out", str(config.parent / "receipts")]
    erase = ["erase", "--subject", "kari.nordmann@example.com", "--request-id", "DSR-2026-1202"]
    planned = CliRunner().invoke(app, [*erase, *args])
    assert planned.exit_code == 0, planned.output
    httpx.post(
        f"{source.api_url}/_emulator/faults",
        json={
            "fail_path": rf"/v4/spreadsheets/{USAGE[0]}$",
            "fail_status": 404,
            "fail_count": 1000,
        },
    ).raise_for_status()
    done = CliRunner().invoke(app, ["approve", "DSR-2026-1202", "--officer", "Ingrid", *args])
    assert done.exit_code == 2, done.output
    assert "Traceback" not in done.output
    assert status_of(config, "DSR-2026-1202") != "status:completed"
    httpx.post(f"{source.api_url}/_emulator/faults", json={}).raise_for_status()
    assert sheet_values(source, *USAGE)[1] == before
