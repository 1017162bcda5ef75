"""The large on-prem profile, generated tiny: row counts, indexes, and the pinned subject's
footprint as discovery sees it (and nothing of its look-alikes)."""

import json
from collections import Counter

import pytest
import sqlalchemy as sa

from connectors.sql.connector import SqlConnector
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from sandbox.large import (
    BENCH_FOOTPRINT,
    BENCH_LOOK_ALIKES,
    BENCH_SUBJECT,
    LOOK_ALIKE_EVENTS,
    generate_large_onprem,
)
from sandbox.onprem_schema import metadata
from tests.conftest import ONPREM_MAPPING

CONTACTS, LICENSES, EVENTS = 2_000, 4_000, 50_000


@pytest.fixture(scope="module")
def large_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("large") / "onprem-large.db"
    messages = []
    subject = generate_large_onprem(
        f"sqlite:///{path}",
        contacts=CONTACTS,
        licenses=LICENSES,
        events=EVENTS,
        progress=messages.append,
    )
    assert subject == BENCH_SUBJECT
    # Progress names each bulk table with its row count (before the subject's rows are added).
    assert any(m.startswith(f"usage_events: {EVENTS:,} rows in ") for m in messages)
    engine = sa.create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def scalar(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def column(engine, sql, **params):
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(sql), params).scalars())


def discover(engine, email):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), str(engine.url))
    try:
        records = list(connector.discover(Subject.from_raw([email])))
    finally:
        connector.close()
    return {(r.location, r.native_id["id"]) for r in records}, records


def test_row_counts_follow_the_parameters(large_db):
    counts = {t: scalar(large_db, f"SELECT count(*) FROM {t}") for t in metadata.tables}
    # The bulk rows plus the subject (1 contact, 2 licences, 40 events) and two look-alikes
    # (1 contact, 1 licence, 5 events each).
    assert counts["customers"] == CONTACTS // 5
    assert counts["contacts"] == CONTACTS + 3
    assert counts["licenses"] == LICENSES + 4
    assert counts["usage_events"] == EVENTS + 40 + 10
    assert counts["usage_daily"] == 0
    # One report or invoice for about half the licences, consents for 70 % + 40 % of contacts.
    assert 0.45 * LICENSES < counts["config_reports"] - 4 < 0.55 * LICENSES
    assert 0.45 * LICENSES < counts["invoices"] - 4 < 0.55 * LICENSES
    assert 1.0 * CONTACTS < counts["consents"] - 4 < 1.2 * CONTACTS


def test_data_looks_like_the_real_thing(large_db):
    assert scalar(large_db, "SELECT email FROM contacts WHERE id = 7") == (
        "contact-7@company-7.example"
    )
    phones = column(large_db, "SELECT phone FROM contacts WHERE phone IS NOT NULL")
    assert 0.35 * CONTACTS < len(phones) < 0.45 * CONTACTS
    assert all(p.startswith("+479") and len(p) == 11 for p in phones)
    # A licence's contacts work at the licence's company.
    elsewhere = scalar(
        large_db,
        "SELECT count(*) FROM licenses l JOIN contacts t ON t.id = l.technical_contact_id "
        "JOIN contacts b ON b.id = l.billing_contact_id "
        "WHERE t.customer_id != l.customer_id OR b.customer_id != l.customer_id",
    )
    assert elsewhere == 0
    # Three years of events, about a third older than two years (before 2024-11-01).
    old = scalar(large_db, "SELECT count(*) FROM usage_events WHERE occurred_at < '2024-11-01'")
    assert 0.28 * EVENTS < old < 0.38 * EVENTS
    assert scalar(large_db, "SELECT min(occurred_at) FROM usage_events") >= "2023-11-02"
    assert scalar(large_db, "SELECT max(occurred_at) FROM usage_events") <= "2026-11-01 12:00:00"


def test_same_schema_as_create_all(large_db, tmp_path):
    """Indexes created after the load end up exactly as metadata.create_all makes them."""
    reference = sa.create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    metadata.create_all(reference)
    # sqlite_master, not the inspector: it cannot reflect the lower(email) expression index.
    query = (
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_stat%' ORDER BY type, name"
    )
    try:
        with reference.connect() as conn:
            expected = conn.execute(sa.text(query)).all()
    finally:
        reference.dispose()
    with large_db.connect() as conn:
        assert conn.execute(sa.text(query)).all() == expected
    assert ("index", "ix_contacts_email_lower") in {(t, n) for t, n, _, _ in expected}


def test_deterministic(tmp_path):
    url = f"sqlite:///{tmp_path / 'again.db'}"
    generate_large_onprem(url, contacts=200, licenses=400, events=1_000)
    other = sa.create_engine(url)
    try:
        query = "SELECT group_concat(user_hash || occurred_at, ',') FROM usage_events"
        first = scalar(other, query)
        other.dispose()
        (tmp_path / "again.db").unlink()
        generate_large_onprem(url, contacts=200, licenses=400, events=1_000)
        assert scalar(other, query) == first
    finally:
        other.dispose()


def test_generator_refuses_a_database_with_the_schema(large_db):
    with pytest.raises(ValueError, match="is not empty"):
        generate_large_onprem(str(large_db.url), contacts=10, licenses=10, events=10)


def test_pinned_subject_footprint_exact(large_db):
    found, records = discover(large_db, BENCH_SUBJECT)
    assert Counter(table for table, _ in found) == BENCH_FOOTPRINT
    assert dict(BENCH_FOOTPRINT) == {
        "contacts": 1,
        "customers": 1,
        "licenses": 2,
        "usage_events": 40,
        "config_reports": 2,
        "consents": 2,
        "invoices": 2,
    }
    # The same rows the database holds for the subject, found independently of the connector.
    (contact,) = column(large_db, "SELECT id FROM contacts WHERE email = :e", e=BENCH_SUBJECT)
    customer = scalar(large_db, "SELECT customer_id FROM contacts WHERE id = :c", c=contact)
    lics = column(large_db, "SELECT id FROM licenses WHERE technical_contact_id = :c", c=contact)
    events = column(
        large_db, "SELECT id FROM usage_events WHERE license_id IN (:a, :b)", a=lics[0], b=lics[1]
    )
    expected = {("contacts", contact), ("customers", customer)}
    expected |= {("licenses", i) for i in lics} | {("usage_events", i) for i in events}
    for table in ("config_reports", "consents", "invoices"):
        rows = column(large_db, f"SELECT id FROM {table} WHERE contact_id = :c", c=contact)
        expected |= {(table, i) for i in rows}
    assert found == expected
    # Its second licence is billed to a colleague: shared. The first is its own.
    by_key = {(r.location, r.native_id["id"]): r for r in records}
    assert [by_key[("licenses", i)].shared for i in lics] == [False, True]
    assert by_key[("contacts", contact)].matched == (f"email:{BENCH_SUBJECT}",)


def test_look_alikes_exist_but_are_never_found_for_the_subject(large_db):
    subject_rows, _ = discover(large_db, BENCH_SUBJECT)
    for email in BENCH_LOOK_ALIKES:
        (contact,) = column(large_db, "SELECT id FROM contacts WHERE email = :e", e=email)
        own, _ = discover(large_db, email)
        # Each look-alike has its own contact, licence, 5 events, report, consent, invoice...
        assert Counter(table for table, _ in own) == {
            "contacts": 1,
            "customers": 1,
            "licenses": 1,
            "usage_events": LOOK_ALIKE_EVENTS,
            "config_reports": 1,
            "consents": 1,
            "invoices": 1,
        }
        assert ("contacts", contact) in own
        # ... and shares only the company (customer) with the subject.
        assert own & subject_rows == {r for r in own if r[0] == "customers"}


@pytest.mark.postgres
def test_postgres_gets_the_same_database(pg_database, tmp_path):
    """generate_series on PostgreSQL makes the very rows the recursive CTE makes on SQLite."""
    sizes = {"contacts": 500, "licenses": 1_000, "events": 5_000}  # small: every row compared
    generate_large_onprem(pg_database, **sizes)
    generate_large_onprem(f"sqlite:///{tmp_path / 'same.db'}", **sizes)
    pg = sa.create_engine(pg_database)
    lite = sa.create_engine(f"sqlite:///{tmp_path / 'same.db'}")
    try:
        for table in metadata.sorted_tables:
            query = sa.select(table).order_by(*table.primary_key.columns)
            with pg.connect() as a, lite.connect() as b:
                assert a.execute(query).all() == b.execute(query).all(), table.name
        found, _ = discover(pg, BENCH_SUBJECT)
        assert Counter(table for table, _ in found) == BENCH_FOOTPRINT
        assert found == discover(lite, BENCH_SUBJECT)[0]
        # The serial sequences were moved past the explicit ids: a plain INSERT still works.
        customers = metadata.tables["customers"]
        with pg.begin() as conn:
            new_id = conn.execute(
                customers.insert().values(company="New AS").returning(customers.c.id)
            ).scalar_one()
        assert new_id == 500 // 5 + 1
    finally:
        pg.dispose()
        lite.dispose()


def test_benchmark_reports_the_footprint(large_db, capsys):
    from benchmarks.onprem_access import main

    # No --check here: speed and memory are judged by the benchmark run, never by a test.
    main(["--url", str(large_db.url), "--repeat", "2", "--json"])
    figures = json.loads(capsys.readouterr().out)
    (onprem,) = figures["sources"]
    assert onprem["records_by_table"] == BENCH_FOOTPRINT
    assert onprem["records"] == 50
    assert len(onprem["warm_s"]) == 2
    assert onprem["stable"] is True
    # One statement per table per step of the graph and one for all sharing counts: a fixed
    # number, not per row (22 before lookups were folded, issue 18).
    assert 5 <= onprem["queries"] <= 10
    assert figures["subject"] == "b***@example.com"
    assert set(figures["targets"]) >= {"discovery_s", "peak_rss_mb"}
