"""A running Jira emulator seeded with the fixture desk, and connectors on it: the ``site``
fixture every Jira test module shares (registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.jira import sitecache
from connectors.jira.client import JiraClient
from connectors.jira.connector import JiraConnector
from connectors.jira.mapping import JiraMapping
from connectors.jira.settings import JiraSource
from dsrflow.mapping import load_mapping
from sandbox import jira_seed
from sandbox.emulators.faults import Faults
from sandbox.emulators.jira import JiraEmulator, JiraStore
from sandbox.emulators.server import EmulatorServer

REPO = Path(__file__).resolve().parents[2]

FIXTURE = REPO / "tests" / "fixtures" / "jira" / "jira.json"
MAPPING_PATH = REPO / "mappings" / "jira.yaml"
TOKEN_ENV = "DSRFLOW_TEST_JIRA_TOKEN"


class Site:
    """A running emulator with its store, and connectors on it."""

    def __init__(self, store: JiraStore, url: str, faults: Faults) -> None:
        self.store = store
        self.url = url
        self.faults = faults

    def source(self, **overrides: Any) -> JiraSource:
        settings: dict[str, Any] = {
            "kind": "jira",
            "mapping": str(MAPPING_PATH),
            "url": self.url,
            "email": jira_seed.SANDBOX_EMAIL,
            "api_token": {"env": TOKEN_ENV},
            "max_retries": 0,
        }
        settings.update(overrides)
        return JiraSource.model_validate(settings)

    def connector(
        self, mapping: JiraMapping | None = None, sleeps: list[float] | None = None, **settings: Any
    ) -> JiraConnector:
        source = self.source(**settings)
        # Waits are recorded, not slept: the tests check them without taking the time.
        record = sleeps.append if sleeps is not None else (lambda _seconds: None)
        client = JiraClient("jira", source, sleep=record)
        return JiraConnector("jira", mapping or load_mapping(MAPPING_PATH), source, client=client)

    def set_faults(self, **settings: Any) -> None:
        httpx.post(f"{self.url}/_emulator/faults", json=settings).raise_for_status()


@pytest.fixture(autouse=True)
def _fresh_site_facts() -> None:
    """Each test starts with no cached site facts: emulators of earlier tests may have served
    other fields and desks under the same loopback URL (a port used again)."""
    sitecache.forget_all()


def start_site(store: JiraStore, deployment: str = "Cloud") -> tuple[EmulatorServer, Site]:
    sitecache.forget_all()  # a new site, perhaps under an earlier one's URL
    faults = Faults()
    server = EmulatorServer(JiraEmulator(store, faults, deployment=deployment).app, name="jira")
    return server, Site(store, server.start(), faults)


def fixture_store() -> JiraStore:
    store = JiraStore()
    jira_seed.load_fixture(store, FIXTURE)
    store.credentials = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    return store


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    server, running = start_site(fixture_store())
    try:
        yield running
    finally:
        server.stop()
