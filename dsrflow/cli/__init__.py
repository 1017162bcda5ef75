"""``dsr``: the command line of dsrflow. ``main`` is the console entry point (pyproject's
``[project.scripts]``); dsrflow/cli/commands.py lists its commands and where each lives."""

from dsrflow.cli.collector import one_command_per_process
from dsrflow.cli.commands import app


def main() -> None:
    """``dsr``: the app, its long-lived objects not traversed by the collector again and again
    (dsrflow/cli/collector.py)."""
    one_command_per_process()
    app()


__all__ = ["app", "main"]
