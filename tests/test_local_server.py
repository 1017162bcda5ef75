"""One local Prefect server per Prefect home (issue 18): the first command starts it, later
commands (other processes) find it and use it as it is; a record whose process is gone, or is
no longer ours, is replaced; a server is never used from another home; it listens on 127.0.0.1
only; it stops on `dsr server stop` and after its idle time.

Real servers (``prefect server start``) in temporary homes: the first start of a home creates
its database, so the module shares one server and starts a second only where a test needs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dsrflow import local_server
from dsrflow.local_server import LocalServer

DSR = Path(sys.executable).parent / "dsr"


def environment(idle_minutes: str = "10") -> dict[str, str]:
    """A newcomer's environment: no Prefect home or server named, so ``--config`` decides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env[local_server.IDLE_ENV] = idle_minutes
    return env


def dsr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DSR), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def group(server: LocalServer) -> list[psutil.Process]:
    leader = psutil.Process(server.pid)
    return [leader, *leader.children(recursive=True)]


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LocalServer]]:
    """A config folder whose home's server `dsr server start` started."""
    folder = tmp_path_factory.mktemp("first")
    config = folder / "dsrflow.yaml"
    started = dsr("server", "start", "--config", str(config), env=environment())
    home = folder / "prefect"
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "started" in started.stdout
        server = local_server.find(home)
        assert server is not None
        yield config, server
    finally:
        local_server.stop(home)


def test_a_second_command_reuses_the_server(running):
    config, server = running
    took = time.monotonic()
    again = dsr("server", "start", "--config", str(config), env=environment())
    took = time.monotonic() - took
    assert again.returncode == 0, again.stdout + again.stderr
    assert "is running" in again.stdout
    assert "starting Prefect's local server" not in again.stderr
    assert server.ui_url in again.stdout
    record = json.loads((server.home / local_server.RECORD).read_text())
    assert (record["pid"], record["url"]) == (server.pid, server.url)  # unchanged
    print(f"second command found the running server in {took:.2f} s (whole `dsr` process)")


def test_the_record_and_the_credential_are_owner_only(running):
    _, server = running
    for name in (local_server.RECORD, local_server.AUTH, local_server.LOG):
        assert (server.home / name).stat().st_mode & 0o077 == 0, name
    assert server.home.stat().st_mode & 0o077 == 0


def test_it_listens_on_127_0_0_1_only(running):
    _, server = running
    listening = [
        c.laddr
        for process in group(server)
        for c in process.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening, "the server listens nowhere"
    assert {address.ip for address in listening} == {"127.0.0.1"}
    assert {address.port for address in listening} == {int(server.url.rsplit(":", 1)[1][:-4])}


def test_its_api_wants_the_homes_credential(running):
    import httpx

    _, server = running
    assert httpx.get(f"{server.url}/health").status_code == 200  # probes need none
    assert httpx.get(f"{server.url}/admin/version").status_code == 401
    wrong = {"Authorization": local_server.auth_header("dsrflow:wrong")}
    assert httpx.get(f"{server.url}/admin/version", headers=wrong).status_code == 401
    right = {"Authorization": local_server.auth_header(server.auth)}
    assert httpx.get(f"{server.url}/admin/version", headers=right).status_code == 200


def test_another_home_never_uses_it(running, tmp_path):
    _, server = running
    other = tmp_path / "prefect"
    other.mkdir(mode=0o700)
    record = (server.home / local_server.RECORD).read_text()
    # The record copied as it is names the first home: not this one's.
    local_server._write_private(other / local_server.RECORD, record.encode())
    assert local_server.find(other) is None
    # Rewritten to name this home: its process carries the first home's mark.
    forged = {**json.loads(record), "home": str(other.resolve())}
    local_server._write_private(other / local_server.RECORD, json.dumps(forged).encode())
    assert local_server.find(other) is None
    # And the server itself, asked with its own credential, names its own home.
    borrowed = LocalServer(home=other.resolve(), url=server.url, pid=server.pid, auth=server.auth)
    assert not local_server._answers_for(borrowed)
    assert local_server._answers_for(server)
    # Stopping the other home stops nothing of the first.
    assert local_server.stop(other) is False
    assert local_server.find(server.home) == server


def test_a_live_process_that_is_not_ours_is_left_alone(tmp_path):
    """A recorded pid now used by another process (here: this test's) is not the server, and
    is neither used nor stopped."""
    home = tmp_path / "prefect"
    home.mkdir(mode=0o700)
    record = {"pid": os.getpid(), "url": "http://127.0.0.1:9/api", "home": str(home.resolve())}
    local_server._write_private(home / local_server.RECORD, json.dumps(record).encode())
    assert local_server.find(home) is None
    assert local_server.stop(home) is False  # not ours: no signal sent (we are still here)
    assert not (home / local_server.RECORD).exists()


def test_a_record_readable_by_others_is_refused(tmp_path):
    home = tmp_path / "prefect"
    home.mkdir(mode=0o700)
    path = home / local_server.RECORD
    path.write_text(json.dumps({"pid": 1, "url": "http://127.0.0.1:9/api", "home": str(home)}))
    path.chmod(0o644)
    with pytest.raises(local_server.LocalServerError, match="not owner-only"):
        local_server.find(home)


def test_a_stale_record_is_replaced_and_an_idle_server_stops(tmp_path):
    """A dead pid in the record: a new server starts. With a short idle time and no command
    touching it, the server then stops by itself and forgets its record."""
    home = tmp_path / "prefect"
    home.mkdir(mode=0o700)
    gone = subprocess.Popen(["true"])  # a pid that is surely dead afterwards
    gone.wait()
    stale = {"pid": gone.pid, "url": "http://127.0.0.1:9/api", "home": str(home.resolve())}
    local_server._write_private(home / local_server.RECORD, json.dumps(stale).encode())
    os.environ[local_server.IDLE_ENV] = "0.1"  # 6 s
    try:
        server, started = local_server.ensure(home, timeout=600, progress=lambda _line: None)
    finally:
        del os.environ[local_server.IDLE_ENV]
    try:
        assert started
        assert server.pid != gone.pid
        assert json.loads((home / local_server.RECORD).read_text())["pid"] == server.pid
        assert local_server.find(home) == server
        processes = group(server)
        assert wait_gone(server.pid, 120), "the idle server kept running"
        assert all(wait_gone(p.pid, 30) for p in processes)
        assert not (home / local_server.RECORD).exists()
        assert local_server.find(home) is None
    finally:
        local_server.stop(home)


def test_dsr_server_stop_stops_the_whole_group(tmp_path, running):
    """Last in the module (it stops the shared server): no process of it is left."""
    config, server = running
    processes = group(server)
    stopped = dsr("server", "stop", "--config", str(config), env=environment())
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped" in stopped.stdout
    assert all(wait_gone(p.pid, 30) for p in processes)
    assert not (server.home / local_server.RECORD).exists()
    status = dsr("server", "status", "--config", str(config), env=environment())
    assert status.returncode == 1
    assert "no local Prefect server" in status.stdout
