"""The first `dsr demo` on a fresh machine (issue 11 §1): no ~/.prefect, no PREFECT_* settings.

The command keeps Prefect's home private to the sandbox folder, waits as long as the first
start of Prefect's server needs (it creates its database), and when that start fails anyway it
ends with one line naming the setting to change, not a traceback. Both run as a newcomer
would: `dsr` in a subprocess with an empty HOME.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

DSR = Path(sys.executable).parent / "dsr"


def fresh_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DSRFLOW_"))}
    env["HOME"] = str(home)
    return env


def test_first_demo_with_an_empty_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    box = tmp_path / "sandbox"
    env = fresh_environment(home)

    # A first start that cannot finish in time (1 s): one clear line, exit 2.
    slow = {**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}
    failed = subprocess.run(
        [str(DSR), "demo", "--dir", str(box)],
        env=slow,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, failed.stderr
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in errors[0]

    # The newcomer's first real run, right after (the interrupted start left a database).
    done = subprocess.run(
        [str(DSR), "demo", "--dir", str(box)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "starting Prefect's local server" in done.stderr
    assert "Error logging to API" not in done.stdout + done.stderr  # drained before it stopped
    export = json.loads((box / "exports" / "DSR-2026-0001" / "export.json").read_text())
    assert export["total_records"] > 0
    assert set(export["records"]) == {"onprem", "mail", "drive", "jira", "marketplace"}
    # Analytics cannot be searched: the export says so in the mapping's words, and that the
    # demo request names no Analytics id.
    [analytics] = export["not_searched"]["analytics"]
    assert analytics.endswith("names no Analytics id (Analytics cannot be searched by address)")
    # Art. 15(1)(g): the Marketplace's records name the Marketplace as their source.
    origins = {(s["source"], s["collected_from"]) for s in export["information"]["sources"]}
    assert {o for s, o in origins if s == "marketplace"} == {
        "the Atlassian Marketplace (Atlassian Pty Ltd), as the buyer gave it to Atlassian"
    }

    prefect_home = box / "prefect"
    assert (prefect_home / "prefect.db").exists()
    assert stat.S_IMODE(prefect_home.stat().st_mode) == 0o700
    assert not (home / ".prefect").exists()  # the user's global Prefect home is untouched

    # Prefect's local server keeps running for the next command; the demo says how to stop it.
    config = box.resolve() / "dsrflow.yaml"
    assert f"dsr server stop --config {config}" in done.stdout
    stopped = subprocess.run(
        [str(DSR), "server", "stop", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped Prefect's local server" in stopped.stdout
    assert not (prefect_home / "local-server.json").exists()
