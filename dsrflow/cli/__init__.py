"""``dsr``: the command line of dsrflow. ``main`` is the console entry point (pyproject's
``[project.scripts]``); dsrflow/cli/commands.py lists its commands and where each lives."""

from dsrflow.cli.commands import app
from dsrflow.cli.leaving import skip_final_collections


def main() -> None:
    """``dsr``: the app, and no collecting of garbage once it is done (dsrflow/cli/leaving.py)."""
    skip_final_collections()
    app()


__all__ = ["app", "main"]
