"""Flow-run heartbeats that stop the moment the run ends.

Heartbeats are the events an automation watches to tell a crashed flow run from a slow one
(Prefect docs, "Detect zombie flows"). Prefect's engine sends them from a thread that sleeps in
one-second steps and joins that thread when the run ends (``prefect.flow_engine._send_heartbeats``
in 3.8): every flow run called in a process waits up to a second for nothing at its end, about
as long as a small SQL-only request takes (issue 18). A process that calls flows itself
(``dsrflow.run_settings.run_settings``: the command line, the benchmarks, the tests) turns
Prefect's heartbeat off within its block, and each flow sends the same event itself from a
thread that waits on its stop event, so it ends at once. A deployment's run (the worker starts
it in a process of its own, without ``run_settings``) keeps Prefect's heartbeat unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

from prefect import __version__ as prefect_version
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.events.related import tags_as_related_resources
from prefect.events.schemas.events import RelatedResource

EVENT = "prefect.flow-run.heartbeat"  # the name Prefect's engine emits, so automations match


def heartbeat_event() -> tuple[dict[str, str], list[RelatedResource]]:
    """The resource and related resources of the current flow run's heartbeat, as Prefect's
    engine builds them (``BaseFlowRunEngine._build_heartbeat_event_template``)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("heartbeats are sent from inside a flow run")
    run = context.flow_run
    resource = {
        "prefect.resource.id": f"prefect.flow-run.{run.id}",
        "prefect.resource.name": run.name or "",
        "prefect.version": prefect_version,
    }
    related: list[RelatedResource] = []
    if run.flow_id:
        related.append(
            RelatedResource.model_validate(
                {
                    "prefect.resource.id": f"prefect.flow.{run.flow_id}",
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": context.flow.name if context.flow else "",
                }
            )
        )
    if run.deployment_id:
        related.append(
            RelatedResource.model_validate(
                {
                    "prefect.resource.id": f"prefect.deployment.{run.deployment_id}",
                    "prefect.resource.role": "deployment",
                }
            )
        )
    return resource, related + tags_as_related_resources(set(run.tags or []))


@contextlib.contextmanager
def heartbeats(every_seconds: int | None) -> Iterator[None]:
    """Within the block (a flow run's body), the run's heartbeat now and every
    ``every_seconds``; None: Prefect's engine sends them, nothing is done here."""
    if every_seconds is None:
        yield
        return
    resource, related = heartbeat_event()
    stop = threading.Event()

    def beat() -> None:
        while True:
            emit_event(event=EVENT, resource=resource, related=related)
            if stop.wait(every_seconds):
                return

    # The thread runs in a copy of this context: it reports to the server the run reports to.
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(beat,), name="dsrflow-heartbeat", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
