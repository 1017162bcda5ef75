"""The officer's whole stack on one machine: a Prefect server (SQLite, analytics off, its API
behind a generated basic-auth credential), the sandbox, a process worker and every deployment
registered. ``up`` starts what is not running and records the processes in ``STACK/pids.json``
and the API's address in ``STACK/stack.json``; ``down`` stops those and every process that
carries the stack's mark (the flow runs the worker started, paused ones included).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import psutil

from dsrflow.errors import DsrflowError
from dsrflow.export import write_private

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_DIRECTORY = Path(".stack")
PIDS_FILE = "pids.json"
STATE_FILE = "stack.json"
AUTH_FILE = "api-auth-string"  # user:password for the Prefect API, mode 0600
# Every process the stack starts inherits this variable (flow runs too, through the worker's
# environment): ``down`` finds them by it, whichever session or parent they ended up in.
MARK = "DSRFLOW_STACK"


class StackError(DsrflowError, RuntimeError):
    """A part of the stack did not come up."""


class StackNotFound(StackError, LookupError):
    """No stack (or no credential of it) where one was named."""


class StackAlreadyRunning(StackError):
    """``up`` found a stack recorded in its directory and started nothing."""


@dataclass(frozen=True)
class Stack:
    directory: Path
    api_url: str
    ui_url: str
    config_path: Path

    @property
    def auth_file(self) -> Path:
        return self.directory / AUTH_FILE


def down_command(directory: Path) -> str:
    """The command that stops the stack in ``directory``, as the officer would type it."""
    if directory == DEFAULT_DIRECTORY:
        return "dsr stack down"
    return f"dsr stack down --dir {shlex.quote(str(directory))}"


def _private_directory(directory: Path) -> Path:
    # The sandbox's personal data, the Prefect database and the credential live in here.
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def credential(directory: Path) -> str:
    """The stack's API credential: made once per stack directory, kept in an owner-only file."""
    path = directory / AUTH_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise StackNotFound(f"the stack's credential {path} is readable by others; chmod 600")
        return path.read_text(encoding="utf-8").strip()
    value = f"dsrflow:{secrets.token_urlsafe(32)}"
    write_private(path, value.encode("utf-8"))
    return value


def client_environment(directory: Path = DEFAULT_DIRECTORY) -> dict[str, str]:
    """``PREFECT_API_URL`` and ``PREFECT_API_AUTH_STRING`` of the stack in ``directory``:
    what a Prefect client (the CLI, ``get_client``) needs to talk to its API."""
    directory = directory.resolve()
    state_path = directory / STATE_FILE
    if not state_path.exists():
        raise StackNotFound(f"no stack is running in {directory}; start one with `dsr stack up`")
    state = json.loads(state_path.read_text(encoding="utf-8"))
    if not (directory / AUTH_FILE).exists():
        raise StackNotFound(f"the stack in {directory} has no credential file {AUTH_FILE}")
    return {"PREFECT_API_URL": state["api_url"], "PREFECT_API_AUTH_STRING": credential(directory)}


@contextmanager
def connected(directory: Path = DEFAULT_DIRECTORY) -> Iterator[None]:
    """Point this process's Prefect client at the stack in ``directory`` for the block."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    env = client_environment(directory)
    with temporary_settings(
        {
            PREFECT_API_URL: env["PREFECT_API_URL"],
            PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"],
        }
    ):
        yield


def _environment(directory: Path, api_url: str, config_path: Path, auth: str) -> dict[str, str]:
    """The clients' environment; the server's adds ``PREFECT_SERVER_API_AUTH_STRING``."""
    env = dict(os.environ)
    env.pop("PREFECT_SERVER_API_AUTH_STRING", None)  # only the server holds the server's side
    env.update(
        {
            "PREFECT_HOME": str(directory / "prefect"),
            "PREFECT_API_URL": api_url,
            "PREFECT_API_AUTH_STRING": auth,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "DSRFLOW_HOME": str(REPO),
            "DSRFLOW_CONFIG": str(config_path),
            MARK: str(directory),
        }
    )
    return env


def _start(name: str, args: list[str], directory: Path, env: dict[str, str]) -> int:
    log = (directory / f"{name}.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - our own executables, fixed arguments
        args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process.pid


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(  # noqa: S603 - our own executables, fixed arguments
        args, cwd=REPO, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise StackError(f"{what} failed (exit {result.returncode}):\n{tail}")


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
    raise StackError(f"{what} did not come up within {timeout:.0f} s; {log} ends:\n{tail}")


def up(directory: Path, port: int = 4200, host: str = "127.0.0.1", workers: int = 1) -> Stack:
    """Start the stack; raise with the failing part's log tail if any part does not come up.
    ``workers``: process workers on the pool (each starts every flow run it takes as a
    process of its own)."""
    given, directory = directory, _private_directory(directory.resolve())
    if (directory / PIDS_FILE).exists():
        raise StackAlreadyRunning(
            f"a stack is already recorded in {directory}; stop it with `{down_command(given)}`"
        )
    api_url = f"http://{host}:{port}/api"
    config_path = directory / "sandbox" / "dsrflow.yaml"
    auth = credential(directory)
    env = _environment(directory, api_url, config_path, auth)
    pids: dict[str, int] = {}

    def record() -> None:
        (directory / PIDS_FILE).write_text(json.dumps(pids, indent=2))

    pids["server"] = _start(
        "server",
        [str(BIN / "prefect"), "server", "start", "--host", host, "--port", str(port)],
        directory,
        {**env, "PREFECT_SERVER_API_AUTH_STRING": auth},
    )
    record()
    # /health answers without the credential (so probes work); everything else needs it.
    _wait_for(f"{api_url}/health", "the Prefect server", 90, directory, "server.log")
    stack = Stack(
        directory=directory,
        api_url=api_url,
        ui_url=f"http://{host}:{port}",
        config_path=config_path,
    )
    (directory / STATE_FILE).write_text(
        json.dumps({"api_url": api_url, "ui_url": stack.ui_url}, indent=2)
    )
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
            raise StackError("the sandbox wrote no config; see sandbox.log")
        time.sleep(0.5)
    _check_sources(config_path)
    prefect = str(BIN / "prefect")
    _run(
        [prefect, "work-pool", "create", "dsrflow", "--type", "process", "--overwrite"],
        env,
        "creating the work pool",
    )
    _run([prefect, "--no-prompt", "deploy", "--all"], env, "registering the deployments")
    for number in range(1, workers + 1):
        name = "worker" if number == 1 else f"worker-{number}"  # down() finds all by the mark
        pids[name] = _start(name, [prefect, "worker", "start", "--pool", "dsrflow"], directory, env)
        record()
    return stack


def _check_sources(config_path: Path) -> None:
    """`dsr check` before any deployment can run: every source ready for every right."""
    from dsrflow.config import load_config
    from dsrflow.preflight import every_right

    problems = every_right(load_config(config_path)).problems
    if problems:
        raise StackError(
            "the sources are not ready (dsr check --config "
            f"{config_path}):\n" + "\n".join(f"  - {p}" for p in problems)
        )


def _marked(directory: Path) -> list[psutil.Process]:
    """This user's processes that carry the stack's mark, except this one and its parents."""
    spare = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter():
        if process.pid in spare:
            continue
        try:
            if process.environ().get(MARK) == str(directory):
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def _stop(processes: list[psutil.Process]) -> None:
    """SIGTERM, up to 5 s for a clean exit, then SIGKILL."""
    for process in processes:
        try:
            process.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=5)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _flow_run_ids(processes: list[psutil.Process]) -> set[str]:
    ids = set()
    for process in processes:
        try:
            if run_id := process.environ().get("PREFECT__FLOW_RUN_ID"):
                ids.add(run_id)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return ids


def _mark_crashed(directory: Path, run_ids: set[str]) -> None:
    """A stopped run left Paused would offer a Resume that nothing answers: say it crashed."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with connected(directory), get_client(sync_client=True) as client:
            for run_id in run_ids:
                state = client.read_flow_run(UUID(run_id)).state
                if state is None or not state.is_final():
                    message = "its process was stopped by `dsr stack down`; start it again"
                    client.set_flow_run_state(run_id, Crashed(message=message), force=True)
    except (httpx.HTTPError, LookupError):
        pass  # the server is gone already: nothing to tell it


def down(directory: Path) -> list[str]:
    """Stop every process of the stack: the worker and its flow runs (marked crashed on the
    server), then the sandbox and the server; returns what was stopped."""
    directory = directory.resolve()
    path = directory / PIDS_FILE
    pids: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
    # Only a recorded pid that still carries the mark is ours: a pid can be reused.
    marked = {process.pid: process for process in _marked(directory)}
    # Children are taken before their parents go, and marked processes are found wherever
    # they are: a flow run can sit in a session of its own (Prefect's workspace starter makes
    # them so) out of reach of a signal to the worker's process group.
    services = {
        name: _tree(marked[pids[name]])
        for name in ("sandbox", "server")
        if pids.get(name) in marked
    }
    service_pids = {process.pid for tree in services.values() for process in tree}
    worker = marked.get(pids.get("worker", -1))
    # The worker, its flow runs and any marked process left over (an orphaned flow run).
    runs = {p.pid: p for p in marked.values() if p.pid not in service_pids}
    if worker is not None:
        runs.update({p.pid: p for p in _tree(worker)})
    run_ids = _flow_run_ids(list(runs.values()))
    _stop(list(runs.values()))
    stopped = ["worker"] if worker is not None else []
    if run_ids:
        stopped.append(f"flow runs ({len(run_ids)})")
        _mark_crashed(directory, run_ids)
    for name, tree in services.items():
        _stop(tree)
        stopped.append(name)
    path.unlink(missing_ok=True)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return stopped
