"""An outside schema: the Fides example database, served by writing only a mapping.

Expectations are those of Fides' own integration tests for ``customer-1@example.com``
(tests/ops/integration_tests/test_sql_task.py, test_postgres_privacy_requests.py): its customer
row, addresses 1 and 2, orders aaa/ccc/ddd, payment cards aaa and bbb, the visit, and the
service request whose alt_email is customer-1-alt@example.com; nothing of customer 2 or 3
except rows genuinely shared with them, which must be marked so.
"""

from collections import defaultdict
from pathlib import Path

import pytest

from connectors.sql.connector import SqlConnector
from dsrflow.mapping import load_mapping, parse_mapping
from dsrflow.request import Subject

MAPPING = Path(__file__).parent / "fixtures" / "fides" / "mapping.yaml"


def find(url, email, mapping=None):
    connector = SqlConnector("fides", mapping or load_mapping(MAPPING), url)
    try:
        records = list(connector.discover(Subject.from_raw([email])))
    finally:
        connector.close()
    by_table = defaultdict(dict)
    for record in records:
        key = tuple(record.native_id.values())  # in primary-key order
        by_table[record.location][key[0] if len(key) == 1 else key] = record
    return by_table


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fides_url(request):
    return request.getfixturevalue(f"fides_{request.param}_url")


def test_customer_1_as_fides_expects(fides_url):
    found = find(fides_url, "customer-1@example.com")
    assert sorted(found) == [
        "address",
        "composite_pk_test",
        "customer",
        "login",
        "order_item",
        "orders",
        "payment_card",
        "product",
        "service_request",
        "visit",
    ]
    assert list(found["customer"]) == [1]
    assert found["customer"][1].fields["email"] == "customer-1@example.com"
    assert found["customer"][1].fields["name"] == "John Customer"
    assert sorted(found["address"]) == [1, 2]
    assert found["address"][1].fields["street"] == "Example Street"
    assert found["address"][2].fields["street"] == "Example Lane"
    assert sorted(found["orders"]) == ["ord_aaa-aaa", "ord_ccc-ccc", "ord_ddd-ddd"]
    assert sorted(found["payment_card"]) == ["pay_aaa-aaa", "pay_bbb-bbb"]
    assert sorted(found["login"]) == [1, 2, 3, 4, 5, 6]
    assert sorted(found["order_item"]) == [
        ("ord_aaa-aaa", 1),
        ("ord_ccc-ccc", 1),
        ("ord_ccc-ccc", 2),
        ("ord_ddd-ddd", 1),
    ]
    assert sorted(found["product"]) == [1, 2]
    (visit,) = found["visit"].values()
    assert visit.fields["email"] == "customer-1@example.com"
    assert list(found["service_request"]) == ["ser_aaa-aaa"]
    assert found["service_request"]["ser_aaa-aaa"].fields["alt_email"] == (
        "customer-1-alt@example.com"
    )
    assert list(found["composite_pk_test"]) == [(1, 10)]
    # employee and report hold other people's rows only.
    assert "employee" not in found
    assert "report" not in found


def test_shared_rows_marked_and_nothing_else_of_others(fides_url):
    found = find(fides_url, "customer-1@example.com")
    shared = {
        (t, k): r.shared_with for t, rows in found.items() for k, r in rows.items() if r.shared
    }
    assert shared == {
        # Customer 1's home, also the shipping address of customer 2's order ord_bbb.
        ("address", 1): ("orders.shipping_address_id",),
        # Customer 2's home, the shipping address of customer 1's order ord_aaa.
        ("address", 2): ("customer.address_id",),
        # Customer 2's card, used to pay customer 1's order ord_ddd (and customer 2's ord_bbb).
        ("payment_card", "pay_bbb-bbb"): ("customer.id", "orders.payment_card_id"),
        # Customer 1's service request, handled by employee 1.
        ("service_request", "ser_aaa-aaa"): ("employee.id",),
    }
    for table, rows in found.items():
        for record in rows.values():
            if record.shared:
                continue
            text = repr(record.fields)
            assert "customer-2@" not in text
            assert "jane@" not in text
            assert record.fields.get("customer_id", 1) == 1, (table, record.native_id)


def test_alt_email_identity_finds_the_request(fides_url):
    found = find(fides_url, "customer-1-alt@example.com")
    assert list(found) == ["service_request"]
    record = found["service_request"]["ser_aaa-aaa"]
    assert record.matched == ("email:customer-1-alt@example.com",)


def test_other_schema_on_postgres(fides_postgres_url):
    mapping = parse_mapping(
        MAPPING.read_text().replace("kind: sql", "kind: sql\ndb_schema: backup_schema"), MAPPING
    )
    # backup_schema holds only a subset of the tables: map just those.
    tables = {k: v for k, v in mapping.tables.items() if k in ("customer", "address")}
    mapping = mapping.model_copy(update={"tables": tables})
    found = find(fides_postgres_url, "customer-500@example.com", mapping)
    assert list(found["customer"]) == [1]
    assert found["customer"][1].fields["name"] == "Johanna Customer"
    assert list(found["address"]) == [7]
    assert found["address"][7].fields["city"] == "Test Town"


def test_erasure_keeps_rows_shared_with_other_customers(fides_url):
    import datetime as dt

    import sqlalchemy as sa

    from dsrflow.plan import Action
    from dsrflow.planning import build_erasure_plan

    def table(name):
        engine = sa.create_engine(fides_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).mappings().all()
        engine.dispose()
        return [dict(r) for r in rows]

    names = ("address", "payment_card", "customer", "orders", "service_request")
    before = {name: table(name) for name in names}
    connector = SqlConnector("fides", load_mapping(MAPPING), fides_url)
    subject = Subject.from_raw(["customer-1@example.com"])
    records = list(connector.discover(subject))
    plan = build_erasure_plan(records, {"fides": connector.mapping}, dt.date(2026, 11, 22))
    kept = {a.record_id for a in plan if a.action == Action.KEEP}
    assert kept == {
        "fides:address:id=1",
        "fides:address:id=2",
        "fides:payment_card:id=pay_bbb-bbb",
    }
    # Handled by employee 1 too: only the subject's own identifying columns go.
    (request,) = [a for a in plan if a.location == "service_request"]
    assert (request.action, set(request.fields)) == (Action.REDACT, {"email", "alt_email"})
    erasable = [a for a in plan if a.action in (Action.DELETE, Action.REDACT)]  # as the flows do
    assert connector.erase(erasable, subject).complete
    connector.close()
    after = {name: table(name) for name in before}
    assert after["address"] == before["address"]  # every address survives, shared or not
    assert [c["email"] for c in after["customer"]] == ["customer-2@example.com", "jane@example.com"]
    assert {p["id"] for p in after["payment_card"]} == {"pay_bbb-bbb", "pay_ccc-ccc"}
    assert next(p for p in after["payment_card"] if p["id"] == "pay_bbb-bbb") == next(
        p for p in before["payment_card"] if p["id"] == "pay_bbb-bbb"
    )
    assert {o["id"] for o in after["orders"]} == {"ord_bbb-bbb", "ord_ddd-eee"}
    request_after = next(r for r in after["service_request"] if r["id"] == "ser_aaa-aaa")
    assert (request_after["email"], request_after["alt_email"]) == (None, None)
    assert request_after["employee_id"] == 1
    assert [r for r in after["service_request"] if r["id"] != "ser_aaa-aaa"] == [
        r for r in before["service_request"] if r["id"] != "ser_aaa-aaa"
    ]


def test_discovery_sends_few_statements(fides_url):
    connector = SqlConnector("fides", load_mapping(MAPPING), fides_url)
    try:
        records = list(connector.discover(Subject.from_raw(["customer-1@example.com"])))
    finally:
        connector.close()
    assert len(records) == 23
    # 34 before lookups were folded (issue 18): one per identity, per reference followed and
    # per sharing link. Now each table once per step of the graph, one for every sharing count.
    assert connector.stats.queries <= 16
