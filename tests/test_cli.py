import json
import sqlite3

import pytest
import yaml
from dateutil.relativedelta import relativedelta
from typer.testing import CliRunner

from dsrflow.cli import app
from tests.conftest import REPO, SANDBOX_FIXTURES

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["access"],
        ["demo"],
        ["sandbox"],
        ["sandbox", "up"],
        ["mapping", "check"],
        ["schema", "export"],
        ["schema", "mapping"],
        ["export", "verify"],
        ["erase"],
        ["rectify"],
        ["restrict"],
        ["withdraw-consent"],
        ["approve"],
        ["reject"],
        ["check"],
        ["ledger", "verify"],
        ["requests"],
    ],
)
def test_help_everywhere(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_access_refuses_bad_address_before_anything_runs(tmp_path):
    result = runner.invoke(
        app,
        [
            "access",
            "--subject",
            "al@@example.com",
            "--out",
            str(tmp_path),
            "--config",
            str(tmp_path / "absent.yaml"),
        ],
    )
    assert result.exit_code == 2
    assert "'al@@example.com' is not a valid e-mail address" in result.output
    assert list(tmp_path.iterdir()) == []


def test_access_names_missing_config(tmp_path):
    result = runner.invoke(
        app,
        [
            "access",
            "--subject",
            "al@example.com",
            "--out",
            str(tmp_path),
            "--config",
            str(tmp_path / "absent.yaml"),
        ],
    )
    assert result.exit_code == 2
    assert "absent.yaml cannot be read" in result.output


def test_mapping_check(tmp_path):
    good = runner.invoke(app, ["mapping", "check", str(REPO / "mappings" / "onprem.yaml")])
    assert good.exit_code == 0
    assert "ok" in good.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: sql\ncategories: {}\ntables: {}\n")
    result = runner.invoke(app, ["mapping", "check", str(bad)])
    assert result.exit_code == 2
    assert "tables" in result.output


def test_sandbox_up_with_fixtures_writes_config(tmp_path):
    config = tmp_path / "conf" / "dsrflow.yaml"
    result = runner.invoke(
        app,
        [
            "sandbox",
            "up",
            "--once",
            "--dir",
            str(tmp_path / "box"),
            "--fixtures",
            str(SANDBOX_FIXTURES),
            "--write-config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "onprem.contacts: 8 rows" in result.output
    assert "onprem.invoices: 3 rows" in result.output
    data = yaml.safe_load(config.read_text())
    source = data["sources"]["onprem"]
    assert source["kind"] == "sql"
    assert source["mapping"].endswith("mappings/onprem.yaml")
    database = source["url"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM invoices").fetchone() == (3,)


def test_sandbox_up_rejects_missing_fixtures(tmp_path):
    result = runner.invoke(
        app,
        ["sandbox", "up", "--once", "--dir", str(tmp_path), "--fixtures", str(tmp_path / "nope")],
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_schema_commands_print_json():
    result = runner.invoke(app, ["schema", "export"])
    assert json.loads(result.output)["$id"] == "urn:dsrflow:schema:export:1"


def config_with_request(tmp_path, request_id, request_type, days_ago):
    """A config whose ledger holds one request, received ``days_ago`` days ago."""
    import datetime as dt

    from dsrflow.ledger import Ledger
    from dsrflow.request import DataSubjectRequest, Subject
    from sandbox.runtime import onprem_source, write_config

    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source("sqlite:///unused.db"), tmp_path / "exports")
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    received = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    ledger.open_request(
        DataSubjectRequest(
            id=request_id,
            type=request_type,
            subject=Subject.from_raw(["al@example.com"]),
            received_at=received,
        )
    )
    return config, ledger, received


def test_ledger_verify_and_requests(tmp_path):
    from dsrflow.ledger import audit_table
    from dsrflow.request import RequestType

    config, ledger, _ = config_with_request(tmp_path, "DSR-2026-0007", RequestType.ERASURE, 40)
    ledger.record("DSR-2026-0007", "note", by="test")
    listing = runner.invoke(app, ["requests", "--config", str(config)])
    assert listing.exit_code == 0, listing.output
    assert "DSR-2026-0007" in listing.output
    assert "overdue" in listing.output
    intact = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert intact.exit_code == 0
    assert "2 audit entries" in intact.output
    with ledger.engine.begin() as conn:
        conn.execute(audit_table.update().where(audit_table.c.seq == 1).values(actor="mallory"))
    ledger.close()
    broken = runner.invoke(app, ["ledger", "verify", "--config", str(config)])
    assert broken.exit_code == 1
    assert "audit entry 1: was changed after it was written" in broken.output


def test_extend_a_deadline(tmp_path):
    from dsrflow.request import RequestType

    config, ledger, received = config_with_request(
        tmp_path, "DSR-2026-0008", RequestType.ACCESS, 10
    )
    ledger.close()
    args = ["extend", "DSR-2026-0008", "--config", str(config), "--officer", "Ingrid"]
    done = runner.invoke(app, [*args, "--reason", "four sources, 3,000 records"])
    assert done.exit_code == 0, done.output
    assert f"now due {(received + relativedelta(months=3)).date().isoformat()}" in done.output
    again = runner.invoke(app, [*args, "--reason", "still busy"])
    assert again.exit_code == 2
    assert "already extended" in again.output
    unknown = runner.invoke(
        app, ["extend", "DSR-2026-0099", "--config", str(config), "--reason", "x"]
    )
    assert unknown.exit_code == 2
    assert "no request DSR-2026-0099" in unknown.output
    too_long = runner.invoke(app, [*args, "--reason", "x", "--months", "3"])
    assert too_long.exit_code == 2


def test_a_missing_sqlite_database_is_named_not_created(tmp_path):
    from sandbox.runtime import onprem_source, write_config

    absent = tmp_path / "nowhere" / "onprem.db"
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(f"sqlite:///{absent}"), tmp_path / "out")
    result = runner.invoke(
        app, ["access", "--subject", "al@example.com", "--out", str(tmp_path / "o"),
              "--config", str(config)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"its SQLite database {absent} does not exist" in result.output
    assert "sources.onprem.url" in result.output
    assert not absent.exists()
    assert not absent.parent.exists()


def test_a_broken_mapping_is_named_with_its_file_and_line(tmp_path):
    from sandbox.runtime import onprem_source, write_config

    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (REPO / "mappings" / "onprem.yaml")
        .read_text()
        .replace("primary_key: [id]\n    identities:", "primary_key: [id]\n    identitis:", 1)
    )
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(f"sqlite:///{tmp_path / 'x.db'}"), tmp_path / "out")
    data = yaml.safe_load(config.read_text())
    data["sources"]["onprem"]["mapping"] = str(broken)
    config.write_text(yaml.safe_dump(data))
    from dsrflow.config import load_config

    with pytest.raises(Exception) as caught:
        load_config(config).load_mappings()
    assert str(caught.value).startswith(f"mapping {broken} is invalid")
    assert "(config)" not in str(caught.value)


def test_the_console_script_freezes_the_collector_after_every_other_exit_handler():
    """``dsr`` leaves without the interpreter's last collections (dsrflow/cli/collector.py):
    an exit handler registered before it still runs, and sees the collector frozen."""
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert scripts["scripts"]["dsr"] == "dsrflow.cli:main"
    program = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, gc.isenabled()))\n"
        "sys.argv = ['dsr', 'requests', '--help']\n"
        "from dsrflow.cli import main\n"
        "main()\n"
    )
    printed = _python(program)
    assert "Usage" in printed  # the command ran as ever
    assert printed.rstrip().endswith("frozen True False")


def test_only_the_console_script_settles_what_a_command_built():
    """``settle`` freezes what exists in a process that runs one command (``dsr``); in one
    that runs many (this test session, CliRunner) it keeps nothing from the collector."""
    program = (
        "import gc, sys\n"
        "from dsrflow.cli import collector\n"
        "collector.settle()\n"
        "before = gc.get_freeze_count()\n"
        "collector.one_command_per_process()\n"
        "collector.settle()\n"
        "print(before, gc.get_freeze_count() > 0)\n"
    )
    assert _python(program).split() == ["0", "True"]


def _python(program: str) -> str:
    """What ``program`` prints, run by this Python in a process of its own (the collector's
    state is per process); it must exit 0."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
