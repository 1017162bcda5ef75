"""Seed data for the sandbox's on-prem database: generated with Faker, or loaded from fixtures.

The generated data holds a documented demo subject (``DEMO_SUBJECT``) whose records are spread
over the tables, and look-alike addresses that must never be mistaken for the subject.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sandbox import FixtureError
from sandbox.onprem_schema import LOAD_ORDER, metadata

DEMO_SUBJECT = "kari.nordmann@example.com"
DEMO_PHONE = "+4791234567"
# Stored with other casing: the same address, which discovery must find.
DEMO_SUBJECT_STORED_AS = "Kari.Nordmann@Example.COM"
LOOK_ALIKES = (
    "akari.nordmann@example.com",
    "kari.nordmann@example.com.evil.org",
    "kari.nordmann+support@example.com",
    "kari.nordman@example.com",
)
PRODUCTS = ("Timesheet Pro", "Secure Forms", "Release Radar", "Backlog Insights")
EVENTS = ("page_view", "issue_created", "report_exported", "settings_changed", "login")


def create_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def load_fixture(engine: sa.Engine, path: Path) -> dict[str, int]:
    """Load ``onprem.json`` (``{"table": [{column: value}, ...]}``) into the schema."""
    data = json.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(data) - set(LOAD_ORDER))
    if unknown:
        raise FixtureError(f"{path}: unknown tables {unknown}; known: {LOAD_ORDER}")
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for name in LOAD_ORDER:
            rows = data.get(name, [])
            table = metadata.tables[name]
            if rows:
                conn.execute(table.insert(), [_typed(table, row) for row in rows])
            counts[name] = len(rows)
    return counts


def _typed(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no dates: turn ISO strings into the column's type."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key not in table.c:
            raise FixtureError(f"table {table.name} has no column {key!r}")
        column_type = table.c[key].type
        if isinstance(value, str) and isinstance(column_type, sa.DateTime):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
        elif isinstance(value, str) and isinstance(column_type, sa.Date):
            value = dt.date.fromisoformat(value)
        elif isinstance(value, str | int | float) and isinstance(column_type, sa.Numeric):
            value = Decimal(str(value))
        out[key] = value
    return out


def generate(
    engine: sa.Engine,
    *,
    customers: int = 250,
    seed: int = 2026,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Fill an empty schema with realistic data plus the demo subject and look-alikes."""
    from faker import Faker  # here: a start with kept seeds never imports it

    fake = Faker(["no_NO", "en_GB", "de_DE"])
    Faker.seed(seed)
    rng = random.Random(seed)  # noqa: S311 - reproducible seed data, not secrets
    now = now or dt.datetime(2026, 11, 1, 12, 0)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in LOAD_ORDER}
    ids = {name: 0 for name in LOAD_ORDER}

    def add(table: str, **values: Any) -> int:
        ids[table] += 1
        rows[table].append({"id": ids[table], **values})
        return ids[table]

    def when(days_back_max: int) -> dt.datetime:
        return now - dt.timedelta(days=rng.randint(1, days_back_max), seconds=rng.randint(0, 86399))

    def contact(customer_id: int, email: str, name: str, phone: str | None, role: str) -> int:
        return add(
            "contacts",
            customer_id=customer_id,
            email=email,
            name=name,
            phone=phone,
            role=role,
            created_at=when(1500),
        )

    def license_for(customer_id: int, tech: int, billing: int, events: int) -> int:
        starts = (now - dt.timedelta(days=rng.randint(30, 1400))).date()
        license_id = add(
            "licenses",
            sen=f"SEN-{rng.randint(10_000_000, 99_999_999)}",
            customer_id=customer_id,
            technical_contact_id=tech,
            billing_contact_id=billing,
            product=rng.choice(PRODUCTS),
            tier=rng.choice(["10 users", "50 users", "250 users", "unlimited"]),
            starts_on=starts,
            ends_on=starts + dt.timedelta(days=365),
        )
        for _ in range(events):
            add(
                "usage_events",
                license_id=license_id,
                instance_id=f"inst-{license_id:05d}",
                user_hash=f"{rng.getrandbits(64):016x}",
                event=rng.choice(EVENTS),
                occurred_at=when(1000),
            )
        return license_id

    def paperwork(customer_id: int, contact_id: int, license_id: int) -> None:
        for purpose in ("analytics", "config_collection"):
            if rng.random() < 0.7:
                granted = when(900)
                withdrawn = granted + dt.timedelta(days=200) if rng.random() < 0.2 else None
                add(
                    "consents",
                    contact_id=contact_id,
                    purpose=purpose,
                    scope=rng.choice(["per_case", "general"]),
                    granted_at=granted,
                    withdrawn_at=withdrawn if withdrawn and withdrawn < now else None,
                )
        if rng.random() < 0.3:
            add(
                "config_reports",
                license_id=license_id,
                contact_id=contact_id,
                submitted_at=when(800),
                report=json.dumps({"jira": "9.12.4", "apps": rng.randint(5, 60)}),
            )
        if rng.random() < 0.5:
            add(
                "invoices",
                customer_id=customer_id,
                contact_id=contact_id,
                number=f"INV-{ids['invoices'] + 10001}",
                amount=Decimal(rng.choice(["120.00", "600.00", "2400.00"])),
                currency=rng.choice(["USD", "EUR", "NOK"]),
                issued_on=when(2000).date(),
            )

    for _ in range(customers):
        customer_id = add(
            "customers", company=fake.company(), country=fake.country_code(), created_at=when(2500)
        )
        staff = []
        for _ in range(rng.randint(1, 4)):
            first, last = fake.first_name(), fake.last_name()
            domain = fake.domain_name()
            email = f"{first}.{last}@{domain}".lower().replace(" ", "")
            phone = f"+479{rng.randint(1_000_000, 9_999_999)}" if rng.random() < 0.5 else None
            staff.append(contact(customer_id, email, f"{first} {last}", phone, fake.job()))
        for _ in range(rng.randint(1, 3)):
            tech, billing = rng.choice(staff), rng.choice(staff)
            license_id = license_for(customer_id, tech, billing, rng.randint(10, 60))
            paperwork(customer_id, tech, license_id)

    # The demo subject: technical contact at one company, billing contact at another (stored
    # with other casing), sharing the first company with a colleague.
    acme = add("customers", company="Fjordkraft Analytics AS", country="NO", created_at=when(2000))
    colleague = contact(acme, "ola.hansen@fjordkraft-analytics.no", "Ola Hansen", None, "CTO")
    kari = contact(acme, DEMO_SUBJECT, "Kari Nordmann", DEMO_PHONE, "Jira administrator")
    second = add("customers", company="Nordlys Consulting", country="NO", created_at=when(900))
    kari_billing = contact(second, DEMO_SUBJECT_STORED_AS, "Kari Nordmann", None, "Billing")
    shared_license = license_for(acme, kari, colleague, 12)
    own_license = license_for(second, kari_billing, kari_billing, 8)
    add(
        "consents",
        contact_id=kari,
        purpose="analytics",
        scope="general",
        granted_at=when(700),
        withdrawn_at=None,
    )
    add(
        "consents",
        contact_id=kari,
        purpose="config_collection",
        scope="per_case",
        granted_at=when(400),
        withdrawn_at=None,
    )
    add(
        "config_reports",
        license_id=shared_license,
        contact_id=kari,
        submitted_at=when(300),
        report=json.dumps({"jira": "10.3.1", "apps": 17}),
    )
    add(
        "invoices",
        customer_id=second,
        contact_id=kari_billing,
        number="INV-DEMO-1",
        amount=Decimal("1200.00"),
        currency="NOK",
        issued_on=(now - dt.timedelta(days=400)).date(),
    )
    add(
        "invoices",
        customer_id=second,
        contact_id=kari_billing,
        number="INV-DEMO-2",
        amount=Decimal("1200.00"),
        currency="NOK",
        issued_on=(now - dt.timedelta(days=35)).date(),
    )
    _ = own_license

    # Look-alikes, each with records of their own that must never be found for the subject.
    for email in LOOK_ALIKES:
        other = contact(acme, email, fake.name(), None, "Developer")
        license_id = license_for(acme, other, other, 5)
        paperwork(acme, other, license_id)

    with engine.begin() as conn:
        for name in LOAD_ORDER:
            if rows[name]:
                conn.execute(metadata.tables[name].insert(), rows[name])
    return {name: len(rows[name]) for name in LOAD_ORDER}
