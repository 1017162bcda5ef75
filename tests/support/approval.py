"""Running a changing flow as the command line's ``--approve`` does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flows.approval import at_terminal


def approved(flow: Callable[..., Any], approver: str = "Ingrid", **parameters: Any) -> Any:
    """Run ``flow`` in this process, approved at the terminal by ``approver``."""
    with at_terminal(approver):
        return flow(**parameters)
