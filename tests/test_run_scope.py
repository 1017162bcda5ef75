"""A SQL source opened again within one request's run reuses its engine and reflected tables
(connectors/run_scope.py, issue 18), on SQLite and PostgreSQL; outside a run nothing is kept.

Reflections are counted with SQLAlchemy's own ``column_reflect`` event (once per reflected
column), statements with ``before_cursor_execute``; nothing of SQLAlchemy is replaced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from prefect import flow, task

from connectors import run_scope as run_scope_module
from connectors.run_scope import run_scope, scoped
from connectors.sql.connector import SqlConnector
from connectors.sql.mapping import SqlMapping
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from flows.access import access_request
from sandbox.runtime import onprem_source, write_config
from tests.conftest import ONPREM_MAPPING

SUBJECT = "al@example.com"


@pytest.fixture
def reflections() -> Iterator[list[str]]:
    """The tables reflected while the test runs, one entry per reflection of a table."""
    seen: list[str] = []

    def column_reflected(_inspector: Any, table: sa.Table, column: dict[str, Any]) -> None:
        if column["name"] == "id":
            seen.append(table.name)

    sa.event.listen(sa.Table, "column_reflect", column_reflected)
    try:
        yield seen
    finally:
        sa.event.remove(sa.Table, "column_reflect", column_reflected)


def mapping() -> SqlMapping:
    loaded = load_mapping(ONPREM_MAPPING)
    assert isinstance(loaded, SqlMapping)
    return loaded


def contacts_found(connector: SqlConnector) -> list[int]:
    records = connector.discover(Subject.from_raw([SUBJECT], []))
    return sorted(r.native_id["id"] for r in records if r.location == "contacts")


def other_url(url: str) -> str:
    """The same database under another URL (a connection option more)."""
    parsed = sa.make_url(url)
    option = "timeout" if parsed.get_backend_name() == "sqlite" else "connect_timeout"
    return parsed.update_query_dict({option: "7"}).render_as_string(hide_password=False)


def test_within_a_scope_a_second_opening_reflects_nothing_and_sends_nothing(
    sandbox_url, reflections
):
    with run_scope():
        first = SqlConnector("onprem", mapping(), sandbox_url)
        assert contacts_found(first) == [1, 4]
        first.close()
        engine = first.client.pool_engine
        statements: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        second = SqlConnector("onprem", mapping(), sandbox_url)
        assert statements == []  # no reflection, no probe of lower()
        assert second.client.pool_engine is engine
        assert second.tables is first.tables
        assert contacts_found(second) == [1, 4]
        # Each opening counts its own statements on the shared engine.
        assert second.stats.queries == len(statements) > 0
        second.close()
    assert reflections.count("contacts") == 1


def test_outside_a_scope_every_opening_builds_and_disposes_its_own(sandbox_url, reflections):
    first = SqlConnector("onprem", mapping(), sandbox_url)
    first_pool = first.client.pool_engine.pool
    assert contacts_found(first) == [1, 4]
    assert first_pool.checkedin() >= 1
    first.close()
    assert first_pool.checkedin() == 0  # disposed at close, as before
    second = SqlConnector("onprem", mapping(), sandbox_url)
    assert second.client.pool_engine is not first.client.pool_engine
    second.close()
    assert reflections.count("contacts") == 2


def test_another_mapping_or_url_is_opened_anew(sandbox_url, reflections):
    with run_scope():
        first = SqlConnector("onprem", mapping(), sandbox_url)
        described = mapping().model_copy(update={"description": "another description"})
        by_mapping = SqlConnector("onprem", described, sandbox_url)
        by_url = SqlConnector("onprem", mapping(), other_url(sandbox_url))
        engines = {id(c.client.pool_engine) for c in (first, by_mapping, by_url)}
        assert len(engines) == 3
        assert contacts_found(by_url) == [1, 4]
        for connector in (first, by_mapping, by_url):
            connector.close()
    assert reflections.count("contacts") == 3


def test_the_scope_disposes_its_engines_when_it_ends(sandbox_url):
    with run_scope():
        connector = SqlConnector("onprem", mapping(), sandbox_url)
        engine = connector.client.pool_engine
        pool = engine.pool
        assert contacts_found(connector) == [1, 4]
        connector.close()
        assert engine.pool is pool and pool.checkedin() >= 1  # kept for the next opening
    assert pool.checkedin() == 0
    assert engine.pool is not pool  # dispose() replaced it


def test_a_value_kept_too_long_is_built_anew(sandbox_url, reflections, monkeypatch):
    """A run that waited (an approval) sees its source as it is after the wait."""
    monkeypatch.setattr(run_scope_module, "REUSE_SECONDS", 0.0)
    with run_scope():
        first = SqlConnector("onprem", mapping(), sandbox_url)
        second = SqlConnector("onprem", mapping(), sandbox_url)
        assert second.client.pool_engine is not first.client.pool_engine
        assert contacts_found(first) == [1, 4]  # the older one still works until the end
        first.close()
        second.close()
        old_pool = first.client.pool_engine.pool
        assert old_pool.checkedin() >= 1
    assert old_pool.checkedin() == 0
    assert reflections.count("contacts") == 2


def test_a_failed_build_keeps_nothing():
    built: list[int] = []

    def build() -> int:
        built.append(1)
        if len(built) == 1:
            raise ConnectionError("unreachable the first time")
        return len(built)

    with run_scope():
        with pytest.raises(ConnectionError):
            scoped("key", build, lambda _: None)
        assert scoped("key", build, lambda _: None).value == 2
        assert scoped("key", build, lambda _: None).value == 2
    assert len(built) == 2


def test_a_nested_scope_joins_the_outer_one():
    closed: list[str] = []
    with run_scope():
        with run_scope():  # e.g. the flow's own inside the command's
            scoped("key", lambda: "value", closed.append)
        assert closed == []
        assert scoped("key", lambda: "other", closed.append).value == "value"
    assert closed == ["value"]


def test_threads_with_scopes_of_their_own_do_not_share(sandbox_sqlite_url, reflections):
    barrier = threading.Barrier(2)
    engines: dict[int, list[int]] = {}

    def run(n: int) -> None:
        with run_scope():
            opened = [SqlConnector("onprem", mapping(), sandbox_sqlite_url) for _ in range(2)]
            barrier.wait()  # both scopes are open now
            engines[n] = [id(c.client.pool_engine) for c in opened]
            for connector in opened:
                connector.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(engines[1])) == len(set(engines[2])) == 1  # shared within a scope
    assert set(engines[1]).isdisjoint(engines[2])  # not across
    assert reflections.count("contacts") == 2


@task(persist_result=False)
def engine_in_task(url: str) -> int:
    connector = SqlConnector("onprem", mapping(), url)
    try:
        return id(connector.client.pool_engine)
    finally:
        connector.close()


@flow(persist_result=False)
def engines_in_submitted_tasks(url: str) -> list[int]:
    futures = [engine_in_task.submit(url) for _ in range(3)]  # the thread-pool task runner
    return [future.result() for future in futures]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_prefect_task_threads_share_the_scope_of_their_flow(sandbox_sqlite_url, reflections):
    with run_scope():
        inside = engines_in_submitted_tasks(sandbox_sqlite_url)
    assert len(set(inside)) == 1
    assert reflections.count("contacts") == 1
    outside = engines_in_submitted_tasks(sandbox_sqlite_url)
    assert reflections.count("contacts") == 4  # three more: nothing kept without a scope
    assert len(outside) == 3


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_an_access_request_in_a_scope_reflects_its_source_once(
    tmp_path, sandbox_sqlite_url, reflections
):
    """The flow's check of the sources and its discovery each open the source (without a
    scope: two reflections); in one scope only the first opening reflects it."""
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    with run_settings(config, tmp_path / "exports"), run_scope():
        result = access_request(request_id="DSR-2026-1951", subject_emails=[SUBJECT])
    assert result.total_records > 0
    assert reflections.count("contacts") == 1


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_every_flow_run_is_a_scope_of_its_own(tmp_path, sandbox_sqlite_url, reflections):
    """flows/private.py enters the scope around every flow's body: the flow's check and its
    discovery reflect the source once, with no scope around the call."""
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    with run_settings(config, tmp_path / "exports"):
        first = access_request(request_id="DSR-2026-1952", subject_emails=[SUBJECT])
        second = access_request(request_id="DSR-2026-1953", subject_emails=[SUBJECT])
    assert first.total_records == second.total_records > 0
    assert reflections.count("contacts") == 2  # once per run: nothing kept between requests


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_access_command_checks_and_runs_on_one_reflection(
    tmp_path, sandbox_sqlite_url, reflections
):
    """``dsr access`` checks the sources before it opens the request, then runs the flow: one
    scope around both (dsrflow/cli/rights.py)."""
    from typer.testing import CliRunner

    from dsrflow.cli import app

    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(sandbox_sqlite_url), tmp_path / "exports")
    arguments = ["access", "--subject", SUBJECT, "--request-id", "DSR-2026-1954"]
    arguments += ["--out", str(tmp_path / "exports"), "--config", str(config)]
    done = CliRunner().invoke(app, arguments)
    assert done.exit_code == 0, done.output
    assert (tmp_path / "exports" / "DSR-2026-1954" / "export.json").is_file()
    assert reflections.count("contacts") == 1
