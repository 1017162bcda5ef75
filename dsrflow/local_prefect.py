"""The Prefect server that a command running a flow in this process talks to.

A command given ``PREFECT_API_URL`` uses that server (the officer's stack, say). Otherwise it
starts Prefect's temporary server itself, in a private, owner-only Prefect home beside the
sandbox or the config, never the user's global ``~/.prefect``: that home holds run names, logs
and artifacts of requests. The first start in a new home creates Prefect's database, which on a
busy machine takes far longer than Prefect's own 20 s start timeout; so the wait is longer,
shown while it lasts, and a failure ends in one line naming the setting to change.

Prefect reads its settings when it is first imported, so ``private_home`` must run before
anything imports it (the CLI imports flows inside its commands for that reason).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dsrflow.errors import DsrflowError

# Prefect's own setting; dsrflow's default when the user sets none (seconds).
STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
DEFAULT_STARTUP_TIMEOUT = 300
# No telemetry leaves the machine from the temporary server or the client.
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


class PrefectUnavailable(DsrflowError, RuntimeError):
    """Prefect's server could not be reached or started; the message names what to change."""


def no_telemetry() -> None:
    """Turn Prefect's analytics off in this process unless the user set them: Prefect reads
    its settings when first imported, so every entry point calls this before importing it."""
    for name, value in QUIET.items():
        os.environ.setdefault(name, value)


def private_home(folder: Path) -> Path | None:
    """Use ``folder/prefect`` as Prefect's home, owner-only, unless the user chose a home or a
    server (``PREFECT_HOME`` / ``PREFECT_API_URL``) already. Returns the home chosen here."""
    no_telemetry()
    if os.environ.get("PREFECT_HOME") or os.environ.get("PREFECT_API_URL"):
        return None
    home = folder.resolve() / "prefect"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    os.environ["PREFECT_HOME"] = str(home)
    return home


def startup_timeout() -> float:
    raw = os.environ.get(STARTUP_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_STARTUP_TIMEOUT
    try:
        return float(raw)
    except ValueError:
        raise PrefectUnavailable(
            f"{STARTUP_TIMEOUT_ENV}={raw!r} is not a number of seconds"
        ) from None


def configured_api_url() -> str | None:
    """The Prefect API this process is set to use, if any (env, profile, or a test harness)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@contextlib.contextmanager
def prefect_server(progress: Callable[[str], None] = print) -> Iterator[str]:
    """The API URL this process's flows report to: ``PREFECT_API_URL``'s, or a temporary
    server's, started here and stopped on exit."""
    url = configured_api_url()
    if url:
        yield url
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    timeout = startup_timeout()
    home = PREFECT_HOME.value()
    fresh = not (Path(home) / "prefect.db").exists()
    progress(
        f"starting Prefect's local server (home {home}"
        + ("; its first start creates the database, which can take a minute" if fresh else "")
        + ")"
    )
    # Prefect's clients look for the same instance (port None) and find it running.
    server = SubprocessASGIServer()
    started = time.monotonic()
    with _every(15, lambda: progress(f"  still starting ({time.monotonic() - started:.0f} s)")):
        try:
            server.start(timeout=int(timeout))
        except Exception as exc:
            server.stop()
            raise PrefectUnavailable(
                f"Prefect's local server did not start within {timeout:.0f} s in {home} "
                f"({_first_line(exc)}); set {STARTUP_TIMEOUT_ENV} to wait longer, or "
                "PREFECT_API_URL to use a running server"
            ) from None
    progress(f"Prefect's local server is up ({time.monotonic() - started:.0f} s)")
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
            _drain()
    finally:
        server.stop()


def _drain() -> None:
    """Logs and events travel to the server in the background: send the last of them while
    it still runs (else they fail noisily after it stopped)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@contextlib.contextmanager
def _every(seconds: float, tick: Callable[[], None]) -> Iterator[None]:
    """Call ``tick`` every ``seconds`` while the block runs (a heartbeat for a long wait)."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(seconds):
            tick()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
