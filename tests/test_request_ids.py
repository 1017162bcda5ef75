"""A request id names one request of one subject (issue 12 §3)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from dsrflow.request import new_request_id
from sandbox.runtime import onprem_source, write_config

pytestmark = pytest.mark.usefixtures("masking_key")


def test_ids_of_the_same_second_differ():
    now = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
    ids = {new_request_id(now) for _ in range(200)}
    assert len(ids) > 190  # random digits, not the clock alone
    assert all(re.fullmatch(r"DSR-2026-335\d{5}", i) for i in ids)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_a_taken_generated_id_is_drawn_again(tmp_path, sandbox_sqlite_url, monkeypatch):
    """Two requests in the same second whose random digits collide still get two ids, and each
    id keeps its own subject."""
    import dsrflow.request

    draws = iter([7, 7, 8])
    monkeypatch.setattr(dsrflow.request.secrets, "randbelow", lambda _n: next(draws))
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "out")
    runner = CliRunner()
    for subject in ("al@example.com", "sal@example.com"):
        result = runner.invoke(
            app, ["erase", "--subject", subject, "--dry-run", "--config", str(config)]
        )
        assert result.exit_code == 0, result.output
    ledger = Ledger(load_config(config).ledger_url)
    try:
        ids = {e.request_id for e in ledger.entries() if e.event == "received"}
        subjects = {i: ledger.request(i).subject.emails for i in ids}  # type: ignore[union-attr]
    finally:
        ledger.close()
    assert len(subjects) == 2
    assert sorted(subjects.values()) == [("al@example.com",), ("sal@example.com",)]
