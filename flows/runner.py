"""Which task runner the request flows hand their discovery tasks to, chosen by the environment
of the process that imports the flows (a worker's flow run reads it at start):

- ``DSRFLOW_TASK_RUNNER`` unset or ``threads``: Prefect's thread pool in the flow's own process.
- ``DSRFLOW_TASK_RUNNER=dask``: prefect-dask's ``DaskTaskRunner``. With
  ``DSRFLOW_DASK_ADDRESS=tcp://host:8786`` on a running Dask scheduler; without it, on a local
  cluster the flow run starts and stops itself (``DSRFLOW_DASK_WORKERS`` worker processes, one
  thread each, bound to 127.0.0.1).

Only the tasks a flow submits travel (one discovery task per source and round): the flow itself,
the ledger and the export stay in the flow's process. A task's arguments (the config with the
sources' settings, the mapping, the subject's identifiers) and its result (the records found)
go to the Dask workers and back, pickled: a remote cluster must be the controller's own and
speak TLS. prefect-dask is imported only when chosen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from dsrflow.errors import DsrflowError

RUNNER_VARIABLE = "DSRFLOW_TASK_RUNNER"
ADDRESS_VARIABLE = "DSRFLOW_DASK_ADDRESS"
WORKERS_VARIABLE = "DSRFLOW_DASK_WORKERS"
DEFAULT_DASK_WORKERS = 2


class TaskRunnerSettingError(DsrflowError, ValueError):
    """``DSRFLOW_TASK_RUNNER`` (or a Dask setting beside it) names something that cannot run."""


Runner = TaskRunner[PrefectFuture[Any]]


def task_runner(environ: Mapping[str, str] | None = None) -> Runner:
    """The task runner the environment asks for (see the module's docstring)."""
    env = os.environ if environ is None else environ
    choice = env.get(RUNNER_VARIABLE, "").strip().lower()
    if choice in ("", "threads"):
        return cast(Runner, ThreadPoolTaskRunner())
    if choice != "dask":
        raise TaskRunnerSettingError(
            f"{RUNNER_VARIABLE}={choice!r} is not a task runner; use 'threads' or 'dask'"
        )
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - a dependency of dsrflow
        raise TaskRunnerSettingError(
            f"{RUNNER_VARIABLE}=dask needs the prefect-dask package ({exc})"
        ) from exc
    address = env.get(ADDRESS_VARIABLE, "").strip()
    if address:
        return cast(Runner, DaskTaskRunner(address=address))
    return cast(Runner, DaskTaskRunner(cluster_kwargs=local_cluster_settings(env)))


def local_cluster_settings(environ: Mapping[str, str]) -> dict[str, object]:
    """``LocalCluster`` arguments: worker processes (a connector's work is Python, which
    threads would serialise), one thread each, on the loopback only, no dashboard (it needs
    bokeh and would listen on a port)."""
    text = environ.get(WORKERS_VARIABLE, "").strip() or str(DEFAULT_DASK_WORKERS)
    if not text.isdigit() or int(text) < 1:
        raise TaskRunnerSettingError(
            f"{WORKERS_VARIABLE}={text!r} must be a whole number of workers, at least 1"
        )
    return {
        "n_workers": int(text),
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
    }
