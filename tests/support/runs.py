"""Flow runs by name, newest first, as the tests look for the run they started.

One Prefect server serves the whole session, so it holds hundreds of runs; reading them all
and filtering here would see only the API's first page (200), and runs of other tests with the
same name. The filter and the sort go to the server.
"""

from __future__ import annotations

import time
from typing import Any


def runs_named(client: Any, name: str) -> list[Any]:
    """The runs called ``name`` (a request id), newest first; ``client``: a sync client."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    return list(
        client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=20,
        )
    )


def wait_paused(client: Any, name: str, outcome: dict[str, Any], seconds: float = 90) -> Any:
    """The newest run called ``name`` once Prefect shows it paused; fails with the flow's
    ``outcome`` (its error, if it ended) when that does not happen within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        runs = runs_named(client, name)
        if runs and runs[0].state and runs[0].state.is_paused():
            return runs[0]
        assert "error" not in outcome, outcome["error"]
        assert time.monotonic() < deadline, outcome
        time.sleep(0.3)
