"""The access flow through Prefect (test harness): export, permissions, privacy of run data."""

import asyncio
import hashlib
import json
import re
import stat
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
import yaml

from dsrflow.config import load_config
from dsrflow.export import verify_manifest
from dsrflow.ledger import Ledger
from dsrflow.run_settings import run_settings
from flows.access import access_request
from sandbox.runtime import CONTROLLER, onprem_source, write_config
from tests.conftest import REPO

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

SUBJECT = "al@example.com"


@pytest.fixture
def sandbox_config(tmp_path, sandbox_sqlite_url):
    path = tmp_path / "dsrflow.yaml"
    write_config(path, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    return path


def run(config, *emails, request_id="DSR-2026-0042", out=None):
    with run_settings(config, out):
        return access_request(
            request_id=request_id,
            subject_emails=list(emails),
            return_state=True,
        )


async def _run_details(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import ArtifactSort, TaskRunSort

    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
            limit=200,
            offset=0,
        )
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
            sort=ArtifactSort.CREATED_DESC,
            limit=200,
        )
    return flow_run, logs, tasks, artifacts


def run_details(state):
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs travel to the API in the background
    return asyncio.run(_run_details(state.state_details.flow_run_id))


def test_export_is_complete_valid_and_private(sandbox_config, tmp_path):
    state = run(sandbox_config, SUBJECT, out=tmp_path / "out")
    assert state.is_completed(), state.message
    result = state.result()
    assert result.total_records == 12
    assert result.records_per_source == {"onprem": 12}
    directory = Path(result.export_dir)
    assert directory == tmp_path / "out" / "DSR-2026-0042"

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("export.json", "export.html", "export.schema.json", "manifest.json"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name

    document = json.loads((directory / "export.json").read_text())
    schema = json.loads((directory / document["$schema"]).read_text())
    jsonschema.Draft202012Validator(schema).validate(document)

    assert document["request"]["id"] == "DSR-2026-0042"
    assert document["subject"]["emails"] == [SUBJECT]
    assert document["total_records"] == 12
    info = document["information"]
    assert {"Datatilsynet"} == {info["complaint"]["name"]}
    assert [r["name"] for r in info["recipients"]] == [r["name"] for r in CONTROLLER["recipients"]]
    assert "user.financial" in info["categories"]
    assert any(p["legal_basis"] == "consent" for p in info["purposes"])
    assert any("Bookkeeping" in r["retention"] for r in info["retention"])
    assert info["automated_decision_making"].startswith("none")
    assert any(s["collected_from"] == "the Atlassian Marketplace" for s in info["sources"])

    onprem = document["records"]["onprem"]
    emails = {p["fields"]["email"] for p in onprem["user.contact.email"]}
    assert emails == {"al@example.com", "AL@Example.COM"}
    invoice = onprem["user.financial"][0]
    assert invoice["fields"] == {
        "number": "INV-2001",
        "amount": "1200.00",
        "currency": "NOK",
        "issued_on": "2025-01-05",
    }
    licence_parts = [p for p in onprem["user.contract"] if p["location"] == "licenses"]
    assert {p["native_id"]["id"]: p["shared"] for p in licence_parts} == {1: True, 2: False}

    html = (directory / "export.html").read_text()
    assert "Your personal data held by Fjelltopp Apps AS" in html
    assert "INV-2001" in html
    assert "Datatilsynet" in html

    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (directory / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert verify_manifest(directory) == []
    (directory / "export.json").write_text(json.dumps(document) + " ")
    assert verify_manifest(directory) == ["export.json"]

    ledger = Ledger(load_config(sandbox_config).ledger_url)
    events = [(e.event, e.details) for e in ledger.entries("DSR-2026-0042")]
    ledger.close()
    assert [e for e, _ in events] == [
        "received",
        "status:in_progress",
        "exported",
        "status:completed",
    ]
    exported = dict(events)["exported"]
    assert exported["records"] == 12
    assert exported["export_json_sha256"] == manifest["files"][0]["sha256"]


def test_run_data_holds_no_personal_data(sandbox_config, tmp_path):
    state = run(sandbox_config, SUBJECT, request_id="DSR-2026-0043", out=tmp_path / "out")
    assert state.is_completed(), state.message
    flow_run, logs, tasks, artifacts = run_details(state)
    assert flow_run.name == "DSR-2026-0043"
    assert logs, "the flow logs its progress"
    assert any("onprem: 12 record(s)" in log.message for log in logs)
    # Names, phone numbers, invoice numbers, the subject's address: none in logs or artifacts.
    secrets = [SUBJECT, "Al Subject", "4791234567", "INV-2001", "SEN-1001"]
    texts = [log.message for log in logs] + [json.dumps(a.data) for a in artifacts]
    texts += [t.name for t in tasks]
    # Prefect keeps a run's parameters for ever: the identifiers given went to the ledger.
    assert flow_run.parameters["subject_emails"] is None
    texts += [json.dumps(flow_run.parameters, default=str), flow_run.state.message or ""]
    for text in texts:
        for secret in secrets:
            assert secret.lower() not in text.lower(), (secret, text)
    summary = next(a for a in artifacts if a.type == "markdown" and a.key.startswith("access"))
    assert "a***@example.com" in summary.data
    table = next(a for a in artifacts if a.type == "table")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert {r["location"]: r["records"] for r in rows}["usage_events"] == 3
    # No task result was persisted anywhere.
    from prefect.settings import PREFECT_HOME

    storage = Path(PREFECT_HOME.value()) / "storage"
    assert not storage.exists() or not any(storage.iterdir())


def test_broken_mapping_stops_before_any_source_is_read(tmp_path, sandbox_sqlite_url):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (REPO / "mappings" / "onprem.yaml")
        .read_text()
        .replace("primary_key: [id]\n    identities:", "primary_key: [id]\n    identitis:", 1)
    )
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    data = yaml.safe_load(config.read_text())
    data["sources"]["onprem"]["mapping"] = str(broken)
    config.write_text(yaml.safe_dump(data))
    state = run(config, SUBJECT, request_id="DSR-2026-0044")
    assert state.is_failed()
    with pytest.raises(Exception, match=r"tables\.contacts\.identitis \(line \d+\): unknown key"):
        state.result()
    _, _, tasks, _ = run_details(state)
    assert [t.name for t in tasks if t.name.startswith("discover")] == []
    assert not (tmp_path / "exports").exists()
    ledger = Ledger(load_config(config).ledger_url)
    assert [e.event for e in ledger.entries("DSR-2026-0044")] == ["received", "status:failed"]
    assert ledger.verify() == []
    ledger.close()


def test_malformed_identifier_fails_before_any_source(sandbox_config, tmp_path):
    state = run(sandbox_config, "al@@example.com", request_id="DSR-2026-0045")
    assert state.is_failed()
    with pytest.raises(
        Exception, match=re.escape("'al@@example.com' is not a valid e-mail address")
    ):
        state.result()
    _, _, tasks, _ = run_details(state)
    assert tasks == []


def test_identities_found_are_expanded_to_a_fixed_point(tmp_path):
    url = f"sqlite:///{tmp_path / 'people.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, alias TEXT)")
        )
        conn.execute(
            sa.text(
                "INSERT INTO people VALUES (1, 'al@example.com', 'al.work@example.com'),"
                " (2, 'AL.WORK@example.com', NULL), (3, 'sal@example.com', NULL)"
            )
        )
    engine.dispose()
    mapping = tmp_path / "people.yaml"
    mapping.write_text(
        "kind: sql\n"
        "categories: {user: {purposes: [test], legal_basis: contract, retention: test},\n"
        "  system: {purposes: [test], legal_basis: contract, retention: test}}\n"
        "tables:\n  people:\n    primary_key: [id]\n"
        "    identities: [{column: email, kind: email}]\n"
        "    expands_identity: [{column: alias, kind: email}]\n"
        "    columns: {email: {category: user.contact.email}, alias: {category: user.contact}}\n"
    )
    config = tmp_path / "dsrflow.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "controller": CONTROLLER,
                "sources": {"people": {"kind": "sql", "url": url, "mapping": str(mapping)}},
            }
        )
    )
    state = run(config, "al@example.com", request_id="DSR-2026-0046", out=tmp_path / "out")
    result = state.result()
    assert result.expansion_rounds == 2
    assert result.total_records == 2
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    assert document["subject"]["emails"] == ["al@example.com", "al.work@example.com"]
