"""``dsr``: the command line of dsrflow. ``app`` is the console entry point (pyproject's
``[project.scripts]``); dsrflow/cli/commands.py lists its commands and where each lives."""

from dsrflow.cli.commands import app

__all__ = ["app"]
