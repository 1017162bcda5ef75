"""Every answer an emulator gives in the tests, checked against the vendor's own schema
(issue 13, "schema fidelity, kept true"): tests/conftest.py registers ``observe`` with the
emulator servers and fails a test whose emulators answered anything the schema does not allow.
Jira is checked only for its error shape: Atlassian publishes its schema as an OpenAPI document
that no package here ships (see the README's list of what is not proven)."""

from __future__ import annotations

import json
import threading

from sandbox.emulators.server import Exchange
from tests.support.vendor_schemas import google, graph, jira

_LOCK = threading.Lock()
VIOLATIONS: list[str] = []


def problems(exchange: Exchange) -> list[str]:
    """What the vendor's schema does not allow in one exchange."""
    kind = exchange.emulator.split("-", 1)[0]
    if exchange.status in (204, 304) or (exchange.status >= 500 and not exchange.body):
        return []
    media = kind == "google" and google.downloads(exchange.method, exchange.path)
    if media and exchange.status < 300:  # a download's bytes: no schema describes them
        return []
    if "json" not in exchange.content_type and exchange.body.strip():
        return (
            []
            if "multipart" in exchange.content_type
            or "text" in exchange.content_type
            or (
                kind == "jira" and jira.serves_file(exchange.method, exchange.path, exchange.status)
            )
            else [f"{exchange.method} {exchange.path}: content type {exchange.content_type!r}"]
        )
    try:
        if kind == "google":
            return google.check(exchange.method, exchange.path, exchange.status, exchange.body)
        if kind == "graph":
            return graph.check(
                exchange.method,
                exchange.path,
                exchange.status,
                exchange.body,
                exchange.request_body,
            )
        if kind == "jira":
            return jira.check(exchange.method, exchange.path, exchange.status, exchange.body)
    except json.JSONDecodeError as exc:
        return [f"{exchange.method} {exchange.path}: not JSON ({exc})"]
    return []


def observe(exchange: Exchange) -> None:
    found = problems(exchange)
    if found:
        where = f"{exchange.emulator} {exchange.method} {exchange.path} -> {exchange.status}"
        with _LOCK:
            VIOLATIONS.extend(f"{where}: {p}" for p in found)


def take() -> list[str]:
    """The violations seen since the last call."""
    with _LOCK:
        found = VIOLATIONS[:]
        VIOLATIONS.clear()
    return found
