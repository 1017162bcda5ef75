"""Shared test set-up: an isolated Prefect home, the database fixtures, the sandbox data."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before anything imports prefect: a private PREFECT_HOME and no telemetry.
_PREFECT_HOME = tempfile.mkdtemp(prefix="dsrflow-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.pop("PREFECT_API_URL", None)
# A command that starts Prefect's local server stops it when it ends: no test leaves one
# running (tests/test_local_server.py sets its own idle times).
os.environ.setdefault("DSRFLOW_PREFECT_SERVER_IDLE_MINUTES", "0")

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from sandbox import onprem_seed  # noqa: E402

pytest_plugins = [
    "tests.support.db_fixtures",
    "tests.support.graph",
    "tests.support.handover",
    "tests.support.jira_site",
    "tests.support.vendor_schemas.plugin",
]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SANDBOX_FIXTURES = FIXTURES / "sandbox"
ONPREM_MAPPING = REPO / "mappings" / "onprem.yaml"


def load_sandbox_fixture(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        onprem_seed.create_schema(engine)
        onprem_seed.load_fixture(engine, SANDBOX_FIXTURES / "onprem.json")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def sandbox_sqlite_url(tmp_path: Path) -> str:
    return load_sandbox_fixture(f"sqlite:///{tmp_path / 'onprem.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sandbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The hand-made sandbox fixture on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return load_sandbox_fixture(f"sqlite:///{tmp_path / 'onprem.db'}")
    return load_sandbox_fixture(request.getfixturevalue("pg_database"))


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the session (it takes ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def masking_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox mappings use hmac_sha256 masking: the preflight of a changing right wants
    its key (the env fallback of ``masking_key``)."""
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "test-key")


@pytest.fixture
def onprem_config(tmp_path: Path, sandbox_sqlite_url: str) -> Path:
    """A config of the hand-made on-prem fixture alone, exports under ``tmp_path/out``."""
    from sandbox.runtime import onprem_source, write_config

    path = tmp_path / "dsrflow.yaml"
    write_config(path, onprem_source(sandbox_sqlite_url), tmp_path / "out")
    return path


# Tests kept on one pytest-xdist worker, one after the other (`make test` runs `pytest -n 2
# --dist loadgroup`): both browser modules write to one screenshot folder, which
# test_browser_ui empties first; test_at_rest and test_stack set up a costly module fixture
# (every request type run; an officer's stack) that two workers would each build again.
_XDIST_GROUPS = {
    "test_browser_ui.py": "browser",
    "test_browser_walkthrough.py": "browser",
    "test_at_rest.py": "at_rest",
    "test_stack.py": "stack",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = _XDIST_GROUPS.get(item.path.name)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
