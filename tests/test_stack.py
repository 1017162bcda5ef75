"""The officer's stack (``dsr stack up`` / ``down``): its API refuses callers without the
generated credential, the credential is owner-only, and ``down`` leaves no process behind,
a paused erasure run included (and marked crashed on the server). One stack for the module:
it takes ~30 s to start."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from typer.testing import CliRunner

from dsrflow import stack
from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from tests.support.stack import free_port, stack_environment

runner = CliRunner()
SUBJECT = "kari.nordmann@example.com"  # in the sandbox: the erasure has a plan to approve


@dataclass(frozen=True)
class Started:
    directory: Path
    output: str
    api_url: str


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    directory = tmp_path_factory.mktemp("stack") / "officer stack"
    port = free_port()
    try:
        with stack_environment():
            result = runner.invoke(
                app, ["stack", "up", "--dir", str(directory), "--port", str(port)]
            )
        assert result.exit_code == 0, result.output
        yield Started(directory, result.output, f"http://127.0.0.1:{port}/api")
    finally:
        stack.down(directory)


def _stack_processes(directory: Path) -> list[psutil.Process]:
    """Every process whose command line or environment names the stack's directory."""
    found = []
    for process in psutil.process_iter():
        try:
            text = " ".join(process.cmdline()) + " " + " ".join(process.environ().values())
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if str(directory) in text and process.pid != psutil.Process().pid:
            found.append(process)
    return found


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_up_prints_where_the_credential_is_and_the_matching_down(started):
    assert f"stop it with: dsr stack down --dir '{started.directory}'" in started.output
    assert str(started.directory / stack.AUTH_FILE) in started.output
    assert stack.credential(started.directory) not in started.output


def test_down_command_for_the_default_directory_is_plain():
    assert stack.down_command(Path(".stack")) == "dsr stack down"
    assert stack.down_command(Path("x/st")) == "dsr stack down --dir x/st"


def test_the_credential_is_owner_only_and_made_once(started):
    path = started.directory / stack.AUTH_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(started.directory.stat().st_mode) == 0o700
    value = stack.credential(started.directory)
    assert value.startswith("dsrflow:") and len(value) > 40
    assert stack.credential(started.directory) == value


def test_an_unauthenticated_api_call_is_refused_and_the_credential_is_accepted(started):
    api = started.api_url
    assert httpx.post(f"{api}/flow_runs/filter", json={}).status_code == 401
    assert httpx.get(f"{api}/deployments/name/erasure-request/erasure-request").status_code == 401
    wrong = httpx.BasicAuth("dsrflow", "not-the-password")
    assert httpx.post(f"{api}/deployments/filter", json={}, auth=wrong).status_code == 401

    user, password = stack.credential(started.directory).split(":", 1)
    auth = httpx.BasicAuth(user, password)
    answer = httpx.get(f"{api}/deployments/name/erasure-request/erasure-request", auth=auth)
    assert answer.status_code == 200
    assert answer.json()["name"] == "erasure-request"


def test_client_environment_and_connected_reach_the_stack(started):
    env = stack.client_environment(started.directory)
    assert env == {
        "PREFECT_API_URL": started.api_url,
        "PREFECT_API_AUTH_STRING": stack.credential(started.directory),
    }
    with stack.connected(started.directory), get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}
    assert {"access-request", "erasure-request", "deadline-report"} <= names


def test_up_again_in_the_same_directory_refuses_and_stops_nothing(started):
    pids = json.loads((started.directory / stack.PIDS_FILE).read_text())
    result = runner.invoke(app, ["stack", "up", "--dir", str(started.directory)])
    assert result.exit_code == 2
    assert "already recorded" in result.output
    assert f"`dsr stack down --dir '{started.directory}'`" in result.output
    assert all(psutil.pid_exists(pid) for pid in pids.values())
    assert httpx.get(f"{started.api_url}/health").status_code == 200


def test_up_refuses_a_credential_file_others_can_read_and_starts_nothing(tmp_path):
    leaky = tmp_path / stack.AUTH_FILE
    leaky.write_text("dsrflow:guessable")
    leaky.chmod(0o644)
    result = runner.invoke(app, ["stack", "up", "--dir", str(tmp_path), "--port", "1"])
    assert result.exit_code == 2
    assert f"{leaky} is readable by others" in result.output
    assert not (tmp_path / stack.PIDS_FILE).exists()
    assert not (tmp_path / "server.log").exists()


def test_client_environment_without_a_stack_names_the_directory(tmp_path):
    with pytest.raises(LookupError, match=str(tmp_path)):
        stack.client_environment(tmp_path)


def _wait_for_state(run_id, wanted: StateType, timeout: float = 150):
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(run_id).state
            if state is not None and state.type == wanted:
                return
            assert state is None or not state.is_final(), f"run ended {state.name}"
            assert time.monotonic() < deadline, f"run still {state and state.name}"
            time.sleep(0.5)


def _final_state(run_id, timeout: float = 150):
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while (state := client.read_flow_run(run_id).state) is None or not state.is_final():
            assert time.monotonic() < deadline, f"run still {state and state.name}"
            time.sleep(0.5)
    return state


def test_a_deployment_run_cannot_be_started_approved_and_dsr_approve_resumes_it(started):
    """Issue 11 §2: whoever can start a deployment cannot approve it by a parameter; the run
    pauses, and ``dsr approve --stack`` answers its Resume form through the stack's API."""
    config = started.directory / "sandbox" / "dsrflow.yaml"
    with stack.connected(started.directory):
        try:  # refused by the deployment's parameter schema, or by the flow when it starts
            forged = run_deployment(
                "erasure-request/erasure-request",
                parameters={
                    "request_id": "DSR-2026-0980",
                    "subject_emails": [SUBJECT],
                    "approved_by": "anyone",
                },
                timeout=0,
            )
        except Exception as refused:
            assert "approved_by" in str(refused)
        else:
            ended = _final_state(forged.id)
            assert ended.type in (StateType.FAILED, StateType.CRASHED), ended
        run = run_deployment(
            "erasure-request/erasure-request",
            parameters={"request_id": "DSR-2026-0981", "subject_emails": [SUBJECT]},
            timeout=0,
        )
        _wait_for_state(run.id, StateType.PAUSED)
    answered = runner.invoke(
        app,
        ["approve", "DSR-2026-0981", "--officer", "Ingrid", "--stack", str(started.directory),
         "--config", str(config)],
    )  # fmt: skip
    assert answered.exit_code == 0, answered.output
    with stack.connected(started.directory):
        _wait_for_state(run.id, StateType.COMPLETED)
    ledger = Ledger(load_config(config).ledger_url)
    try:
        events = [(e.event, e.actor) for e in ledger.entries("DSR-2026-0981")]
        assert ledger.request("DSR-2026-0980") is None  # the forged run never got that far
    finally:
        ledger.close()
    assert ("approved", "Ingrid") in events
    assert events[-1][0] == "status:completed"


# Last in the module: it stops the module's stack.
def test_down_stops_every_process_of_the_stack_a_paused_flow_run_included(started):
    with stack.connected(started.directory):
        run = run_deployment(
            "erasure-request/erasure-request",
            parameters={"request_id": "DSR-2026-0990", "subject_emails": [SUBJECT]},
            timeout=0,
        )
        _wait_for_state(run.id, StateType.PAUSED)
    pids = json.loads((started.directory / stack.PIDS_FILE).read_text())
    worker = psutil.Process(pids["worker"])
    flow_runs = [p for p in worker.children(recursive=True) if "prefect.engine" in p.cmdline()]
    assert flow_runs, "the paused run's process is not among the worker's children"
    # A stand-in for a flow run in a session of its own (Prefect's workspace starter makes
    # them so), out of reach of a signal to the worker's process group.
    isolated = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={**os.environ, stack.MARK: str(started.directory)},
        start_new_session=True,
    )
    try:
        before = _stack_processes(started.directory)
        assert {pids["server"], pids["sandbox"], pids["worker"], isolated.pid} <= {
            p.pid for p in before
        }

        result = runner.invoke(app, ["stack", "down", "--dir", str(started.directory)])
        assert result.exit_code == 0, result.output

        # Gone when down returns, not some time later.
        assert [p.pid for p in before if _running(p)] == []
        assert _stack_processes(started.directory) == []
        assert isolated.poll() is not None
    finally:
        isolated.kill()
        isolated.wait()
    assert "stopped: worker, flow runs (1), sandbox, server" in result.output
    assert not (started.directory / stack.PIDS_FILE).exists()
    # No Resume left on offer that nothing would answer: the server was told before it went.
    assert _flow_run_state(started.directory, run.id) == ("CRASHED", "Crashed")


def _flow_run_state(directory: Path, run_id) -> tuple[str, str]:
    """A run's state as the stopped server left it in its SQLite database."""
    engine = sa.create_engine(f"sqlite:///{directory / 'prefect' / 'prefect.db'}")
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT state_type, state_name FROM flow_run WHERE id = :id"),
                {"id": str(run_id)},
            ).one()
    finally:
        engine.dispose()
    return tuple(row)
