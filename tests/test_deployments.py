"""prefect.yaml: every deployment points at a real flow with the parameters it passes, and the
schedules are the ones the officer expects; the deadline report lists open requests."""

import datetime as dt
import importlib
import inspect

import pytest
import yaml
from prefect import Flow

from dsrflow.run_settings import run_settings
from tests.conftest import REPO


def deployments():
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_entrypoint_is_a_flow_taking_its_parameters(deployment):
    path, name = deployment["entrypoint"].split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    assert isinstance(flow, Flow)
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment.get("parameters", {})) <= accepted
    assert deployment["work_pool"]["name"] == "dsrflow"


def test_every_request_type_and_the_schedules():
    by_name = {d["name"]: d for d in deployments()}
    assert {
        "access-request",
        "erasure-request",
        "rectification-request",
        "restriction-request",
        "consent-withdrawal",
    } <= set(by_name)
    sweep = by_name["retention-sweep"]["schedules"][0]
    assert sweep == {"cron": "0 3 * * *", "timezone": "Europe/Oslo"}
    assert by_name["deadline-report"]["schedules"][0]["timezone"] == "Europe/Oslo"


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_deadline_report_lists_open_requests_overdue_first(tmp_path):
    from prefect.client.orchestration import get_client

    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger
    from dsrflow.request import DataSubjectRequest, RequestType, Subject
    from flows.deadlines import deadline_report
    from sandbox.runtime import onprem_source, write_config

    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source("sqlite:///unused.db"), tmp_path / "out")
    ledger = Ledger(load_config(config).ledger_url)
    now = dt.datetime.now(dt.UTC)
    for request_id, days_ago in (("DSR-2026-0601", 5), ("DSR-2026-0602", 40)):
        ledger.open_request(
            DataSubjectRequest(
                id=request_id,
                type=RequestType.ACCESS,
                subject=Subject.from_raw(["al@example.com"]),
                received_at=now - dt.timedelta(days=days_ago),
            )
        )
    ledger.close()
    with run_settings(config):
        assert deadline_report() == 1
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts(limit=50)
    table = next(a for a in artifact if a.key == "open-requests")
    rows = yaml.safe_load(table.data) if isinstance(table.data, str) else table.data
    assert [r["request"] for r in rows] == ["DSR-2026-0602", "DSR-2026-0601"]
    assert rows[0]["overdue"] == "yes"
    assert rows[0]["case page"].endswith("case-dsr-2026-0602")  # each row links to its case
    assert "al@example.com" not in str(rows)
