"""Fides 2.86 beside the benchmark: its venv, a Redis of its own, and benchmarks/fides_runner.py.

Fides needs Python >= 3.13 and pins its own dependencies, so it never enters the project's venv:
``python -m benchmarks.fides_app --install`` makes ``.bench/fides-venv`` (gitignored) with
``ethyca-fides==FIDES_VERSION`` from PyPI. Without that venv (or without ``redis-server``, Debian
package redis-server) the benchmark measures dsrflow alone and says in one line why Fides was not.

``FidesApp`` starts, for one benchmark: a throwaway ``redis-server`` on a free port (Fides keeps
the request's identity and task state there), Fides' application database beside the measured
one on the same PostgreSQL server, and the runner in Fides' venv, which sets Fides up and then
answers one access request per ``run()``. Fides' settings are environment variables; its
analytics are turned off (no traffic leaves the machine), its logs go to a file in the
benchmark's temporary folder, which goes at the end with everything else.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
FIDES_VERSION = "2.86.2"
VENV = REPO / ".bench" / "fides-venv"
PYTHON = VENV / "bin" / "python"
RUNNER = Path(__file__).with_name("fides_runner.py")
APP_DATABASE = "fides_app"
CONNECTION_KEY = "postgres_example"  # the connection key Fides' tests give the example dataset


class FidesUnavailable(RuntimeError):
    """Fides cannot be run here; the message says why in one line."""


def unavailable_reason() -> str | None:
    """Why Fides cannot run here, or None when it can."""
    if not PYTHON.is_file():
        where = VENV.relative_to(REPO)
        return f"no Fides venv at {where} (python -m benchmarks.fides_app --install)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH (Debian package redis-server), which Fides needs"
    return None


def install() -> None:
    """Make Fides' venv with the pinned version (Python 3.13: Fides 2.81+ requires it)."""
    python = shutil.which("python3.13") or str(Path.home() / ".pyenv/versions/3.13.0/bin/python")
    if not Path(python).is_file():
        raise SystemExit("fides_app: no Python 3.13 found (Fides 2.81+ needs it)")
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)  # noqa: S603
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", f"ethyca-fides=={FIDES_VERSION}"]
    subprocess.run(pip, check=True)  # noqa: S603


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FidesApp:
    """Redis, Fides' application database and the runner, for the database at ``url``."""

    def __init__(self, url: str, dataset: Path, email: str) -> None:
        self.url = sa.engine.make_url(url)
        self.dataset = dataset
        self.email = email
        self.version = ""
        self._folder = Path(tempfile.mkdtemp(prefix="dsrflow-fides-"))
        self._redis: subprocess.Popen[bytes] | None = None
        self._runner: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> FidesApp:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> None:
        password = secrets.token_hex(16)
        port = _free_port()
        self._log = (self._folder / "fides.log").open("wb")
        # No persistence: Fides' cache lives as long as the benchmark.
        self._redis = subprocess.Popen(  # noqa: S603
            [
                *(shutil.which("redis-server") or "redis-server", "--port", str(port)),
                *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--requirepass", password, "--dir", str(self._folder)),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(port, self._redis)
        app_url = self._app_database()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FIDES__", "PREFECT_"))}
        env |= {
            "FIDES__DATABASE__SERVER": str(self.url.host or "127.0.0.1"),
            "FIDES__DATABASE__PORT": str(self.url.port or 5432),
            "FIDES__DATABASE__USER": str(self.url.username or "postgres"),
            "FIDES__DATABASE__PASSWORD": str(self.url.password or "unused"),
            "FIDES__DATABASE__DB": APP_DATABASE,
            "FIDES__REDIS__HOST": "127.0.0.1",
            "FIDES__REDIS__PORT": str(port),
            "FIDES__REDIS__PASSWORD": password,
            "FIDES__REDIS__SSL": "false",
            "FIDES__SECURITY__APP_ENCRYPTION_KEY": secrets.token_hex(16),  # 32 characters
            "FIDES__SECURITY__OAUTH_ROOT_CLIENT_ID": "bench",
            "FIDES__SECURITY__OAUTH_ROOT_CLIENT_SECRET": secrets.token_hex(16),
            "FIDES__USER__ANALYTICS_OPT_OUT": "true",  # no analytics leave the machine
            "FIDES__CONFIG_PATH": str(self._folder / "fides.toml"),
            "HOME": str(self._folder),  # Fides may write ~/.fides; not the user's
        }
        (self._folder / "fides.toml").write_text("", encoding="utf-8")
        config = {
            "dataset": str(self.dataset),
            "app_url": app_url,
            "email": self.email,
            "database": {
                "host": self.url.host or "127.0.0.1",
                "port": self.url.port or 5432,
                "dbname": self.url.database,
                "username": self.url.username or "postgres",
                "password": self.url.password or "unused",
            },
        }
        self._runner = subprocess.Popen(  # noqa: S603
            [str(PYTHON), str(RUNNER), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=self._folder,
            env=env,
        )
        ready = self._answer()
        self.version = str(ready.get("version", ""))

    def _app_database(self) -> str:
        """Fides' own database, new, beside the measured one on the same server."""
        admin = self.url.set(database="postgres")
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{APP_DATABASE}"')
                conn.exec_driver_sql(f'CREATE DATABASE "{APP_DATABASE}"')
        finally:
            engine.dispose()
        app = self.url.set(drivername="postgresql", database=APP_DATABASE)
        return app.set(password=self.url.password or "unused").render_as_string(hide_password=False)

    def _answer(self) -> dict[str, Any]:
        assert self._runner is not None and self._runner.stdout is not None
        line = self._runner.stdout.readline()
        if not line:
            raise FidesUnavailable(f"the Fides runner stopped: {self._log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self) -> tuple[float, dict[str, int]]:
        """One access request by Fides: its own time (ms, measured in its process) and the
        rows it returned per table."""
        assert self._runner is not None and self._runner.stdin is not None
        self._runner.stdin.write("run\n")
        self._runner.stdin.flush()
        answer = self._answer()
        return float(answer["ms"]), {str(k): int(v) for k, v in answer["rows"].items()}

    def _log_tail(self, lines: int = 15) -> str:
        path = self._folder / "fides.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def close(self) -> None:
        if self._runner is not None:
            if self._runner.stdin is not None:
                self._runner.stdin.close()  # the runner ends at the end of its input
            try:
                self._runner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._runner.kill()
                self._runner.wait()
        if self._redis is not None:
            self._redis.terminate()
            self._redis.wait(timeout=30)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FidesUnavailable(f"redis-server ended with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise FidesUnavailable(f"redis-server did not listen on port {port} within {seconds:g} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fides_app")
    parser.add_argument("--install", action="store_true", help=f"install Fides {FIDES_VERSION}")
    args = parser.parse_args(argv)
    if args.install:
        install()
    print(unavailable_reason() or f"Fides is ready in {VENV}", file=sys.stderr)


if __name__ == "__main__":
    main()
