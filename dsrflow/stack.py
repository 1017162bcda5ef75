"""The officer's whole stack on one machine: a Prefect server (SQLite, analytics off), the
sandbox, a process worker and every deployment registered. ``up`` starts what is not running
and records the processes in ``STACK/pids.json``; ``down`` stops exactly those.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Stack:
    directory: Path
    api_url: str
    ui_url: str
    config_path: Path


def _environment(directory: Path, api_url: str, config_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(directory / "prefect"),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "DSRFLOW_HOME": str(REPO),
            "DSRFLOW_CONFIG": str(config_path),
        }
    )
    return env


def _start(name: str, args: list[str], directory: Path, env: dict[str, str]) -> int:
    log = (directory / f"{name}.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - our own executables, fixed arguments
        args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process.pid


def _wait_for(url: str, what: str, timeout: float, directory: Path, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = (directory / log).read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s; {log} ends:\n{tail}")


def up(directory: Path, port: int = 4200, host: str = "127.0.0.1") -> Stack:
    """Start the stack; raise with the failing part's log tail if any part does not come up."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "pids.json").exists():
        raise RuntimeError(f"a stack is already recorded in {directory}; run `dsr stack down`")
    api_url = f"http://{host}:{port}/api"
    config_path = directory / "sandbox" / "dsrflow.yaml"
    env = _environment(directory, api_url, config_path)
    pids: dict[str, int] = {}

    def record() -> None:
        (directory / "pids.json").write_text(json.dumps(pids, indent=2))

    pids["server"] = _start(
        "server",
        [str(BIN / "prefect"), "server", "start", "--host", host, "--port", str(port)],
        directory,
        env,
    )
    record()
    _wait_for(f"{api_url}/health", "the Prefect server", 90, directory, "server.log")
    config_path.unlink(missing_ok=True)  # wait for this sandbox's config, not an old one
    pids["sandbox"] = _start(
        "sandbox",
        [str(BIN / "dsr"), "sandbox", "up", "--dir", str(directory / "sandbox")],
        directory,
        env,
    )
    record()
    deadline = time.monotonic() + 120
    while not config_path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the sandbox wrote no config; see sandbox.log")
        time.sleep(0.5)
    subprocess.run(  # noqa: S603
        [
            str(BIN / "prefect"),
            "work-pool",
            "create",
            "dsrflow",
            "--type",
            "process",
            "--overwrite",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(  # noqa: S603
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    pids["worker"] = _start(
        "worker", [str(BIN / "prefect"), "worker", "start", "--pool", "dsrflow"], directory, env
    )
    record()
    return Stack(
        directory=directory,
        api_url=api_url,
        ui_url=f"http://{host}:{port}",
        config_path=config_path,
    )


def down(directory: Path) -> list[str]:
    """Stop every process ``up`` recorded, worker first; returns what was stopped."""
    path = directory.resolve() / "pids.json"
    if not path.exists():
        return []
    pids: dict[str, int] = json.loads(path.read_text())
    stopped = []
    for name in ("worker", "sandbox", "server"):
        pid = pids.get(name)
        if pid is None:
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(name)
        except ProcessLookupError:
            continue
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    path.unlink()
    return stopped
