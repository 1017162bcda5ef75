"""`dsr ledger verify/head`, `dsr requests --all` and `dsr close` through the real CLI."""

import sqlite3

import pytest
import yaml
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.ledger import Ledger
from dsrflow.request import RequestType
from tests.test_cli import config_with_request
from tests.test_ledger_state import rewrite_chain

runner = CliRunner()


@pytest.mark.parametrize("command", [["ledger", "head"], ["close"], ["requests", "--all"]])
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_verify_reports_a_table_edited_behind_the_ledgers_back(tmp_path):
    config, ledger, _ = config_with_request(tmp_path, "DSR-2026-0007", RequestType.ERASURE, 3)
    ledger.close()
    intact = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert intact.exit_code == 0, intact.output
    assert "1 audit entries, hash chain unbroken, tables match it" in intact.output
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        conn.execute("update requests set status='completed'")
    broken = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert broken.exit_code == 1
    assert (
        "tampered: requests DSR-2026-0007: status is 'completed' in the table, 'open' by the "
        "audit chain" in broken.output
    )


def test_head_and_verify_against_it(tmp_path):
    config, ledger, _ = config_with_request(tmp_path, "DSR-2026-0007", RequestType.ERASURE, 3)
    ledger.record("DSR-2026-0007", "note", by="test")
    head = runner.invoke(app, ["ledger", "head", "--config", str(config)])
    assert head.exit_code == 0, head.output
    kept = head.output.strip()
    assert kept == f"2:{ledger.head()[1]}"
    args = ["ledger", "verify", "--config", str(config), "--head", kept]
    good = runner.invoke(app, args)
    assert good.exit_code == 0, good.output
    assert "entry 2 is the head kept elsewhere" in good.output
    rewrite_chain(ledger, 1, actor="mallory")
    ledger.close()
    assert runner.invoke(app, args[:4]).exit_code == 0  # consistent: the chain alone cannot tell
    caught = runner.invoke(app, args)
    assert caught.exit_code == 1
    assert "audit entry 2: differs from the head kept elsewhere" in caught.output
    wrong = runner.invoke(app, [*args[:4], "--head", "2:abc"])
    assert wrong.exit_code == 2
    assert "a chain head must be SEQ:HASH" in wrong.output


def test_ledger_key_file_of_the_config(tmp_path):
    config, ledger, _ = config_with_request(tmp_path, "DSR-2026-0007", RequestType.ERASURE, 3)
    ledger.close()
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "ledger_key": {"file": "ledger.key"}}))
    missing = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert missing.exit_code == 2
    assert f"secret file {tmp_path / 'ledger.key'} cannot be read" in missing.output
    key = tmp_path / "ledger.key"
    key.write_text("a long random secret\n")
    key.chmod(0o644)
    loose = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert loose.exit_code == 2
    assert "is readable by others; chmod 600" in loose.output
    key.chmod(0o600)
    unkeyed = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert unkeyed.exit_code == 1  # the entry before the key was set carries none
    assert "audit entry 1: carries no keyed hash" in unkeyed.output

    from dsrflow.config import load_config

    keyed = Ledger.from_config(load_config(config))
    with keyed.engine.begin() as conn:
        conn.exec_driver_sql("delete from audit")
        conn.exec_driver_sql("delete from requests")
    keyed.record(None, "note", by="test")
    keyed.record(None, "note", by="test")
    good = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert good.exit_code == 0, good.output
    assert "every entry keyed" in good.output
    rewrite_chain(keyed, 1, actor="mallory")
    keyed.close()
    caught = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert caught.exit_code == 1
    assert "audit entry 1: its keyed hash is wrong" in caught.output


def test_close_and_list_all(tmp_path):
    config, ledger, _ = config_with_request(tmp_path, "DSR-2026-0007", RequestType.ACCESS, 3)
    ledger.close()
    base = ["--config", str(config), "--officer", "Ingrid"]
    needs_reason = runner.invoke(app, ["close", "DSR-2026-0007", "--withdrawn", *base])
    assert needs_reason.exit_code == 2
    assert "closing DSR-2026-0007 as withdrawn needs a reason" in needs_reason.output
    done = runner.invoke(
        app, ["close", "DSR-2026-0007", "--withdrawn", "--reason", "by mail", *base]
    )
    assert done.exit_code == 0, done.output
    assert "DSR-2026-0007: closed (withdrawn)" in done.output
    again = runner.invoke(app, ["close", "DSR-2026-0007", *base])
    assert again.exit_code == 2
    assert "DSR-2026-0007 is already closed (withdrawn)" in again.output
    unknown = runner.invoke(app, ["close", "DSR-2026-0099", *base])
    assert unknown.exit_code == 2
    assert "no request DSR-2026-0099 in the ledger" in unknown.output
    open_only = runner.invoke(app, ["requests", "--config", str(config)])
    assert "DSR-2026-0007" not in open_only.output
    every = runner.invoke(app, ["requests", "--all", "--config", str(config)])
    assert every.exit_code == 0, every.output
    assert "DSR-2026-0007" in every.output
    assert "withdrawn" in every.output
    assert "closed 20" in every.output
    check = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert [e.actor for e in check.entries()][-1] == "Ingrid"
    assert check.verify() == []
    check.close()


def test_a_ledger_that_cannot_be_opened(tmp_path):
    config, ledger, _ = config_with_request(tmp_path, "DSR-2026-0007", RequestType.ACCESS, 3)
    ledger.close()
    (tmp_path / "a-file").write_text("not a folder")
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "ledger_url": "sqlite:///a-file/ledger.db"}))
    result = runner.invoke(app, ["requests", "--config", str(config)])
    assert result.exit_code == 2
    assert "a-file/ledger.db (ledger_url) cannot be opened for writing" in result.output
    assert "Traceback" not in result.output
