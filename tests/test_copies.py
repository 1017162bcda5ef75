"""dsrflow's own copies of a subject's data (issue 12 §6): an erasure removes the subject's
earlier exports and plans and says so on the receipt; exports go when their retention ends."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dsrflow.run_settings import run_settings
from flows.access import access_request
from flows.erasure import erasure_request
from flows.retention import retention_sweep
from tests.support.approval import approved

pytestmark = [
    pytest.mark.usefixtures("masking_key"),
    pytest.mark.prefect,
    pytest.mark.usefixtures("prefect_harness"),
]


@pytest.fixture
def config(onprem_config):
    with run_settings(onprem_config):  # the flows of each test run with this config
        yield onprem_config


def test_erasure_removes_the_subjects_earlier_exports_and_plans(config, tmp_path):
    elsewhere = tmp_path / "sent"
    with run_settings(config, out_dir=elsewhere):
        mine = access_request(request_id="DSR-2026-0501", subject_emails=["al@example.com"])
    other = access_request(request_id="DSR-2026-0502", subject_emails=["sal@example.com"])
    erasure_request(
        request_id="DSR-2026-0503",
        subject_emails=["al@example.com"],
        dry_run=True,
    )
    plan = tmp_path / "out" / "DSR-2026-0503" / "plan.json"
    assert plan.exists()
    result = approved(
        erasure_request,
        request_id="DSR-2026-0504",
        subject_emails=["al@example.com"],
    )
    assert result.status == "completed"
    receipt = json.loads(Path(result.receipt).read_text())
    assert sorted(receipt["copies_removed"]) == sorted([mine.export_dir, str(plan)])
    assert receipt["copies_remaining"] == []
    assert not (elsewhere / "DSR-2026-0501").exists()
    assert not plan.exists()
    assert (tmp_path / "out" / "DSR-2026-0504" / "plan.json").exists()  # proves the erasure
    assert (tmp_path / "out" / "DSR-2026-0502" / "export.json").exists()  # another subject's
    assert other.export_dir.endswith("DSR-2026-0502")


def test_the_sweep_removes_exports_past_their_retention(config, tmp_path):
    export = access_request(request_id="DSR-2026-0511", subject_emails=["al@example.com"])
    now = dt.datetime.now(dt.UTC)
    young = retention_sweep(as_of=now + dt.timedelta(days=29))
    assert young.exports_removed == 0
    preview = retention_sweep(as_of=now + dt.timedelta(days=31), dry_run=True)
    assert preview.exports_removed == 1
    assert (tmp_path / "out" / "DSR-2026-0511").exists()
    done = retention_sweep(as_of=now + dt.timedelta(days=31))
    assert done.exports_removed == 1
    assert not (tmp_path / "out" / "DSR-2026-0511").exists()
    assert export.export_dir.endswith("DSR-2026-0511")
