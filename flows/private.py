"""What a run leaves in Prefect's database, logs and storage: no personal data.

Prefect keeps a failed flow run's message and log lines for ever, and pickles the exception
into its result storage (``flow_engine.handle_exception`` writes it whatever the flow's
``persist_result``). The exceptions that end a request can carry what the subject gave or a
vendor echoed (an invalid address, a Drive query in an HttpError, a Jira URL). So every flow
ends a failure itself: it returns a Failed state whose message is scrubbed and whose exception
stays in memory for the caller in this process (the CLI prints it to the officer's terminal),
and the run loggers scrub every line before a handler sees it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import traceback
import typing
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from prefect import get_run_logger
from prefect.states import Failed

from connectors.run_scope import run_scope
from dsrflow.errors import DsrflowError
from dsrflow.run_settings import current_run_settings
from flows.case_page import case_pages
from flows.heartbeat import heartbeats

P = ParamSpec("P")
R = TypeVar("R")

# Wider than an address on purpose: anything that looks like one, raw or URL-encoded.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"'@\\/?&=]+(?:@|%40)+[^\s<>()\[\],;:\"'@\\/?&=]+")
# Six or more digits with the separators people write phones with, not inside a word or a
# request id (DSR-2026-70000005), nor a URL's host (http://127.0.0.1:4200: the UI's links).
_PHONE = re.compile(r"(?<!//)(?<![\w-])\+?\d(?:[\d \t\-/.()\u2009\u202f\u2013]*\d){5,}")
# Errors a person causes or meets: one line. Anything else is a bug: its traceback, scrubbed.
EXPECTED = DsrflowError


def scrub(text: str) -> str:
    """``text`` with every address-like and phone-like token replaced by a placeholder."""
    return _PHONE.sub("<phone>", _ADDRESS.sub("<address>", text))


def one_line(exc: BaseException) -> str:
    return scrub(f"{type(exc).__name__}: {exc}")


class _Scrubbing(logging.Filter):
    """Scrubs a run log record in place; a known error keeps its one line, a bug its
    traceback, both scrubbed (the chained vendor error's text is in the traceback too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), ()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.exc_text = (
                None
                if isinstance(error, EXPECTED)
                else scrub("".join(traceback.format_exception(error)).rstrip())
            )
            record.exc_info = None
        return True


_SCRUBBING = _Scrubbing()
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def scrub_run_logs() -> None:
    """Install the filter on Prefect's run loggers (idempotent)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _SCRUBBING not in logger.filters:
            logger.addFilter(_SCRUBBING)


def private_run(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a flow's function (under ``@flow``): run logs scrubbed; a failure ends the run as
    a Failed state with a scrubbed one-line message, nothing pickled to storage; the run's
    heartbeats sent here where the caller turned Prefect's off (flows/heartbeat.py); a source
    opened again within the run reuses its first opening (connectors/run_scope.py)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        scrub_run_logs()
        try:
            with (
                heartbeats(current_run_settings().heartbeat_seconds),
                case_pages(),
                run_scope(),  # a source opened again in this run reuses what it built
            ):
                return fn(*args, **kwargs)
        except Exception as exc:
            get_run_logger().error("the request failed: %s", one_line(exc), exc_info=exc)
            # The caller in this process gets ``exc`` back from the state; the API only the
            # message (to_state_create drops data that was not persisted).
            failed: Any = Failed(message=one_line(exc), data=exc)
            return cast(R, failed)

    # Prefect builds the run form from the annotations; resolve them in fn's own module.
    run.__annotations__ = typing.get_type_hints(fn)
    run.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return run
