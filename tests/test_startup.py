"""Per-command start-up (issue 18): `dsr --help`, argument errors and cheap commands do not
import Prefect, pandas or the vendors' SDKs they do not need; and a command that runs a request
checks its sources once, not once before opening the request and again inside the flow."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO

HEAVY = ("prefect", "pandas", "numpy", "msgraph", "googleapiclient", "jira", "sqlalchemy")

# Runs the CLI as `dsr ARGS` would, then names the heavy packages it imported.
PROBE = """
import json, sys
args, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["dsr", *args]
from dsrflow.cli import app
try:
    app()
except SystemExit as exc:
    code = exc.code
heavy = sorted(name for name in watched if name in sys.modules)
print("IMPORTED " + json.dumps({"code": code, "heavy": heavy}))
"""


def imported(args: list[str], tmp_path: Path) -> tuple[int, list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(s for s in done.stdout.splitlines() if s.startswith("IMPORTED "))
    found = json.loads(line.removeprefix("IMPORTED "))
    return found["code"], found["heavy"], done.stdout + done.stderr


def changed_export(folder: Path) -> Path:
    """An export folder whose one file no longer matches its manifest."""
    folder.mkdir()
    (folder / "export.json").write_text("{}")
    manifest = {"files": [{"name": "export.json", "sha256": hashlib.sha256(b"[]").hexdigest()}]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(
    ("args", "code", "allowed"),
    [
        (["--help"], 0, set()),
        (["mapping", "check", str(REPO / "mappings" / "onprem.yaml")], 0, set()),
        (["schema", "mapping"], 0, set()),
        (["export", "verify", "EXPORT"], 1, set()),
        # An argument error: one line, before anything heavy (the ledger's SQL included).
        (["access", "--subject", "not-an-address", "--out", "OUT"], 2, set()),
        (["server", "status", "--config", "dsrflow.yaml"], 1, set()),
    ],
)
def test_cheap_commands_import_nothing_heavy(args, code, allowed, tmp_path):
    args = [
        str(changed_export(tmp_path / "export")) if a == "EXPORT" else a.replace("OUT", "out")
        for a in args
    ]
    exit_code, heavy, output = imported(args, tmp_path)
    assert exit_code == code, output
    assert set(heavy) <= allowed, f"dsr {' '.join(args)} imported {heavy}"


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check above can fail: a command that runs a flow does import Prefect."""
    _, heavy, output = imported(["schema", "export"], tmp_path)
    assert "prefect" not in heavy, output
    done = subprocess.run(
        [sys.executable, "-c", "import flows.access, sys; print('prefect' in sys.modules)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True"


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "masking_key")
def test_a_command_checks_each_source_once(onprem_config, tmp_path, monkeypatch):
    """`dsr access` checks the sources before it opens the request and hands the passed check
    to the flow it runs next; a flow started without a command's check checks for itself."""
    import dsrflow.preflight
    from dsrflow.cli import app

    opened: Counter[str] = Counter()
    check_source = dsrflow.preflight._check_source

    def counted(config, name, rights):
        opened[name] += 1
        return check_source(config, name, rights)

    monkeypatch.setattr(dsrflow.preflight, "_check_source", counted)
    result = CliRunner().invoke(
        app,
        [
            "access",
            "--subject",
            "kari.nordmann@example.com",
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(onprem_config),
        ],
    )
    assert result.exit_code == 0, result.output
    assert opened == {"onprem": 1}

    from dsrflow.run_settings import run_settings
    from flows.access import access_request

    opened.clear()
    with run_settings(onprem_config, tmp_path / "direct"):
        access_request(request_id="DSR-2026-0777", subject_emails=["kari.nordmann@example.com"])
    assert opened == {"onprem": 1}  # checked in the flow: nothing was handed over


def test_a_handed_over_check_is_for_one_config_and_right_and_used_once(onprem_config):
    from dsrflow.config import load_config
    from dsrflow.preflight import Preflight, hand_over, take_over
    from dsrflow.request import RequestType

    config = load_config(onprem_config)
    checked = Preflight(RequestType.ERASURE, ready=["onprem"])
    hand_over(config, checked)
    assert take_over(config, RequestType.ACCESS) is None  # another right
    other = config.model_copy(update={"phone_region": "SE"})
    assert take_over(other, RequestType.ERASURE) is None  # another config
    assert take_over(load_config(onprem_config), RequestType.ERASURE) is checked  # same file
    assert take_over(config, RequestType.ERASURE) is None  # once
    failed = Preflight(RequestType.ERASURE, problems=["onprem: down"])
    hand_over(config, failed)
    assert take_over(config, RequestType.ERASURE) is None  # only a passed check is kept
