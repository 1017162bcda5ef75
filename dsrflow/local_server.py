"""One local Prefect server per private Prefect home, shared by the commands that use that home.

Starting Prefect's temporary server took ~10 s of every command (issue 18). Instead the first
command that needs a server starts ``prefect server start`` in the background, in that home
(its SQLite database there, bound to 127.0.0.1 only, analytics off, its API behind a credential
generated for the home), and records it owner-only in the home; later commands find the record,
check it and use the server at once. A record is used only when everything about it is ours:
the file is owner-only, it names this home, its process is alive and carries this home's mark
(a pid can be reused), ``/api/health`` answers, and the server, asked with this home's
credential, says its home is this one. Anything else is stale: the process it names is stopped
if it is still ours, and a new server starts.

The server stops itself after ``DSRFLOW_PREFECT_SERVER_IDLE_MINUTES`` (default 30) without a
command using it: a small supervisor (this module run as ``serve``) starts the server in its own
process group, watches the home's ``local-server.used`` file, which every command touches while
it runs, and stops the group when it has not been touched for that long. ``0`` keeps the old
behaviour: the command that started the server stops it when it ends. ``dsr server stop``
stops it at once.

This module imports only the standard library at load time: the supervisor runs it alone.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dsrflow.errors import DsrflowError

RECORD = "local-server.json"  # pid, url, home: owner-only
AUTH = "local-server-auth"  # user:password of the server's API (and the UI's login), 0600
USED = "local-server.used"  # touched by every command while it uses the server
LOCK = "local-server.lock"  # one command at a time finds or starts the server
LOG = "local-server.log"  # the server's own output (warnings and errors only)
# Every process of a local server carries its home in this variable: a recorded pid is ours
# only if the process still carries it (pids are reused).
MARK = "DSRFLOW_LOCAL_PREFECT_HOME"
IDLE_ENV = "DSRFLOW_PREFECT_SERVER_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 30.0
HOST = "127.0.0.1"  # never another interface: the API holds run names, logs and artifacts


class LocalServerError(DsrflowError, RuntimeError):
    """The local server could not be started, or its home's files are not ours alone."""


@dataclass(frozen=True)
class LocalServer:
    home: Path
    url: str  # the API, http://127.0.0.1:PORT/api
    pid: int  # the supervisor's; its process group holds the server
    auth: str  # user:password

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def idle_minutes() -> float:
    """How long the server outlives the last command that used it; 0: not at all."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE_MINUTES
    try:
        value = float(raw)
    except ValueError:
        raise LocalServerError(f"{IDLE_ENV}={raw!r} is not a number of minutes") from None
    if value < 0:
        raise LocalServerError(f"{IDLE_ENV}={raw!r} must be 0 or more minutes")
    return value


def credential(home: Path) -> str:
    """The home's API credential: made once, kept owner-only in the home."""
    path = home / AUTH
    if path.exists():
        _own_file(path)
        return path.read_text(encoding="utf-8").strip()
    value = f"dsrflow:{secrets.token_urlsafe(32)}"
    _write_private(path, value.encode("utf-8"))
    return value


def find(home: Path) -> LocalServer | None:
    """The server recorded in ``home`` if it is running, healthy and this home's; else None."""
    home = home.resolve()
    path = home / RECORD
    if not path.exists():
        return None
    _own_file(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        pid, url, recorded_home = int(record["pid"]), str(record["url"]), str(record["home"])
    except (ValueError, KeyError, TypeError):
        return None
    if recorded_home != str(home) or not url.startswith(f"http://{HOST}:"):
        return None  # a record copied from elsewhere names another home's server
    if not _ours(pid, home):
        return None
    server = LocalServer(home=home, url=url, pid=pid, auth=credential(home))
    return server if _answers_for(server) else None


def ensure(
    home: Path, timeout: float, progress: Callable[[str], None] = print
) -> tuple[LocalServer, bool]:
    """The home's running server, or a new one started and waited for (up to ``timeout``
    seconds). Returns it and whether it was started here."""
    home = home.resolve()
    _private_dir(home)
    with _locked(home):
        found = find(home)
        if found is not None:
            touch(home)
            return found, False
        _stop_recorded(home)  # a stale record: its process, if still ours, goes first
        return _start(home, timeout, progress), True


def stop(home: Path) -> bool:
    """Stop the home's server (its whole process group); True if one was running."""
    home = home.resolve()
    if not home.is_dir():
        return False
    with _locked(home):
        return _stop_recorded(home)


def touch(home: Path) -> None:
    """Say that a command uses the server now (the idle timeout counts from the last touch)."""
    path = home / USED
    if not path.exists():
        _write_private(path, b"")
    os.utime(path)


@contextlib.contextmanager
def in_use(server: LocalServer) -> Iterator[None]:
    """Keep the server from idling out while the block runs (a long flow, a slow source)."""
    import threading

    idle = idle_minutes() * 60
    every = max(1.0, min(60.0, idle / 3)) if idle else 60.0

    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            with contextlib.suppress(OSError):  # a home removed under a running command
                touch(server.home)

    touch(server.home)
    thread = threading.Thread(target=beat, daemon=True, name="local-server-in-use")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        with contextlib.suppress(OSError):
            touch(server.home)


def auth_header(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode("utf-8")).decode("ascii")


# --- starting and stopping -------------------------------------------------------------------


def _start(home: Path, timeout: float, progress: Callable[[str], None]) -> LocalServer:
    auth = credential(home)
    fresh = not (home / "prefect.db").exists()
    progress(
        f"starting Prefect's local server (home {home}"
        + ("; its first start creates the database, which can take a minute" if fresh else "")
        + ")"
    )
    started = time.monotonic()
    port = _free_port()
    url = f"http://{HOST}:{port}/api"
    log = os.open(home / LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "dsrflow.local_server",
                "serve",
                "--home",
                str(home),
                "--port",
                str(port),
                "--idle-minutes",
                str(idle_minutes()),
            ],
            cwd=home,  # nothing lands in the user's working directory
            env=_server_environment(home, auth),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: outlives this command, stops whole
        )
    finally:
        os.close(log)
    server = LocalServer(home=home, url=url, pid=process.pid, auth=auth)
    _write_private(
        home / RECORD,
        json.dumps({"pid": process.pid, "url": url, "home": str(home)}, indent=2).encode(),
    )
    touch(home)
    last_word = started
    while True:
        touch(home)  # waiting for it is using it: the idle time starts once it is up
        if _answers_for(server):
            progress(f"Prefect's local server is up ({time.monotonic() - started:.0f} s)")
            return server
        code = process.poll()
        if code is not None:
            _forget(home, process.pid)
            raise LocalServerError(
                f"Prefect's local server exited (status {code}) before it answered; "
                f"see {home / LOG}: {_log_tail(home)}"
            )
        now = time.monotonic()
        if now - started > timeout:
            _kill_group(process.pid)
            process.wait(timeout=10)
            _forget(home, process.pid)
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        if now - last_word >= 15:
            progress(f"  still starting ({now - started:.0f} s)")
            last_word = now
        time.sleep(0.25)


def _server_environment(home: Path, auth: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # The server is not a client of another server; the stack's settings stay out.
        if k not in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_PROFILE")
    }
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_API_HOST": HOST,
            "PREFECT_SERVER_API_AUTH_STRING": auth,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            MARK: str(home),
        }
    )
    return env


def _stop_recorded(home: Path) -> bool:
    """Stop the recorded server if its process is still ours; forget the record either way."""
    path = home / RECORD
    if not path.exists():
        return False
    _own_file(path)
    try:
        pid = int(json.loads(path.read_text(encoding="utf-8"))["pid"])
    except (ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return False
    running = _ours(pid, home)
    if running:
        _kill_group(pid)
    _forget(home, pid)
    return running


def _forget(home: Path, pid: int) -> None:
    """Remove the record if it still names ``pid`` (a newer server's record stays)."""
    path = home / RECORD
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == pid:
            path.unlink()


def _kill_group(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group ``pid`` leads, up to ``grace`` s, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (a zombie does not: it has exited, and a
    container's init may never reap it)."""
    import psutil

    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # reap the leader if it is our own child
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False


# --- checks ----------------------------------------------------------------------------------


def _ours(pid: int, home: Path) -> bool:
    """The process lives, is this user's, and carries this home's mark."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if process.uids().real != os.getuid():
            return False
        return process.environ().get(MARK) == str(home)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _answers_for(server: LocalServer) -> bool:
    """``/health`` answers, and the server, asked with this home's credential, names this home
    as its own: never a server of another home on a reused port."""
    try:
        with urllib.request.urlopen(f"{server.url}/health", timeout=2) as answer:  # noqa: S310
            if answer.status != 200:
                return False
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only (checked)
            f"{server.url}/admin/settings", headers={"Authorization": auth_header(server.auth)}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            settings = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return str(settings.get("home")) == str(server.home)


def _own_file(path: Path) -> None:
    """A file this module trusts is this user's and no one else's."""
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise LocalServerError(f"{path} is not owner-only; remove it or chmod 600 it")


# --- files -----------------------------------------------------------------------------------


def _private_dir(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if home.stat().st_mode & 0o077:
        home.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    fd = os.open(home / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _log_tail(home: Path) -> str:
    try:
        lines = (home / LOG).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "the log is empty"


# --- the supervisor --------------------------------------------------------------------------


def serve(home: Path, port: int, idle_minutes: float) -> int:
    """Run ``prefect server start`` for ``home`` and stop it after ``idle_minutes`` without a
    command touching ``home/local-server.used`` (0: never; the starting command stops it)."""
    prefect = Path(sys.executable).parent / "prefect"
    command = [str(prefect), "server", "start", "--host", HOST, "--port", str(port)]
    quiet = ["--analytics-off", "--log-level", "WARNING"]
    server = subprocess.Popen([*command, *quiet], cwd=home)  # noqa: S603 - Prefect's CLI
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    idle = idle_minutes * 60
    check = max(1.0, min(30.0, idle / 10)) if idle else 30.0
    while server.poll() is None and not stopping:
        if idle and time.time() - _last_used(home) > idle:
            # Under the commands' lock: none finds the server between this check and the stop.
            with _locked(home) if home.is_dir() else contextlib.nullcontext():
                if time.time() - _last_used(home) > idle:
                    print(f"idle for {idle_minutes:g} min: stopping", flush=True)
                    _end(server)
                    _forget(home, os.getpid())
                    return 0
        _sleep_unless(lambda: stopping, check)
    _end(server)
    _forget(home, os.getpid())
    return 0


def _end(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _last_used(home: Path) -> float:
    try:
        return (home / USED).stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _sleep_unless(stop: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(0.5, seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dsrflow.local_server")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run a home's local Prefect server (started by dsr)")
    run.add_argument("--home", type=Path, required=True)
    run.add_argument("--port", type=int, required=True)
    run.add_argument("--idle-minutes", type=float, default=DEFAULT_IDLE_MINUTES)
    args = parser.parse_args(argv)
    return serve(args.home.resolve(), args.port, args.idle_minutes)


if __name__ == "__main__":
    sys.exit(main())
