"""``jira_account_id``: an identifier kind the officer adds where Jira hides the subject's
address (``--jira-account``); kept in the ledger with the request like the other identifiers,
and forgotten (keyed hashes) with them after an erasure."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.identifiers import IdentifierError
from dsrflow.ledger import Ledger, Status, requests_table
from dsrflow.request import DataSubjectRequest, RequestType, Subject

ACCOUNT = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"


def test_the_officer_adds_jira_account_ids_which_are_exact_text() -> None:
    subject = Subject.from_raw(["al@example.com"], jira_accounts=[f"  {ACCOUNT} ", ACCOUNT])
    assert [i.value for i in subject.of_kind("jira_account_id")] == [ACCOUNT]
    assert f"jira_account_id:{ACCOUNT}" in {str(i) for i in subject.identifiers}
    for bad in ("", "two words", "x" * 129):
        with pytest.raises(IdentifierError, match="Jira account id"):
            Subject.from_raw(["al@example.com"], jira_accounts=[bad])


def _request(request_id: str, kind: RequestType, subject: Subject) -> DataSubjectRequest:
    return DataSubjectRequest(
        id=request_id,
        type=kind,
        subject=subject,
        received_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )


def test_the_ledger_keeps_them_with_the_request_and_forgets_them_after_erasure(
    tmp_path: Path,
) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    al = Subject.from_raw(["al@example.com"], jira_accounts=[ACCOUNT])
    ledger.open_request(_request("DSR-2026-0001", RequestType.ACCESS, al))
    stored = ledger.request("DSR-2026-0001")
    assert stored is not None and stored.subject.of_kind("jira_account_id") == list(
        al.of_kind("jira_account_id")
    )
    # The same id with another subject (here: without the account) is refused.
    with pytest.raises(ValueError, match="another subject"):
        ledger.open_request(
            _request("DSR-2026-0001", RequestType.ACCESS, Subject.from_raw(["al@example.com"]))
        )
    ledger.set_status("DSR-2026-0001", Status.COMPLETED)
    by_account = Subject.from_raw(["someone@example.org"], jira_accounts=[ACCOUNT])
    assert ledger.requests_of(by_account) == ["DSR-2026-0001"]

    ledger.open_request(_request("DSR-2026-0002", RequestType.ERASURE, al))
    ledger.forget_subject(al, "DSR-2026-0002")
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(requests_table.c.subject)).scalars().all()
    assert all(ACCOUNT not in row for row in rows)
    assert all(json.loads(row)["others"][0].startswith(("hmac:", "sha256:")) for row in rows)
    assert ledger.requests_of(al) == ["DSR-2026-0001", "DSR-2026-0002"]
    assert ledger.verify() == []


def test_the_cli_takes_jira_account_and_refuses_a_bad_one_before_anything_runs(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "access",
            "--subject",
            "al@example.com",
            "--jira-account",
            "two words",
            "--out",
            str(tmp_path),
            "--config",
            str(tmp_path / "missing.yaml"),
        ],
    )
    assert result.exit_code == 2
    assert "Jira account id" in result.output
