"""The Graph emulator for mail tests: a running server over the fixture tenant, and
``MailConnector``s (the real msgraph-sdk) pointed at it. A plugin (tests/conftest.py): the
``server`` (one per test module) and ``graph`` (reset for each test) fixtures every mail test
module shares; a module that needs another tenant defines its own."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connectors.mail.connector import MailConnector
from connectors.mail.mapping import MailMapping
from connectors.mail.settings import MailSource
from sandbox import mail_seed
from sandbox.emulators.faults import Faults, FaultSettings
from sandbox.emulators.graph import GraphStore, create_app
from sandbox.emulators.server import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "mail" / "mail.json"
BASE_MAPPING = yaml.safe_load((REPO / "mappings" / "mail.yaml").read_text())


class Graph:
    """A running emulator over the fixture, and connectors pointed at it."""

    def __init__(self, store: GraphStore, faults: Faults, url: str) -> None:
        self.store = store
        self.faults = faults
        self.url = url
        self.opened: list[MailConnector] = []

    def connector(
        self, page_size: int = 250, max_retries: int = 3, **mapping: Any
    ) -> MailConnector:
        """A connector with ``mappings/mail.yaml`` changed by ``mapping``: ``section=value``
        replaces a section, ``section__name=value`` one entry of it."""
        data = copy.deepcopy(BASE_MAPPING)
        for key, value in mapping.items():
            section, _, name = key.partition("__")
            if name:
                data[section][name] = value
            else:
                data[section] = value
        settings = MailSource(
            kind="mail",
            mapping=Path("mail.yaml"),
            base_url=f"{self.url}/v1.0",
            page_size=page_size,
            max_retries=max_retries,
        )
        connector = MailConnector(
            "mail", MailMapping.model_validate(data), settings, retry_delay_s=0.01
        )
        self.opened.append(connector)
        return connector

    def requests(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_emulator/stats").json()["requests"]

    def reset_stats(self) -> None:
        httpx.post(f"{self.url}/_emulator/reset-stats")

    @contextmanager
    def fresh(self) -> Iterator[Graph]:
        """The fixture tenant reloaded, no faults, no connectors; closes what the test opened."""
        with self.store.lock:
            self.store.mailboxes.clear()
            mail_seed.load_fixture(self.store, FIXTURE)
        self.faults.settings = FaultSettings()
        self.reset_stats()
        self.opened = []
        try:
            yield self
        finally:
            self.faults.settings = FaultSettings()
            for connector in self.opened:
                connector.close()


@contextmanager
def running_graph(name: str, graph_class: type[Graph] = Graph) -> Iterator[Graph]:
    store = GraphStore()
    faults = Faults()
    with EmulatorServer(create_app(store, faults), name=name) as url:
        yield graph_class(store, faults, url)


@pytest.fixture(scope="module")
def server() -> Iterator[Graph]:
    with running_graph("graph-test") as graph:
        yield graph


@pytest.fixture
def graph(server: Graph) -> Iterator[Graph]:
    """The module's emulator, reloaded with the fixture and without faults for each test."""
    with server.fresh() as fresh:
        yield fresh
