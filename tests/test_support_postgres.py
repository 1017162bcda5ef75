"""The test infrastructure itself: the private PostgreSQL server and the Fides loaders."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.postgres import (
    NOT_FOUND_MESSAGE,
    PostgresNotFoundError,
    PostgresServer,
    find_bin_dir,
)


def query(url, statement):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(statement)).all()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_fresh_database_answers_through_sqlalchemy(pg_database):
    url = sa.engine.make_url(pg_database)
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "127.0.0.1"
    [(version, database, tables)] = query(
        pg_database,
        "SELECT version(), current_database(), "
        "(SELECT count(*) FROM pg_tables WHERE schemaname = 'public')",
    )
    assert version.startswith("PostgreSQL ")
    assert database == url.database
    assert tables == 0


@pytest.mark.postgres
def test_server_listens_on_loopback_only(postgres_server):
    [(addresses, fsync)] = query(
        postgres_server.admin_url,
        "SELECT current_setting('listen_addresses'), current_setting('fsync')",
    )
    assert (addresses, fsync) == ("127.0.0.1", "off")


@pytest.mark.postgres
def test_databases_are_isolated(pg_database_factory):
    first, second = pg_database_factory(), pg_database_factory("other")
    assert first != second
    engine = sa.create_engine(first)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE marker (id int)"))
            conn.execute(sa.text("INSERT INTO marker VALUES (42)"))
    finally:
        engine.dispose()
    assert query(first, "SELECT id FROM marker") == [(42,)]
    assert query(second, "SELECT to_regclass('public.marker')") == [(None,)]


@pytest.mark.postgres
def test_stop_ends_the_server_and_removes_its_files():
    server = PostgresServer()
    server.start()
    process, base = server._process, server.base_dir
    assert process is not None
    assert process.poll() is None
    assert (base / "data" / "PG_VERSION").is_file()
    server.stop()
    assert process.poll() is not None
    assert not base.exists()
    server.stop()  # stopping twice is harmless: the session fixture and atexit may both do it


def test_missing_binaries_say_how_to_get_them(tmp_path):
    with pytest.raises(PostgresNotFoundError) as error:
        find_bin_dir(tmp_path, path=str(tmp_path))
    assert str(error.value) == NOT_FOUND_MESSAGE
    assert "make test" in NOT_FOUND_MESSAGE


def test_newest_installed_version_wins(tmp_path):
    for version in ("9.6", "15", "13"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "initdb").touch(mode=0o755)
    assert find_bin_dir(tmp_path, path="") == tmp_path / "15" / "bin"


# -- the Fides example database -----------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fides_url(request):
    return request.getfixturevalue(f"fides_{request.param}_url")


def test_fides_rows_loaded(fides_url):
    counts = {
        table: query(fides_url, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("customer", "address", "login", "order_item", "product")
    }
    assert counts == {"customer": 3, "address": 4, "login": 8, "order_item": 6, "product": 6}
    assert query(fides_url, "SELECT id, email, name, address_id FROM customer ORDER BY id") == [
        (1, "customer-1@example.com", "John Customer", 1),
        (2, "customer-2@example.com", "Jill Customer", 2),
        (3, "jane@example.com", "Jane Customer", 4),
    ]
    # '123' was given as text for an INT column: both databases store the number.
    assert query(fides_url, "SELECT house, street FROM address WHERE id = 1") == [
        (123, "Example Street")
    ]
    [(card, preferred)] = query(
        fides_url, "SELECT id, preferred FROM payment_card WHERE id = 'pay_aaa-aaa'"
    )
    assert (card, bool(preferred)) == ("pay_aaa-aaa", True)


def test_fides_composite_keys_kept(fides_url):
    inspector_engine = sa.create_engine(fides_url)
    try:
        inspector = sa.inspect(inspector_engine)
        order_item_pk = inspector.get_pk_constraint("order_item")["constrained_columns"]
        visit_pk = inspector.get_pk_constraint("visit")["constrained_columns"]
    finally:
        inspector_engine.dispose()
    assert order_item_pk == ["order_id", "item_no"]
    assert visit_pk == ["email", "last_visit"]
    rows = query(fides_url, "SELECT order_id, item_no FROM order_item ORDER BY order_id, item_no")
    assert rows == [
        ("ord_aaa-aaa", 1),
        ("ord_bbb-bbb", 1),
        ("ord_ccc-ccc", 1),
        ("ord_ccc-ccc", 2),
        ("ord_ddd-ddd", 1),
        ("ord_eee-eee", 3),
    ]


def test_fides_sqlite_is_the_public_schema_only(fides_sqlite_url):
    tables = {
        name
        for (name,) in query(
            fides_sqlite_url, "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert len(tables) == 15
    assert {"order_item", "dynamic_email_address_config", "loyalty"} <= tables
    assert query(fides_sqlite_url, "SELECT price FROM product WHERE id = 5") == [("$50.00",)]


@pytest.mark.postgres
def test_fides_postgres_backup_schema(fides_postgres_url):
    assert query(fides_postgres_url, "SELECT id, email, name FROM backup_schema.customer") == [
        (1, "customer-500@example.com", "Johanna Customer")
    ]
    assert query(fides_postgres_url, "SELECT id, city FROM backup_schema.address") == [
        (7, "Test Town")
    ]


@pytest.mark.postgres
def test_fides_postgres_sequences_restarted(fides_postgres_url):
    engine = sa.create_engine(fides_postgres_url)
    try:
        with engine.begin() as conn:
            new_id = conn.execute(
                sa.text("INSERT INTO customer (email) VALUES ('new@example.com') RETURNING id")
            ).scalar_one()
    finally:
        engine.dispose()
    assert new_id == 10  # ALTER SEQUENCE customer_id_seq RESTART WITH 10 ran


def test_fides_dir_follows_the_environment(tmp_path):
    # FIDES_DIR is computed at import: check it in a fresh interpreter.
    repo = Path(__file__).resolve().parents[1]
    code = "from tests.support.fides import FIDES_DIR, fides_available as a; print(FIDES_DIR, a())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        env={**os.environ, "DSRFLOW_SHARED_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == [str(tmp_path / "peer" / "fides"), "False"]
