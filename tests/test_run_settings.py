"""Run settings (dsrflow/run_settings.py): a flow run takes its config and export folder from
the process that runs it, never from its parameters; Prefect's task threads see them, and
threads running flows side by side keep their own."""

import threading
from pathlib import Path

import pytest
from prefect import flow, task

from dsrflow.run_settings import RunSettings, current_run_settings, run_settings
from flows.access import access_request
from sandbox.runtime import onprem_source, write_config

SUBJECT = "al@example.com"


@task
def settings_in_task() -> RunSettings:
    return current_run_settings()


@flow
def settings_in_submitted_tasks() -> list[RunSettings]:
    futures = [settings_in_task.submit() for _ in range(3)]  # the thread-pool task runner
    return [future.result() for future in futures]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_tasks_submitted_to_threads_see_the_flows_settings(tmp_path):
    with run_settings(tmp_path / "dsrflow.yaml", tmp_path / "out", start_runs=False):
        seen = settings_in_submitted_tasks()
    assert (
        seen
        == [
            RunSettings(
                config_path=tmp_path / "dsrflow.yaml",
                out_dir=tmp_path / "out",
                start_runs=False,
                heartbeat_seconds=180,  # flows/heartbeat.py: Prefect's default interval
            )
        ]
        * 3
    )
    assert current_run_settings() == RunSettings()  # the block's end restores the default


def test_threads_keep_their_own_settings(tmp_path):
    barrier = threading.Barrier(2)
    seen: dict[int, Path | None] = {}

    def run(n: int) -> None:
        with run_settings(tmp_path / f"dsrflow{n}.yaml"):
            barrier.wait()  # both blocks are open now
            seen[n] = current_run_settings().config_path

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {0: tmp_path / "dsrflow0.yaml", 1: tmp_path / "dsrflow1.yaml"}


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_without_run_settings_a_flow_runs_as_a_deployments_worker_runs_it(
    tmp_path, sandbox_sqlite_url, monkeypatch
):
    """No settings given: the config named by DSRFLOW_CONFIG (prefect.yaml puts it in the
    worker's environment), the export in the folder that config names."""
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    monkeypatch.setenv("DSRFLOW_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)  # not where any relative default would point
    result = access_request(request_id="DSR-2026-1901", subject_emails=[SUBJECT])
    assert result.total_records > 0
    assert Path(result.export_dir) == tmp_path / "exports" / "DSR-2026-1901"
    assert (Path(result.export_dir) / "export.json").is_file()


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_run_settings_win_over_the_environment(tmp_path, sandbox_sqlite_url, monkeypatch):
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    monkeypatch.setenv("DSRFLOW_CONFIG", str(tmp_path / "missing.yaml"))
    with run_settings(config, tmp_path / "elsewhere"):
        result = access_request(request_id="DSR-2026-1902", subject_emails=[SUBJECT])
    assert Path(result.export_dir) == tmp_path / "elsewhere" / "DSR-2026-1902"
    assert not (tmp_path / "exports" / "DSR-2026-1902").exists()
