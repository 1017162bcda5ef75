"""``dsr check`` on the sandbox, the sandbox's own masking key, and requests that stop at the
preflight before a plan is made."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from sandbox.onprem_seed import DEMO_SUBJECT
from sandbox.runtime import RunningSandbox, onprem_source, start, write_config

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSRFLOW_HMAC_KEY", raising=False)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


def test_the_sandbox_writes_its_masking_key_owner_only(box):
    written = yaml.safe_load(box.config_path.read_text("utf-8"))
    key_file = Path(written["masking_key"]["file"])
    assert key_file.parent == box.directory.resolve() / "secrets"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(key_file.read_text("utf-8")) >= 32
    assert key_file.read_text("utf-8") not in box.config_path.read_text("utf-8")
    # Every SQL source gets it; the sandbox's other sources do not mask.
    config = load_config(box.config_path)
    assert config.sources["onprem"].masking_key == config.masking_key


def test_check_passes_on_the_sandbox_then_names_what_broke(box, tmp_path):
    started = time.monotonic()
    result = runner.invoke(app, ["check", "--config", str(box.config_path)])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok {name}: {kind}, every right"
        for name, kind in (
            ("onprem", "sql"),
            ("jira", "jira"),
            ("mail", "mail"),
            ("drive", "drive"),
            ("marketplace", "marketplace"),
            ("analytics", "analytics"),
        )
    ]
    assert elapsed < 20, f"dsr check took {elapsed:.1f} s on the sandbox"

    data = yaml.safe_load(box.config_path.read_text("utf-8"))
    missing = tmp_path / "secrets" / "gone"
    data["masking_key"] = {"file": str(missing)}
    broken = tmp_path / "dsrflow.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = runner.invoke(app, ["check", "--config", str(broken)])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert "ok onprem: access, rectification, restriction (not the others)" in lines
    problems = [line for line in lines if line.startswith("problem ")]
    assert len(problems) == 1, problems
    assert problems[0].startswith("problem onprem: mapping uses hmac_sha256 masking (")
    assert f"the secret file {missing} cannot be read" in problems[0]


def test_check_refuses_a_missing_config(tmp_path):
    result = runner.invoke(app, ["check", "--config", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "config file" in result.output and "absent.yaml" in result.output


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_an_erasure_on_the_sandbox_needs_no_key_in_the_environment(tmp_path):
    with start(tmp_path / "sandbox") as running:
        result = runner.invoke(
            app,
            [
                "erase",
                "--subject",
                DEMO_SUBJECT,
                "--approve",
                "--officer",
                "Ingrid",
                "--request-id",
                "DSR-2026-0901",
                "--config",
                str(running.config_path),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "DSR-2026-0901: completed" in result.output
        config = load_config(running.config_path)
        plan = json.loads((config.output_dir / "DSR-2026-0901" / "plan.json").read_text("utf-8"))
        # The key was used: the plan hashes columns of the on-prem database.
        assert any(
            a["source"] == "onprem" and "hmac_sha256" in (a.get("fields") or {}).values()
            for a in plan
        )


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_a_dry_run_without_a_key_stops_at_once_with_one_line(tmp_path, sandbox_sqlite_url):
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "out")
    result = runner.invoke(
        app,
        ["erase", "--subject", "al@example.com", "--dry-run", "--config", str(config)],
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(
        "error: not ready for erasure: onprem: mapping uses hmac_sha256 masking ("
    )
    assert "set masking_key in the config file, or DSRFLOW_HMAC_KEY" in errors[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("plan.json"))
    assert "Traceback" not in result.output
    ledger = Ledger(load_config(config).ledger_url)
    try:
        assert list(ledger.entries()) == []  # refused before the request was opened
    finally:
        ledger.close()
