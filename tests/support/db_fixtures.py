"""pytest plugin: a session-wide PostgreSQL server, fresh databases, the Fides example database.

Registered from tests/conftest.py with ``pytest_plugins = ["tests.support.db_fixtures"]``.
Tests that use a PostgreSQL fixture get the ``postgres`` marker automatically, so
``-m "not postgres"`` deselects them without each test having to say so.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fides import (
    FIDES_SKIP_REASON,
    fides_available,
    load_fides_postgres,
    load_fides_sqlite,
)
from tests.support.postgres import PostgresServer

MakeDatabase = Callable[..., str]

POSTGRES_MARKER = "postgres: needs the PostgreSQL server that the test setup starts"
POSTGRES_FIXTURES = frozenset(
    {"postgres_server", "pg_database_factory", "pg_database", "fides_postgres_url"}
)
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,40}")
# Database names only need to be unique within the session's private cluster.
_database_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml declares the marker; declare it too when the plugin is used elsewhere,
    # so that --strict-markers accepts it.
    declared = config.getini("markers")
    if not any(line.split(":")[0].strip() == "postgres" for line in declared):
        config.addinivalue_line("markers", POSTGRES_MARKER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the whole session (about 1 s to initdb and start)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database_factory(postgres_server: PostgresServer) -> MakeDatabase:
    """``make(name_prefix="t") -> url``: a new, empty, uniquely named database per call.

    Databases are not dropped after the test: the whole cluster is discarded at session end,
    and a test's leftover connections would make DROP DATABASE fail.
    """

    def make(name_prefix: str = "t") -> str:
        if not _PREFIX.fullmatch(name_prefix):
            raise ValueError(f"database name prefix must match {_PREFIX.pattern}: {name_prefix!r}")
        return postgres_server.create_database(f"{name_prefix}_{next(_database_numbers)}")

    return make


@pytest.fixture
def pg_database(pg_database_factory: MakeDatabase) -> str:
    """SQLAlchemy URL of a fresh empty PostgreSQL database for this test."""
    return pg_database_factory()


@pytest.fixture
def fides_sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite copy of the Fides example database (public schema only)."""
    if not fides_available():
        pytest.skip(FIDES_SKIP_REASON)
    return load_fides_sqlite(tmp_path / "fides.db")


@pytest.fixture
def fides_postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database loaded with the unchanged Fides script."""
    # Check before asking for the server, so a missing script does not cost a server start.
    if not fides_available():
        pytest.skip(FIDES_SKIP_REASON)
    make: MakeDatabase = request.getfixturevalue("pg_database_factory")
    url = make("fides")
    load_fides_postgres(url)
    return url
