"""A throwaway PostgreSQL server for the tests.

Each server gets its own temporary data directory, a free port on 127.0.0.1 and trust
authentication, so tests never touch (or depend on) a system cluster. Durability is switched
off: the data is discarded at the end, and fsync would dominate CREATE DATABASE time.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

NOT_FOUND_MESSAGE = (
    "PostgreSQL server binaries not found: run `make test` "
    "(it installs them via scripts/ensure-postgres.sh)"
)
DEBIAN_ROOT = Path("/usr/lib/postgresql")
HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 30
SERVER_SETTINGS = (
    f"listen_addresses={HOST}",
    "fsync=off",
    "full_page_writes=off",
    "synchronous_commit=off",
)


class PostgresNotFoundError(RuntimeError):
    """No initdb/postgres binaries on this machine (or no OS user to run them as)."""


class PostgresStartError(RuntimeError):
    """The server did not come up; the message carries the server log tail."""


def find_bin_dir(root: Path = DEBIAN_ROOT, path: str | None = None) -> Path:
    """The newest Debian-style install under ``root``, else the directory of ``initdb`` on PATH."""
    candidates = [p.parent for p in root.glob("*/bin/initdb") if os.access(p, os.X_OK)]
    if candidates:
        return max(candidates, key=_version_key)
    initdb = shutil.which("initdb", path=path)
    if initdb and shutil.which("postgres", path=str(Path(initdb).parent)):
        return Path(initdb).parent
    raise PostgresNotFoundError(NOT_FOUND_MESSAGE)


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    # Compare "15" and "9.6" numerically, so that 15 wins.
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def free_port() -> int:
    """A TCP port nobody listens on right now (the caller retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _run_as_postgres() -> dict[str, Any]:
    """Popen arguments that drop root: initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresNotFoundError(
            f"running as root but there is no `{SUPERUSER}` OS user to run the server as; "
            + NOT_FOUND_MESSAGE
        ) from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty server log)"


def _port_taken(log_path: Path, log_start: int) -> bool:
    # Only this attempt's part of the log counts: earlier attempts may have hit a taken port.
    with log_path.open("rb") as log:
        log.seek(log_start)
        text = log.read().decode(errors="replace")
    return "could not create any TCP/IP sockets" in text


class PostgresServer:
    """One private PostgreSQL cluster: ``start()``, ``create_database()``, ``stop()``."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self._bin_dir = bin_dir
        self._base: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._port

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the maintenance database ``postgres``."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        url = URL.create(
            "postgresql+psycopg", username=SUPERUSER, host=HOST, port=self.port, database=database
        )
        return url.render_as_string(hide_password=False)

    @property
    def base_dir(self) -> Path:
        if self._base is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "server.log"

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """initdb a fresh cluster and start it; raises with the log tail if it fails."""
        if self._process is not None:
            raise RuntimeError("the PostgreSQL server is already started")
        bin_dir = self._bin_dir or find_bin_dir()
        run_as = _run_as_postgres()
        self._base = self._make_base_dir(run_as)
        # Safety net for aborted runs: never leave a server or its files behind.
        atexit.register(self.stop)
        try:
            self._initdb(bin_dir, run_as)
            self._launch(bin_dir, run_as)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Fast shutdown (does not wait for clients to disconnect), then remove all files."""
        process, self._process = self._process, None
        if process is not None:
            _shut_down(process)
        base, self._base = self._base, None
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        self._port = None
        atexit.unregister(self.stop)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        with psycopg.connect(**self._connect_args("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def _connect_args(self, database: str) -> dict[str, Any]:
        return {"host": HOST, "port": self.port, "user": SUPERUSER, "dbname": database}

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _make_base_dir(run_as: dict[str, Any]) -> Path:
        base = Path(tempfile.mkdtemp(prefix="dsrflow-pg-"))
        # mkdtemp makes it 0700; the postgres OS user must be able to enter it when we are root.
        base.chmod(0o755)
        if run_as:
            os.chown(base, run_as["user"], run_as["group"])
        return base

    def _child_env(self) -> dict[str, str]:
        # The C locale avoids warnings about locales the machine lacks.
        return {**os.environ, "LC_ALL": "C"}

    def _initdb(self, bin_dir: Path, run_as: dict[str, Any]) -> None:
        command = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # a throwaway cluster: skip flushing it to disk
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=self.base_dir,
            env=self._child_env(),
            check=False,
            **run_as,
        )
        if result.returncode != 0:
            raise PostgresStartError(
                f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def _launch(self, bin_dir: Path, run_as: dict[str, Any]) -> None:
        # free_port() cannot reserve the port: if someone takes it meanwhile, try another.
        for _attempt in range(PORT_ATTEMPTS):
            port = free_port()
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            process = self._spawn(bin_dir, run_as, port)
            self._process, self._port = process, port
            if self._wait_ready(process, port, log_start):
                return
            _shut_down(process)
            self._process = self._port = None
        raise PostgresStartError(
            f"PostgreSQL could not bind a free port on {HOST} after {PORT_ATTEMPTS} attempts; "
            f"server log tail:\n{_log_tail(self.log_path)}"
        )

    def _spawn(self, bin_dir: Path, run_as: dict[str, Any], port: int) -> subprocess.Popen[bytes]:
        command = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(port)]
        command += ["-k", str(self.base_dir)]
        for setting in SERVER_SETTINGS:
            command += ["-c", setting]
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=self._child_env(),
                # Own session: a Ctrl-C in the terminal reaches pytest, whose teardown then
                # stops the server in order.
                start_new_session=True,
                **run_as,
            )

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int, log_start: int) -> bool:
        """True once the server accepts connections; False if the port was taken."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = _log_tail(self.log_path)
                if _port_taken(self.log_path, log_start):
                    return False
                raise PostgresStartError(
                    f"postgres exited with code {process.returncode} while starting; "
                    f"server log tail:\n{tail}"
                )
            if self._accepts_connections(port):
                return True
            time.sleep(0.05)
        raise PostgresStartError(
            f"PostgreSQL did not accept connections within {START_TIMEOUT:.0f} s "
            f"(data directory {self.data_dir}); server log tail:\n{_log_tail(self.log_path)}"
        )

    def _accepts_connections(self, port: int) -> bool:
        # Ask through our private Unix socket, not TCP: a stranger that grabbed the port
        # could answer on TCP, never on this socket. TCP is bound before the socket exists.
        try:
            with psycopg.connect(
                host=str(self.base_dir), port=port, user=SUPERUSER, dbname="postgres"
            ):
                return True
        except psycopg.OperationalError:
            return False


def _shut_down(process: subprocess.Popen[bytes]) -> None:
    """SIGINT is PostgreSQL's fast shutdown; escalate to immediate, then kill, if it hangs."""
    for sig, timeout in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGQUIT, 5.0)):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait()
