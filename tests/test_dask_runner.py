"""The access flow on a Dask cluster (prefect-dask's DaskTaskRunner, chosen by
``DSRFLOW_TASK_RUNNER=dask``, flows/runner.py) answers exactly as on Prefect's default thread
pool: the same records from every source of the sandbox (on-prem SQL, mail, Drive, Jira,
Marketplace over their emulators), and the same ledger trail.

The cluster is a ``LocalCluster`` of two worker *processes* (one thread each, for the two
cores): the discovery tasks, their arguments (config, mapping, subject) and their results (the
records) cross process boundaries pickled, as they would to other machines. What stays in the
flow's process: the ledger (its writes and locks), the export, and the context variables the
flows set (the case-page hook, the approval terminal); no discovery task reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from flows import runner
from flows.access import access_request
from sandbox.onprem_seed import DEMO_PHONE, DEMO_SUBJECT
from sandbox.runtime import RunningSandbox, start
from tests.conftest import REPO

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start(tmp_path_factory.mktemp("dask") / "sandbox") as box:
        yield box


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from distributed import LocalCluster

    with LocalCluster(**runner.local_cluster_settings({})) as local:
        yield local


def answer(request_id: str) -> dict[str, Any]:
    """Run the access flow as imported (its task runner chosen by the environment now) on the
    demo subject; the export's records and the ledger's events."""
    flow = access_request.with_options(task_runner=runner.task_runner())
    state = flow(
        request_id=request_id,
        subject_emails=[DEMO_SUBJECT],
        subject_phones=[DEMO_PHONE],
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    ledger = Ledger.from_config(load_config())
    try:
        events = [e.event for e in ledger.entries(request_id)]
        assert ledger.verify() == []
    finally:
        ledger.close()
    return {
        "records": document["records"],
        "total": document["total_records"],
        "subject": document["subject"],
        "rounds": result.expansion_rounds,
        "events": events,
    }


def test_dask_export_is_exactly_the_default_runners(sandbox, cluster, monkeypatch):
    from distributed import Client, get_task_stream

    monkeypatch.setenv("DSRFLOW_CONFIG", str(sandbox.config_path))
    monkeypatch.delenv(runner.RUNNER_VARIABLE, raising=False)
    threads = answer("DSR-2026-0901")

    monkeypatch.setenv(runner.RUNNER_VARIABLE, "dask")
    monkeypatch.setenv(runner.ADDRESS_VARIABLE, cluster.scheduler_address)
    with Client(cluster) as client, get_task_stream(client) as stream:
        on_dask = answer("DSR-2026-0902")
        worker_pids = set(client.run(os.getpid).values())

    sources = set(load_config(sandbox.config_path).sources)
    assert {"onprem", "mail", "drive", "jira"} <= sources
    # Every source searched, in every round, on the cluster's worker processes.
    ran = [task for task in stream.data if task["key"].startswith("discover")]
    assert len(ran) == len(sources) * on_dask["rounds"], [t["key"] for t in stream.data]
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    assert threads["total"] > 0 and set(threads["records"]) == sources - {"analytics"}
    assert on_dask == threads


def test_the_environment_chooses_the_runner():
    assert type(runner.task_runner({})).__name__ == "ThreadPoolTaskRunner"
    assert type(runner.task_runner({"DSRFLOW_TASK_RUNNER": "threads"})).__name__ == (
        "ThreadPoolTaskRunner"
    )
    remote = runner.task_runner(
        {"DSRFLOW_TASK_RUNNER": "dask", "DSRFLOW_DASK_ADDRESS": "tcp://10.0.0.5:8786"}
    )
    assert type(remote).__name__ == "DaskTaskRunner"
    assert remote.address == "tcp://10.0.0.5:8786"
    local = runner.task_runner({"DSRFLOW_TASK_RUNNER": "Dask", "DSRFLOW_DASK_WORKERS": "3"})
    assert local.address is None
    assert local.cluster_kwargs["n_workers"] == 3
    assert local.cluster_kwargs["processes"] is True
    assert local.cluster_kwargs["host"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DSRFLOW_TASK_RUNNER": "ray"}, "DSRFLOW_TASK_RUNNER='ray' is not a task runner"),
        (
            {"DSRFLOW_TASK_RUNNER": "dask", "DSRFLOW_DASK_WORKERS": "0"},
            "DSRFLOW_DASK_WORKERS='0' must be a whole number",
        ),
    ],
)
def test_a_wrong_setting_is_named(env, message):
    with pytest.raises(runner.TaskRunnerSettingError, match=message):
        runner.task_runner(env)


def test_the_request_flows_take_the_runner_from_the_environment_they_are_imported_in():
    """What a worker's flow run does: a fresh process importing the flows."""
    code = (
        "from flows.access import access_request\n"
        "from flows.erasure import erasure_request\n"
        "from flows.other_rights import consent_withdrawal, rectification_request, "
        "restriction_request\n"
        "for f in (access_request, erasure_request, consent_withdrawal, rectification_request,"
        " restriction_request):\n"
        "    print(f.name, type(f.task_runner).__name__, f.task_runner.cluster_kwargs['n_workers'])"
    )
    env = {**os.environ, "DSRFLOW_TASK_RUNNER": "dask", "DSRFLOW_DASK_WORKERS": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    lines = result.stdout.split("\n")
    assert [line.split()[1:] for line in lines if line] == [["DaskTaskRunner", "3"]] * 5
