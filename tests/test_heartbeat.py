"""Flow-run heartbeats (flows/heartbeat.py): a flow called in this process under
``run_settings`` sends its heartbeats itself, from a thread that ends with the run, instead of
Prefect's (which the caller waits up to a second for); the server gets the same event either
way, so an automation watching heartbeats still tells a crashed run."""

import threading
import time
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.events.worker import EventsWorker
from prefect.settings import get_current_settings

from dsrflow.run_settings import current_run_settings, run_settings
from flows.heartbeat import EVENT
from flows.private import private_run

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


@flow(persist_result=False)
@private_run
def seen_from_inside() -> dict[str, Any]:
    """What the run sees: its id, Prefect's heartbeat setting, the heartbeat threads alive."""
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    return {
        "run": str(context.flow_run.id),
        "prefect_heartbeat": get_current_settings().flows.heartbeat_frequency,
        "ours": current_run_settings().heartbeat_seconds,
        "threads": [t.name for t in threading.enumerate() if t.name == "dsrflow-heartbeat"],
    }


def heartbeats_of(run_id: str, wanted: int = 1, within_s: float = 30.0) -> list[dict[str, Any]]:
    """The heartbeat events the server holds for the run, once it holds ``wanted`` of them
    (the server stores events a few seconds after they arrive)."""
    EventsWorker.drain_all()
    query = {
        "filter": {"event": {"name": [EVENT]}, "resource": {"id": [f"prefect.flow-run.{run_id}"]}},
        "limit": 50,
    }
    deadline = time.monotonic() + within_s
    while True:
        with get_client(sync_client=True) as client:
            events: list[dict[str, Any]] = client.request(
                "POST", "/events/filter", json=query
            ).json()["events"]
        if len(events) >= wanted or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_a_flow_called_under_run_settings_sends_its_own_heartbeat_and_stops_it():
    with run_settings():
        seen = seen_from_inside()
    assert seen["prefect_heartbeat"] is None  # Prefect's thread, joined for up to 1 s, is off
    assert seen["ours"] == 180  # Prefect's default interval, kept
    assert seen["threads"] == ["dsrflow-heartbeat"]
    # Ended with the run: nothing left beating for it.
    assert not [t for t in threading.enumerate() if t.name == "dsrflow-heartbeat"]
    [event] = heartbeats_of(seen["run"])
    assert event["resource"]["prefect.resource.id"] == f"prefect.flow-run.{seen['run']}"
    roles = {r["prefect.resource.role"] for r in event["related"]}
    assert "flow" in roles  # an automation can match heartbeats by flow, as Prefect's


def test_a_deployments_run_keeps_prefects_heartbeat():
    """No ``run_settings``: as the worker runs a deployment, Prefect sends the heartbeats
    and the flow starts no second sender."""
    seen = seen_from_inside()
    assert seen["prefect_heartbeat"] == 180
    assert seen["ours"] is None
    assert seen["threads"] == []
    [event] = heartbeats_of(seen["run"])
    assert event["resource"]["prefect.resource.id"] == f"prefect.flow-run.{seen['run']}"


def test_the_interval_follows_prefects_setting_and_nested_blocks_keep_it():
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 45}), run_settings():
        assert current_run_settings().heartbeat_seconds == 45
        with run_settings():  # Prefect's is off here: the outer block's interval stays
            assert current_run_settings().heartbeat_seconds == 45
            assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == 180
