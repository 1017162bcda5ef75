"""The on-prem SQL connector on the hand-made sandbox fixture, on SQLite and PostgreSQL."""

from collections import Counter

import pytest
import sqlalchemy as sa

from connectors.base import SourceUnavailable
from connectors.sql.connector import SqlConnector
from dsrflow.mapping import MappingError, load_mapping, parse_mapping
from dsrflow.request import Subject
from tests.conftest import ONPREM_MAPPING


def discover(url, *emails, phones=(), mapping=None):
    connector = SqlConnector("onprem", mapping or load_mapping(ONPREM_MAPPING), url)
    try:
        return list(connector.discover(Subject.from_raw(list(emails), list(phones))))
    finally:
        connector.close()


def ids(records, table):
    return sorted(r.native_id["id"] for r in records if r.location == table)


def test_subject_found_through_references(sandbox_url):
    records = discover(sandbox_url, "al@example.com")
    assert ids(records, "contacts") == [1, 4]  # 4 is stored as AL@Example.COM
    assert ids(records, "licenses") == [1, 2]
    assert ids(records, "usage_events") == [1, 2, 3]
    assert ids(records, "config_reports") == [1]
    assert ids(records, "consents") == [1]
    assert ids(records, "invoices") == [1]
    assert ids(records, "customers") == [1, 2]
    assert Counter(r.location for r in records)["usage_daily"] == 0


def test_provenance_kept(sandbox_url):
    records = {(r.location, r.native_id["id"]): r for r in discover(sandbox_url, "al@example.com")}
    contact = records[("contacts", 4)]
    assert contact.matched == ("email:al@example.com",)
    assert contact.reached_via is None
    assert contact.fields["email"] == "AL@Example.COM"
    assert contact.categories["email"] == "user.contact.email"
    assert contact.timestamps["created_at"] == "2022-06-16T09:10:00Z"
    invoice = records[("invoices", 1)]
    assert invoice.matched == ()
    assert invoice.reached_via == "contacts.id -> invoices.contact_id"
    assert invoice.fields["amount"] == "1200.00"
    assert invoice.timestamps["issued_on"] == "2025-01-05"


def test_shared_rows_marked(sandbox_url):
    records = {(r.location, r.native_id["id"]): r for r in discover(sandbox_url, "al@example.com")}
    # Licence 1's billing contact is the colleague sal@: it also belongs to someone else.
    assert records[("licenses", 1)].shared
    assert records[("licenses", 1)].shared_with == ("contacts.id",)
    assert not records[("licenses", 2)].shared
    # Customer 1 has the colleague and another licence; customer 2 the evil twin.
    assert records[("customers", 1)].shared_with == ("contacts.customer_id", "licenses.customer_id")
    assert records[("customers", 2)].shared_with == ("contacts.customer_id",)
    assert not records[("contacts", 1)].shared
    assert not records[("usage_events", 1)].shared


@pytest.mark.parametrize(
    ("email", "contacts"),
    [
        ("sal@example.com", [2]),
        ("al@example.com.evil.org", [3]),
        ("AL@EXAMPLE.COM", [1, 4]),
        ("o'brien@example.com", [5]),
        ("a+b@example.com", [6]),
        ("a@example.com", [8]),
        ("al@xn--bcher-kva.example", [7]),
        ("al@BÜCHER.example", [7]),
        ("nobody@example.com", []),
        ("a'or'1'='1@example.com", []),
        ("x'--@example.com", []),
        ("%@example.com", []),
        ("_l@example.com", []),
    ],
)
def test_adversarial_addresses_match_exactly(sandbox_url, email, contacts):
    records = discover(sandbox_url, email)
    assert ids(records, "contacts") == contacts
    engine = sa.create_engine(sandbox_url)
    with engine.connect() as conn:  # the table survived whatever the address held
        assert conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar() == 8
    engine.dispose()


def test_phone_identity_matches_whatever_the_spelling(sandbox_url):
    # Stored as "+47 912 34 568" for contact 8; given in national form.
    records = discover(sandbox_url, "nobody@example.com", phones=["912 34 568"])
    assert ids(records, "contacts") == [8]
    assert ids(discover(sandbox_url, "nobody@example.com", phones=["+4791234567"]), "contacts") == [
        1
    ]


def test_two_addresses_of_one_subject_merge_matches(sandbox_url):
    records = discover(sandbox_url, "al@example.com", "a@example.com")
    assert ids(records, "contacts") == [1, 4, 8]
    assert ids(records, "customers") == [1, 2, 3]


def test_queries_are_bounded_and_parameterised(sandbox_url):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    statements = []
    sa.event.listen(
        connector.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append(statement),
    )
    list(connector.discover(Subject.from_raw(["o'brien@example.com"])))
    connector.close()
    assert statements
    assert not any("brien" in s for s in statements)
    assert connector.stats.queries == len(statements)


CYCLE_MAPPING = """
kind: sql
categories:
  user: {purposes: [test], legal_basis: contract, retention: test}
  system: {purposes: [test], legal_basis: contract, retention: test}
tables:
  contacts:
    primary_key: [id]
    identities: [{column: email, kind: email}]
    references:
      - {column: customer_id, target: customers.id, direction: both}
    columns: {email: {category: user.contact.email}}
  customers:
    primary_key: [id]
"""


def test_cycles_reach_a_fixed_point(sandbox_url):
    # Both directions make a cycle contacts -> customers -> contacts: it must terminate,
    # and reach the colleague through the shared company (that is what `both` means).
    mapping = parse_mapping(CYCLE_MAPPING, ONPREM_MAPPING)
    records = discover(sandbox_url, "al@example.com", mapping=mapping)
    assert ids(records, "contacts") == [1, 2, 3, 4]
    assert ids(records, "customers") == [1, 2]


def test_mapping_checked_against_database(sandbox_url):
    broken = CYCLE_MAPPING.replace(
        "{email: {category: user.contact.email}}", "{emial: {category: user.contact.email}}"
    )
    broken = broken.replace(
        "  customers:\n    primary_key: [id]",
        "  customers:\n    primary_key: [id]\n  clients:\n    primary_key: [id]",
    )
    with pytest.raises(MappingError) as caught:
        SqlConnector("onprem", parse_mapping(broken, ONPREM_MAPPING), sandbox_url)
    assert caught.value.problems == [
        "tables.clients: no such table in the database",
        "tables.contacts.columns.emial: no column 'emial' in table contacts",
    ]


def test_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(SourceUnavailable, match="source 'onprem' is unavailable"):
        SqlConnector(
            "onprem", load_mapping(ONPREM_MAPPING), f"sqlite:///{tmp_path}/missing/dir/db.sqlite"
        )
