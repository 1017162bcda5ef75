"""SQL that indexes can serve (issue 18): the statements discovery sends, whether the
database's planner serves them from an index, and `dsr mapping check --db`, which names the
index a lookup lacks.

The Fides example database (tests/support/fides.py) has primary keys only, as Ethyca ships it:
every other lookup of its mapping lacks an index until the check's statements are run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from connectors.sql.connector import SqlConnector
from dsrflow.cli import app
from dsrflow.mapping import load_mapping, parse_mapping
from dsrflow.request import Subject
from tests.conftest import REPO

runner = CliRunner()
ONPREM_MAPPING = REPO / "mappings" / "onprem.yaml"
FIDES_MAPPING = REPO / "tests" / "fixtures" / "fides" / "mapping.yaml"
FIDES_TEXT = FIDES_MAPPING.read_text(encoding="utf-8")
# The same mapping without the declaration: the pre-filter compares lower(email) again.
FIDES_UNDECLARED = FIDES_TEXT.replace(", normalised: true", "")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fides_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"fides_{request.param}_url"))


def statements_of(url: str, mapping: Any, email: str) -> list[tuple[str, Any]]:
    """Every statement (with its parameters) one discovery of ``email`` sends."""
    connector = SqlConnector("db", mapping, url)
    sent: list[tuple[str, Any]] = []
    sa.event.listen(
        connector.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, parameters, *_: sent.append((statement, parameters)),
    )
    try:
        records = list(connector.discover(Subject.from_raw([email])))
    finally:
        connector.close()
    assert records, "the subject must be found for the count to mean anything"
    assert connector.stats.queries == len(sent)
    return sent


def test_sandbox_discovery_sends_one_statement_per_table_and_step(sandbox_url):
    sent = statements_of(sandbox_url, load_mapping(ONPREM_MAPPING), "al@example.com")
    # Before issue 18: 22 (one per identity, per reference and per sharing link).
    # Now: contacts by both identities, then each table once per step, then one for sharing.
    assert len(sent) <= 10
    assert sum("count(*)" in s for s, _ in sent) == 1


def test_identities_of_one_table_share_a_statement(fides_sqlite_url):
    sent = statements_of(
        fides_sqlite_url, parse_mapping(FIDES_TEXT, FIDES_MAPPING), "customer-1-alt@example.com"
    )
    lookups = [s for s, _ in sent if "FROM service_request" in s and "WHERE" in s]
    (statement,) = lookups
    assert "service_request.email IN" in statement
    assert "service_request.alt_email IN" in statement


def index_statements(output: str) -> list[str]:
    """The CREATE INDEX statements the check printed (rich may wrap its lines)."""
    return re.findall(r"CREATE INDEX [^;]+;", " ".join(output.split()))


def check(url: str, mapping: Path) -> Any:
    return runner.invoke(app, ["mapping", "check", "--db", url, str(mapping)])


@pytest.mark.parametrize("declared", [True, False], ids=["normalised", "lower"])
def test_mapping_check_names_the_missing_indexes_and_they_serve(fides_url, tmp_path, declared):
    mapping = tmp_path / "fides.yaml"
    mapping.write_text(FIDES_TEXT if declared else FIDES_UNDECLARED, encoding="utf-8")
    first = check(fides_url, mapping)
    assert first.exit_code == 1, first.output
    statements = index_statements(first.output)
    email_index = (
        "CREATE INDEX ix_customer_email ON customer (email);"
        if declared
        else "CREATE INDEX ix_customer_email_lower ON customer (lower(email));"
    )
    assert email_index in statements
    # Reference columns too: orders are found by customer_id, logins counted by it.
    assert "CREATE INDEX ix_orders_customer_id ON orders (customer_id);" in statements
    # Primary keys serve address by id, and visit by email (its leading column) but not
    # by lower(email).
    assert not [s for s in statements if " ON address " in s]
    visit = [s for s in statements if " ON visit " in s]
    assert visit == (
        [] if declared else ["CREATE INDEX ix_visit_email_lower ON visit (lower(email));"]
    )

    engine = sa.create_engine(fides_url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()
    second = check(fides_url, mapping)
    assert second.exit_code == 0, second.output
    assert "indexed" in second.output
    assert not index_statements(second.output)


def test_mapping_check_refuses_a_false_declaration(fides_sqlite_url):
    engine = sa.create_engine(fides_sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE customer SET email = 'Customer-2@Example.com' WHERE id = 2")
    engine.dispose()
    result = check(fides_sqlite_url, FIDES_MAPPING)
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "tables.customer.identities.0: declared normalised" in output
    # What the check guards against: declared, the plain IN misses the row; undeclared,
    # lower(email) compares it and the row is found.
    assert customers_found(fides_sqlite_url, FIDES_TEXT, "customer-2@example.com") == []
    assert customers_found(fides_sqlite_url, FIDES_UNDECLARED, "customer-2@example.com") == [2]


def customers_found(url: str, mapping_text: str, email: str) -> list[Any]:
    connector = SqlConnector("db", parse_mapping(mapping_text, FIDES_MAPPING), url)
    try:
        records = list(connector.discover(Subject.from_raw([email])))
    finally:
        connector.close()
    return [r.native_id["id"] for r in records if r.location == "customer"]


def test_mapping_check_bad_database_url_is_one_line_and_status_2(tmp_path):
    result = check("nonsense://", FIDES_MAPPING)
    assert result.exit_code == 2
    assert "--db" in result.output


@pytest.mark.postgres
def test_postgres_serves_the_declared_identity_from_a_plain_index(fides_postgres_url):
    """Enough customers that the planner prefers an index where one serves (no settings
    changed): the plain index serves `email IN (...)`, not `lower(email) IN (...)`."""
    engine = sa.create_engine(fides_postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO customer (id, email, name) SELECT n, 'filler-' || n || "
            "'@example.com', 'Filler' FROM generate_series(1000, 30999) AS n"
        )
        conn.exec_driver_sql("CREATE INDEX customer_email_idx ON customer (email)")
        conn.exec_driver_sql("ANALYZE customer")

    def plan(mapping_text: str) -> str:
        sent = statements_of(
            fides_postgres_url, parse_mapping(mapping_text, FIDES_MAPPING), "customer-1@example.com"
        )
        (statement, parameters) = next(
            (s, p) for s, p in sent if "FROM customer" in s and "email" in s.split("WHERE")[1]
        )
        with engine.connect() as conn:
            (explained,) = conn.exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) {statement}", parameters
            ).scalar_one()
        return json.dumps(explained)

    declared = plan(FIDES_TEXT)
    assert '"Index Name": "customer_email_idx"' in declared
    assert "Seq Scan" not in declared
    undeclared = plan(FIDES_UNDECLARED)
    assert "Seq Scan" in undeclared
    assert "customer_email_idx" not in undeclared
    engine.dispose()
