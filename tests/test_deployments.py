"""prefect.yaml: every deployment points at a real flow with the parameters it passes, and the
schedules are the ones the officer expects; each deployment's run form, as ``prefect deploy``
registers it, offers only what an officer decides, each with a description; the deadline
report lists open requests."""

import datetime as dt
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

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


# Settings of the process that runs a flow (dsrflow/run_settings.py): never in a run form.
ENGINEERING = {"config_path", "out_dir", "start", "start_confirmations", "min_group_size"}


def engineering(name: str) -> bool:
    return name in ENGINEERING or name.endswith(("_path", "_dir", "_file")) or "config" in name


def test_prefect_yaml_passes_no_engineering_parameters():
    """The config reaches the worker through its environment, not through the run form."""
    for deployment in deployments():
        assert not [p for p in deployment.get("parameters", {}) if engineering(p)], deployment
        env = deployment["work_pool"]["job_variables"]["env"]
        assert env["DSRFLOW_CONFIG"] == "{{ $DSRFLOW_CONFIG }}"


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_registered_run_forms_show_only_what_an_officer_decides(tmp_path):
    """``prefect deploy --all`` against the test server, as ``dsr stack up`` runs it; then
    each deployment's parameter schema (what the UI's Custom run form is drawn from)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="dsrflow", type="process"), overwrite=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "DSRFLOW_HOME": str(REPO),
        "DSRFLOW_CONFIG": str(tmp_path / "dsrflow.yaml"),
    }
    prefect = Path(sys.executable).parent / "prefect"
    done = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    registered = {}
    with get_client(sync_client=True) as client:
        try:
            registered = {d.name: d for d in client.read_deployments()}
            schemas = {
                d["name"]: registered[d["name"]].parameter_openapi_schema for d in deployments()
            }
            for name, deployment in registered.items():
                if name in schemas:
                    assert (
                        deployment.job_variables["env"]["DSRFLOW_CONFIG"] == env["DSRFLOW_CONFIG"]
                    )
        finally:
            # The session's server is shared: other tests register deployments of these names.
            for deployment in registered.values():
                client.delete_deployment(deployment.id)
            client.delete_work_pool("dsrflow")
    for name, schema in schemas.items():
        properties = schema.get("properties", {})
        assert not [p for p in properties if engineering(p)], (name, sorted(properties))
        undescribed = [p for p, field in properties.items() if not field.get("description")]
        assert undescribed == [], (name, undescribed)
    # The request forms: the request id is all a request opened before needs.
    for name in ("access-request", "erasure-request", "restriction-request"):
        assert schemas[name]["required"] == ["request_id"]
    assert set(schemas["rectification-request"]["required"]) == {"request_id", "corrections"}
    assert set(schemas["consent-withdrawal"]["required"]) == {"request_id", "purpose"}
    assert set(schemas["confirm-request"]["properties"]) == {"request_id"}
    assert schemas["intake"].get("properties", {}) == {}


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
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

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
    # By key: the session's server holds every earlier test's artifacts too.
    with get_client(sync_client=True) as client:
        [table] = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["open-requests"]))
        )
    rows = yaml.safe_load(table.data) if isinstance(table.data, str) else table.data
    assert [r["request"] for r in rows] == ["DSR-2026-0602", "DSR-2026-0601"]
    assert rows[0]["overdue"] == "yes"
    assert rows[0]["case page"].endswith("case-dsr-2026-0602")  # each row links to its case
    assert "al@example.com" not in str(rows)
