"""What a flow run takes from the process that runs it, never from its run form.

A deployment's run form (Run → Custom run in the Prefect UI) shows what the officer decides:
the request id, the subject's identifiers, the right's choices. Where the config and the
exports are is the deployment's business: the worker's environment names the config
(``DSRFLOW_CONFIG``, set by prefect.yaml's job_variables) and the config names the export
folder (``output_dir``). A process that calls a flow itself (the ``dsr`` command line, the
tests) says what its runs use with ``run_settings``. It is a context variable, not a process
setting: flows run side by side in threads keep their own, and Prefect's task runs see it (a
task runs in a copy of its flow's context; tests/test_run_settings.py checks both).

Within the block Prefect's own flow-run heartbeat is off and each flow sends its heartbeats
itself (flows/heartbeat.py): Prefect's makes every run's caller wait up to a second at its end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from dsrflow.config import Config, load_config


@dataclass(frozen=True)
class RunSettings:
    """The settings of the flow runs of one process; the defaults are a deployment's."""

    config_path: Path | None = None  # None: DSRFLOW_CONFIG (dsrflow.config.Settings)
    out_dir: Path | None = None  # None: the config's output_dir
    # intake and confirm-request start the next deployment's run; a process that registered
    # no deployments (a test, a terminal) leaves that to the officer.
    start_runs: bool = True
    # The retention sweep's k for aggregates instead of the mappings' (dsr sweep
    # --min-group-size); an override the run form does not offer.
    min_group_size: int | None = None
    # How often a flow sends its run's heartbeat itself (flows/heartbeat.py); None: Prefect's
    # engine sends them (a deployment's run).
    heartbeat_seconds: int | None = None

    def config(self) -> Config:
        return load_config(self.config_path)

    def output_dir(self, config: Config) -> Path:
        return self.out_dir or config.output_dir


_current: ContextVar[RunSettings | None] = ContextVar("dsrflow_run_settings", default=None)


@contextlib.contextmanager
def run_settings(
    config_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    *,
    start_runs: bool = True,
    min_group_size: int | None = None,
) -> Iterator[RunSettings]:
    """Flows called inside this block use ``config_path`` (else ``DSRFLOW_CONFIG``) and write
    their exports to ``out_dir`` (else the config's ``output_dir``); they send their runs'
    heartbeats themselves, as often as Prefect's setting says
    (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, 180 s by default). It imports Prefect: a command
    enters it after ``dsrflow.local_prefect.private_home``."""
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    settings = RunSettings(
        config_path=Path(config_path) if config_path else None,
        out_dir=Path(out_dir) if out_dir else None,
        start_runs=start_runs,
        min_group_size=min_group_size,
        heartbeat_seconds=_prefect_heartbeat(get_current_settings().flows.heartbeat_frequency),
    )
    token = _current.set(settings)
    try:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield settings
    finally:
        _current.reset(token)


def _prefect_heartbeat(configured: int | None) -> int | None:
    """The interval Prefect's engine would send heartbeats at (it never goes below 30 s); a
    block nested in another keeps the outer block's."""
    if configured is None:
        outer = _current.get()
        return outer.heartbeat_seconds if outer else None
    return max(configured, 30)


def current_run_settings() -> RunSettings:
    """The settings of the flow run in progress: a deployment's unless a caller set others."""
    return _current.get() or RunSettings()
