"""The Prefect server that a command running a flow in this process talks to.

A command given ``PREFECT_API_URL`` uses that server (the officer's stack, say). Otherwise it
uses the local server of its Prefect home (``dsrflow.local_server``): found running, or started
and left running for the next command. That home is private and owner-only, beside the sandbox
or the config, never the user's global ``~/.prefect``: it holds run names, logs and artifacts of
requests. The first start in a new home creates Prefect's database, which on a busy machine
takes far longer than Prefect's own 20 s start timeout; so the wait is longer, shown while it
lasts, and a failure ends in one line naming the setting to change.

Prefect reads its settings when it is first imported, so ``private_home`` must run before
anything imports it (the CLI imports flows inside its commands for that reason).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dsrflow.errors import DsrflowError

if TYPE_CHECKING:
    from dsrflow.local_server import LocalServer

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
    """The API URL this process's flows report to: ``PREFECT_API_URL``'s, or the local server
    of this Prefect home (``dsrflow.local_server``): found running, or started here and left
    running for the next command (``DSRFLOW_PREFECT_SERVER_IDLE_MINUTES``; 0: stopped when
    this block ends)."""
    url = configured_api_url()
    if url:
        yield url
        return
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        PREFECT_HOME,
        temporary_settings,
    )

    from dsrflow import local_server

    home = Path(PREFECT_HOME.value())
    idle = _friendly_idle()
    server, started = local_prefect_server(home, progress)
    if started and idle:
        progress(
            f"it keeps running for the next commands (UI {server.ui_url}) and stops itself "
            f"after {idle:g} idle minutes; `dsr server stop` with this --config stops it now"
        )
    client = {"PREFECT_API_URL": server.url, "PREFECT_API_AUTH_STRING": server.auth}
    try:
        with (
            local_server.in_use(server),
            # The environment too: a thread a flow starts reads its settings from there.
            _environment(client),
            temporary_settings(
                updates={PREFECT_API_URL: server.url, PREFECT_API_AUTH_STRING: server.auth}
            ),
        ):
            yield server.url
            _drain()
    finally:
        if started and not idle:
            local_server.stop(home)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, and put back what was there."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def home_for(folder: Path) -> Path:
    """The Prefect home a command working beside ``folder`` uses (see ``private_home``)."""
    chosen = os.environ.get("PREFECT_HOME")
    return Path(chosen).expanduser().resolve() if chosen else folder.resolve() / "prefect"


def local_prefect_server(
    home: Path, progress: Callable[[str], None] = print
) -> tuple[LocalServer, bool]:
    """The running local server of ``home``, or one started now; whether it was started here.
    A failure is one line naming what to change."""
    from dsrflow import local_server

    timeout = startup_timeout()
    try:
        return local_server.ensure(home, timeout, progress)
    except TimeoutError as exc:
        raise PrefectUnavailable(
            f"Prefect's local server did not start within {timeout:.0f} s in {home} "
            f"({_first_line(exc)}); set {STARTUP_TIMEOUT_ENV} to wait longer, or "
            "PREFECT_API_URL to use a running server"
        ) from None
    except local_server.LocalServerError as exc:
        raise PrefectUnavailable(str(exc)) from None


def _friendly_idle() -> float:
    from dsrflow import local_server

    try:
        return local_server.idle_minutes()
    except local_server.LocalServerError as exc:
        raise PrefectUnavailable(str(exc)) from None


def _drain() -> None:
    """Logs and events travel to the server in the background: send the last of them while
    it still runs (else they fail noisily after it stopped)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
