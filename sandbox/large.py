"""The "large" profile of the on-prem sandbox database, for the access benchmark.

Millions of rows cannot go through Python objects in reasonable time or memory, so every bulk
table is filled by ``INSERT ... SELECT`` over a number sequence generated inside the database (a
recursive CTE on SQLite, ``generate_series`` on PostgreSQL). "Random" values come from an integer
hash of the row number and the seed, so the same arguments always give the same database, on
either engine.

Shape (defaults): 20,000 customers, 100,000 contacts, 200,000 licences, 10 M usage events over the
last three years, and one config report, consent or invoice for about half the licences or
contacts. On top of that a pinned benchmark subject (``BENCH_SUBJECT``) with a small, exactly known
footprint (``BENCH_FOOTPRINT``, 50 rows), and look-alike addresses with rows of their own that must
never be found for it.

Build one from the shell (the benchmark's README has the figures)::

    python -m sandbox.large --out .sandbox/large-10m.db --events 10000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sandbox.onprem_schema import (
    config_reports,
    consents,
    contacts,
    invoices,
    licenses,
    metadata,
    usage_events,
)

BENCH_SUBJECT = "bench-subject@example.com"
# Must not be found for BENCH_SUBJECT: a longer local part, and the address as a prefix of another.
BENCH_LOOK_ALIKES = ("xbench-subject@example.com", "bench-subject@example.com.evil.org")
# Usage events on the subject's two licences; some are older than two years, as in real data.
BENCH_EVENTS_PER_LICENSE = (24, 16)
# What discovery must return for BENCH_SUBJECT, table by table.
BENCH_FOOTPRINT: dict[str, int] = {
    "contacts": 1,
    "customers": 1,
    "licenses": 2,
    "usage_events": sum(BENCH_EVENTS_PER_LICENSE),
    "config_reports": 2,
    "consents": 2,
    "invoices": 2,
}
LOOK_ALIKE_EVENTS = 5  # per look-alike (each has one licence)

# A fixed "now", so that a seed gives the same rows whatever day the database is built.
DEFAULT_NOW = dt.datetime(2026, 11, 1, 12, 0)
EVENT_SPAN_DAYS = 3 * 365  # usage events cover three years: about a third is past the 2-year limit
CONTACTS_PER_CUSTOMER = 5
MAX_CUSTOMERS = 20_000
EVENT_CHUNK = 1_000_000  # rows per INSERT: bounds one statement's run time, gives progress

PRODUCTS = ("Timesheet Pro", "Secure Forms", "Release Radar", "Backlog Insights")
TIERS = ("10 users", "50 users", "250 users", "unlimited")
SCOPES = ("per_case", "general")
EVENTS = ("page_view", "issue_created", "report_exported", "settings_changed", "login")
# Countries weighted towards Norway; the company suffix at the same index matches the country.
COUNTRIES = ("NO", "NO", "NO", "SE", "DK", "FI", "DE", "GB", "US", "NL")
SUFFIXES = ("AS", "AS", "AS", "AB", "ApS", "Oy", "GmbH", "Ltd", "Inc", "BV")


def _words(text: str, separator: str = " ") -> tuple[str, ...]:
    """A word list written as one string: a screenful of names stays a few lines."""
    return tuple(text.split(separator))


COMPANY_WORDS = _words(
    "Fjord Nordlys Polar Vik Berg Aurora Granitt Havbris Midnatt Skog Elv Tind Kyst Isbre "
    "Lofoten Varde"
)
COMPANY_NOUNS = _words(
    "Analytics Consulting Software Systems Data Labs Solutions Digital Engineering Logistics "
    "Energi Finans"
)
FIRST_NAMES = _words(
    "Kari Ola Ingrid Lars Astrid Erik Sofie Magnus Nora Henrik Emma Jonas Sara Anders Maja "
    "Fredrik Liv Sven Anna Mikkel"
)
LAST_NAMES = _words(
    "Hansen Johansen Olsen Larsen Andersen Pedersen Nilsen Kristiansen Jensen Karlsen Berg "
    "Haugen Hagen Johnsen Lie Dahl Schmidt Smith Virtanen O'Brien"
)
ROLES = _words(
    "Jira administrator|Billing|CTO|Developer|IT manager|Procurement|Project manager", "|"
)

_PRIME = 2_147_483_647  # 2**31 - 1: products of two residues stay below 2**62, no overflow


def generate_large_onprem(
    url: str,
    *,
    contacts: int = 100_000,
    licenses: int = 200_000,
    events: int = 10_000_000,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
    now: dt.datetime = DEFAULT_NOW,
) -> str:
    """Create the on-prem schema in the empty database at ``url`` and fill it; return the
    benchmark subject's e-mail address.

    Customers are ``contacts // 5`` (at most 20,000). Timestamps lie before ``now`` (naive,
    UTC), which is fixed by default so that a seed always gives the same rows.

    Tables are created without their secondary indexes (and, on PostgreSQL, foreign keys),
    loaded, and only then indexed: building an index once over sorted data is several times
    faster than updating it for every row inserted.
    """
    if min(contacts, licenses, events) < 1:
        raise ValueError("contacts, licenses and events must each be at least 1")
    say = progress or (lambda _message: None)
    n_customers = max(1, min(MAX_CUSTOMERS, contacts // CONTACTS_PER_CUSTOMER))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            sql = _Sql(conn.dialect.name, seed, now)
            existing = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
            if existing:
                raise ValueError(
                    f"{engine.url.render_as_string(hide_password=True)} is not empty: it already "
                    f"has the tables {sorted(existing)}"
                )
            sql.tune_for_load(conn)
            started = time.perf_counter()
            for table in metadata.sorted_tables:
                # CREATE TABLE only: primary keys, UNIQUE and CHECK come with it, indexes later.
                # PostgreSQL checks a foreign key per inserted row (half the load time), so
                # there they are added after the load, in one validating pass each.
                conn.execute(
                    sa.schema.CreateTable(
                        table, include_foreign_key_constraints=[] if sql.pg else None
                    )
                )
            conn.commit()

            def load(name: str, statements: Iterator[tuple[str, dict[str, int]]]) -> None:
                t0 = time.perf_counter()
                for statement, params in statements:
                    conn.execute(sa.text(statement), params)
                conn.commit()
                elapsed = time.perf_counter() - t0  # the count below is not part of the load
                count = conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
                say(f"{name}: {count:,} rows in {elapsed:.1f} s")

            load("customers", sql.customers(n_customers))
            load("contacts", sql.contacts(contacts, n_customers))
            load("licenses", sql.licenses(licenses, contacts, n_customers))
            load("usage_events", sql.usage_events(events, licenses, say))
            load("config_reports", sql.config_reports())
            load("consents", sql.consents())
            load("invoices", sql.invoices())

            t0 = time.perf_counter()
            _add_bench_subject(conn, n_customers=n_customers, seed=seed, now=now)
            conn.commit()
            say(f"benchmark subject and look-alikes in {time.perf_counter() - t0:.1f} s")

            for table in metadata.sorted_tables:
                t0 = time.perf_counter()
                for index in sorted(table.indexes, key=lambda i: i.name or ""):
                    index.create(conn)
                conn.commit()
                if table.indexes:
                    say(
                        f"indexes on {table.name}: {len(table.indexes)} in "
                        f"{time.perf_counter() - t0:.1f} s"
                    )
            if sql.pg:
                t0 = time.perf_counter()
                for table in metadata.sorted_tables:
                    for constraint in table.foreign_key_constraints:
                        conn.execute(sa.schema.AddConstraint(constraint))
                conn.commit()
                say(f"foreign keys in {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            sql.finish(conn)
            conn.commit()
            say(f"statistics and sequences in {time.perf_counter() - t0:.1f} s")
            say(f"done in {time.perf_counter() - started:.1f} s")
    finally:
        engine.dispose()
    return BENCH_SUBJECT


class _Sql:
    """The INSERT ... SELECT statements, written once for SQLite and PostgreSQL.

    Only a handful of expressions differ between the two (the number sequence, date arithmetic,
    zero padding, hex); they are methods here, the rest of the SQL is shared.
    """

    def __init__(self, dialect: str, seed: int, now: dt.datetime) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"the large profile supports SQLite and PostgreSQL, not {dialect}")
        self.pg = dialect == "postgresql"
        self.seed = seed
        self.now = now.replace(microsecond=0)
        self.epoch = int(self.now.replace(tzinfo=dt.UTC).timestamp())

    # -- connection -------------------------------------------------------------------------

    def tune_for_load(self, conn: Connection) -> None:
        """Trade durability for speed, for this loading connection only.

        Nothing else uses the database while it is built, and a crash means building it again,
        so SQLite keeps no rollback journal and does not fsync; PostgreSQL does not wait for the
        WAL flush on commit.
        """
        if self.pg:
            conn.exec_driver_sql("SET synchronous_commit TO off")
            conn.exec_driver_sql("SET maintenance_work_mem TO '256MB'")  # faster index builds
        else:
            conn.exec_driver_sql("PRAGMA journal_mode=OFF")
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            # Helper threads for the sorts of CREATE INDEX. The page cache stays at its default:
            # a bigger one made building the 10 M-row indexes twice as slow (measured).
            conn.exec_driver_sql(f"PRAGMA threads={min(4, os.cpu_count() or 1)}")
        conn.commit()

    def finish(self, conn: Connection) -> None:
        """Planner statistics, and (PostgreSQL) serial sequences past the explicit ids.

        Explicit ids do not advance a serial column's sequence; without ``setval`` the next
        ordinary INSERT would collide with row 1.
        """
        if self.pg:
            for table in metadata.sorted_tables:
                if "id" in table.c and table.c.id.autoincrement in (True, "auto"):
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                        )
                    )
            conn.exec_driver_sql("ANALYZE")
        else:
            # A sampled ANALYZE (as PRAGMA optimize runs it): seconds, not a minute, on 10 M rows.
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")

    # -- expressions ------------------------------------------------------------------------

    def mix(self, expr: str, salt: int) -> str:
        """A deterministic pseudo-random integer in [0, 2**31 - 1) from ``expr`` and the seed.

        The product of two linear residues modulo a prime: cheap in SQL, no visible pattern in
        small moduli, and no bigint overflow on either engine.
        """
        # PostgreSQL: integer columns are 4 bytes, and id * 69621 would overflow them.
        x = f"CAST({expr} AS BIGINT)" if self.pg else f"({expr})"
        a = (self.seed * 1_000_003 + salt * 7_919 + 1) % _PRIME
        b = (self.seed * 999_983 + salt * 104_729 + 3) % _PRIME
        return f"(((({x} * 48271 + {a}) % {_PRIME}) * (({x} * 69621 + {b}) % {_PRIME})) % {_PRIME})"

    def seq(self) -> str:
        """A CTE ``seq(n)`` of the integers :lo..:hi, made inside the database."""
        if self.pg:
            # BIGINT: n * 69621 would overflow PostgreSQL's 4-byte integer.
            return (
                "WITH seq(n) AS (SELECT generate_series(CAST(:lo AS BIGINT), CAST(:hi AS BIGINT)))"
            )
        return "WITH RECURSIVE seq(n) AS (SELECT :lo UNION ALL SELECT n + 1 FROM seq WHERE n < :hi)"

    def timestamp_back(self, seconds: str) -> str:
        """``now`` minus ``seconds``, stored as SQLAlchemy stores a DateTime on each engine."""
        if self.pg:
            return f"(TIMESTAMP '{self.now:%Y-%m-%d %H:%M:%S}' - ({seconds}) * INTERVAL '1 second')"
        # SQLAlchemy writes SQLite DATETIMEs as 'YYYY-MM-DD HH:MM:SS.ffffff': keep that format so
        # text comparisons with values it writes stay correct.
        return f"(datetime({self.epoch} - ({seconds}), 'unixepoch') || '.000000')"

    def date_back(self, days: str) -> str:
        if self.pg:
            return f"(DATE '{self.now:%Y-%m-%d}' - CAST({days} AS INTEGER))"
        return f"date({self.epoch} - ({days}) * 86400, 'unixepoch')"

    def padded(self, expr: str, width: int) -> str:
        if self.pg:
            return f"lpad(CAST({expr} AS TEXT), {width}, '0')"
        return f"printf('%0{width}d', {expr})"

    def hex8(self, expr: str) -> str:
        if self.pg:
            return f"lpad(to_hex({expr}), 8, '0')"
        return f"printf('%08x', {expr})"

    @staticmethod
    def text(expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    @staticmethod
    def pick(expr: str, choices: Sequence[str | int | float]) -> str:
        """One of ``choices``, by ``expr`` modulo their number."""
        whens = " ".join(f"WHEN {i} THEN {_literal(c)}" for i, c in enumerate(choices))
        return f"CASE ({expr}) % {len(choices)} {whens} END"

    # -- tables -----------------------------------------------------------------------------

    def customers(self, count: int) -> Iterator[tuple[str, dict[str, int]]]:
        country_of = self.mix("n", 1)  # same hash for country and suffix: "AS" goes with "NO"
        company = (
            f"{self.pick(self.mix('n', 2), COMPANY_WORDS)} || ' ' || "
            f"{self.pick(self.mix('n', 3), COMPANY_NOUNS)} || ' ' || "
            f"{self.pick(country_of, SUFFIXES)}"
        )
        created = self.timestamp_back(f"86400 * 400 + {self.mix('n', 4)} % (86400 * 2500)")
        yield (
            f"{self.seq()} INSERT INTO customers (id, company, country, created_at) "
            f"SELECT n, {company}, {self.pick(country_of, COUNTRIES)}, {created} FROM seq",
            {"lo": 1, "hi": count},
        )

    def contacts(self, count: int, n_customers: int) -> Iterator[tuple[str, dict[str, int]]]:
        # Contact n works at customer ((n - 1) % customers) + 1: about five per company, and the
        # colleagues of contact n are easy to compute (see licenses()).
        customer = f"((n - 1) % {n_customers} + 1)"
        # 3 % stored with capitals: discovery must still find them (lower(email)).
        email = (
            f"CASE WHEN {self.mix('n', 10)} % 100 < 3 "
            f"THEN 'Contact-' || {self.text('n')} || '@Company-' || {self.text(customer)} "
            f"ELSE 'contact-' || {self.text('n')} || '@company-' || {self.text(customer)} "
            "END || '.example'"
        )
        name = (
            f"{self.pick(self.mix('n', 11), FIRST_NAMES)} || ' ' || "
            f"{self.pick(self.mix('n', 12), LAST_NAMES)}"
        )
        # 40 % have a Norwegian mobile number (9xxxxxxx) in E.164. 90000000-90999999 is never
        # generated: the benchmark subject's number lives there.
        number = f"91000000 + {self.mix('n', 14)} % 8999999"
        phone = f"CASE WHEN {self.mix('n', 13)} % 10 < 4 THEN '+47' || {self.text(number)} END"
        created = self.timestamp_back(f"86400 + {self.mix('n', 15)} % (86400 * 1500)")
        yield (
            f"{self.seq()} INSERT INTO contacts (id, customer_id, email, name, phone, role, "
            f"created_at) SELECT n, {customer}, {email}, {name}, {phone}, "
            f"{self.pick(self.mix('n', 16), ROLES)}, {created} FROM seq",
            {"lo": 1, "hi": count},
        )

    def licenses(
        self, count: int, n_contacts: int, n_customers: int
    ) -> Iterator[tuple[str, dict[str, int]]]:
        # The technical contact is any contact; the licence belongs to that contact's company and
        # 30 % are billed to a colleague at the same company (contacts k, k + customers, ...).
        tech = f"({self.mix('n', 20)} % {n_contacts} + 1)"
        company = f"((t.tech - 1) % {n_customers} + 1)"
        colleagues = f"(({n_contacts} - {company}) / {n_customers} + 1)"
        billing = (
            f"CASE WHEN {self.mix('t.n', 21)} % 10 < 7 THEN t.tech "
            f"ELSE {company} + {n_customers} * ({self.mix('t.n', 22)} % {colleagues}) END"
        )
        # A bijection of n (7919 is prime to 9e7), so serial entitlement numbers are unique.
        sen = f"'SEN-' || {self.text('10000000 + (t.n * 7919) % 90000000')}"
        starts_back = f"(30 + {self.mix('t.n', 23)} % 1370)"
        yield (
            f"{self.seq()} INSERT INTO licenses (id, sen, customer_id, technical_contact_id, "
            "billing_contact_id, product, tier, starts_on, ends_on) "
            f"SELECT t.n, {sen}, {company}, t.tech, {billing}, "
            f"{self.pick(self.mix('t.n', 24), PRODUCTS)}, {self.pick(self.mix('t.n', 25), TIERS)}, "
            f"{self.date_back(starts_back)}, {self.date_back(f'{starts_back} - 365')} "
            f"FROM (SELECT n, {tech} AS tech FROM seq) AS t",
            {"lo": 1, "hi": count},
        )

    def usage_events(
        self, count: int, n_licenses: int, say: Callable[[str], None]
    ) -> Iterator[tuple[str, dict[str, int]]]:
        # Each licence has up to 8 users; a user's hash is stable across its events, as a real
        # pseudonymous user id is.
        user = f"(e.lic * 8 + {self.mix('e.n', 31)} % 8)"
        user_hash = f"{self.hex8(self.mix(user, 32))} || {self.hex8(self.mix(user, 33))}"
        occurred = self.timestamp_back(f"{self.mix('e.n', 34)} % (86400 * {EVENT_SPAN_DAYS})")
        statement = (
            f"{self.seq()} INSERT INTO usage_events (id, license_id, instance_id, user_hash, "
            f"event, occurred_at) SELECT e.n, e.lic, 'inst-' || {self.padded('e.lic', 6)}, "
            f"{user_hash}, {self.pick(self.mix('e.n', 35), EVENTS)}, {occurred} "
            f"FROM (SELECT n, {self.mix('n', 30)} % {n_licenses} + 1 AS lic FROM seq) AS e"
        )
        for lo in range(1, count + 1, EVENT_CHUNK):
            hi = min(count, lo + EVENT_CHUNK - 1)
            yield statement, {"lo": lo, "hi": hi}
            if count > EVENT_CHUNK:
                say(f"usage_events: {hi:,} / {count:,}")

    # The tables below hang off rows that already exist, so they select from those tables rather
    # than from a sequence; ids come from the primary key's default, in ORDER BY order.

    def config_reports(self) -> Iterator[tuple[str, dict[str, int]]]:
        # Half the licences: one report, sent by the licence's technical contact.
        report = (
            '\'{"jira": "9.\' || '
            + self.text(f"{self.mix('id', 41)} % 17")
            + " || '.' || "
            + self.text(f"{self.mix('id', 42)} % 5")
            + ' || \'", "apps": \' || '
            + self.text(f"5 + {self.mix('id', 43)} % 56")
            + " || '}'"
        )
        submitted = self.timestamp_back(f"86400 + {self.mix('id', 44)} % (86400 * 800)")
        yield (
            "INSERT INTO config_reports (license_id, contact_id, submitted_at, report) "
            f"SELECT id, technical_contact_id, {submitted}, {report} FROM licenses "
            f"WHERE {self.mix('id', 40)} % 2 = 0 ORDER BY id",
            {},
        )

    def consents(self) -> Iterator[tuple[str, dict[str, int]]]:
        # 70 % of contacts consented to analytics, 40 % to config collection; a fifth of the
        # consents were withdrawn 200 days after they were given.
        for salt, purpose, share in ((50, "analytics", 7), (55, "config_collection", 4)):
            back = f"(86400 * 200 + {self.mix('id', salt + 1)} % (86400 * 700))"
            withdrawn = (
                f"CASE WHEN {self.mix('id', salt + 2)} % 5 = 0 "
                f"THEN {self.timestamp_back(f'{back} - 86400 * 200')} END"
            )
            yield (
                "INSERT INTO consents (contact_id, purpose, scope, granted_at, withdrawn_at) "
                f"SELECT id, '{purpose}', {self.pick(self.mix('id', salt + 3), SCOPES)}, "
                f"{self.timestamp_back(back)}, {withdrawn} FROM contacts "
                f"WHERE {self.mix('id', salt)} % 10 < {share} ORDER BY id",
                {},
            )

    def invoices(self) -> Iterator[tuple[str, dict[str, int]]]:
        # The other half of the licences: one invoice to the billing contact, issued on the
        # licence's start date (up to four years back: all still under the bookkeeping hold).
        yield (
            "INSERT INTO invoices (customer_id, contact_id, number, amount, currency, issued_on) "
            f"SELECT customer_id, billing_contact_id, 'INV-' || {self.padded('id', 7)}, "
            f"{self.pick(self.mix('id', 61), (120.00, 600.00, 2400.00, 9800.00))}, "
            f"{self.pick(self.mix('id', 62), ('USD', 'EUR', 'NOK'))}, starts_on FROM licenses "
            f"WHERE {self.mix('id', 60)} % 2 = 1 ORDER BY id",
            {},
        )


def _literal(value: str | int | float) -> str:
    """An SQL literal for one of this module's own constants (never for outside input)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _add_bench_subject(conn: Connection, *, n_customers: int, seed: int, now: dt.datetime) -> None:
    """The benchmark subject and its look-alikes, with explicit ids after the bulk rows.

    They work at an ordinary customer (so its record is shared with colleagues, as in real
    data) but no bulk row points at them: their ids are above every id the bulk statements use.
    """

    def next_id(table: sa.Table) -> int:
        last = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))
        return int(last.scalar_one()) + 1

    customer_id = 1 + (7_919 * seed) % n_customers
    # Contact k is the first contact of customer k (see contacts()); it exists, as there are
    # never more customers than contacts.
    colleague_id = customer_id
    ids = {
        t.name: next_id(t)
        for t in (contacts, licenses, usage_events, config_reports, consents, invoices)
    }

    def take(table: str) -> int:
        ids[table] += 1
        return ids[table] - 1

    def when(days: float) -> dt.datetime:
        return now - dt.timedelta(days=days)

    people = [
        (BENCH_SUBJECT, "Benedikte Subjektsen", "+4790000042", BENCH_EVENTS_PER_LICENSE),
        (BENCH_LOOK_ALIKES[0], "Xavier Bench", None, (LOOK_ALIKE_EVENTS,)),
        (BENCH_LOOK_ALIKES[1], "Eve Lookalike", "+4790000043", (LOOK_ALIKE_EVENTS,)),
    ]
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ids}
    for number, (email, name, phone, events_per_license) in enumerate(people, start=1):
        contact_id = take("contacts")
        rows["contacts"].append(
            {
                "id": contact_id,
                "customer_id": customer_id,
                "email": email,
                "name": name,
                "phone": phone,
                "role": "Jira administrator",
                "created_at": when(900 + number),
            }
        )
        for i, n_events in enumerate(events_per_license):
            license_id = take("licenses")
            starts = (now - dt.timedelta(days=500 + 200 * i)).date()
            rows["licenses"].append(
                {
                    "id": license_id,
                    "sen": f"SEN-BENCH-{number}{i}",
                    "customer_id": customer_id,
                    "technical_contact_id": contact_id,
                    # The subject's second licence is billed to a colleague: a shared row.
                    "billing_contact_id": colleague_id if i == 1 else contact_id,
                    "product": PRODUCTS[i],
                    "tier": TIERS[i],
                    "starts_on": starts,
                    "ends_on": starts + dt.timedelta(days=365),
                }
            )
            for j in range(n_events):
                rows["usage_events"].append(
                    {
                        "id": take("usage_events"),
                        "license_id": license_id,
                        "instance_id": f"inst-bench-{number}{i}",
                        "user_hash": f"{number:08x}{j:08x}",
                        "event": EVENTS[j % len(EVENTS)],
                        # Every 45 days back from 3 days ago: the oldest are past the 2-year limit.
                        "occurred_at": when(3 + 45 * j),
                    }
                )
        first_license = ids["licenses"] - len(events_per_license)
        reports = 2 if email == BENCH_SUBJECT else 1
        for i in range(reports):
            rows["config_reports"].append(
                {
                    "id": take("config_reports"),
                    "license_id": first_license,
                    "contact_id": contact_id,
                    "submitted_at": when(30 + 300 * i),
                    "report": f'{{"jira": "10.3.{i}", "apps": {17 + i}}}',
                }
            )
        purposes = ("analytics", "config_collection") if reports == 2 else ("analytics",)
        for i, purpose in enumerate(purposes):
            rows["consents"].append(
                {
                    "id": take("consents"),
                    "contact_id": contact_id,
                    "purpose": purpose,
                    "scope": ("general", "per_case")[i],
                    "granted_at": when(700 - 300 * i),
                    "withdrawn_at": None,
                }
            )
        for i in range(reports):
            rows["invoices"].append(
                {
                    "id": take("invoices"),
                    "customer_id": customer_id,
                    "contact_id": contact_id,
                    "number": f"INV-BENCH-{number}{i}",
                    "amount": Decimal("1200.00"),
                    "currency": "NOK",
                    "issued_on": (now - dt.timedelta(days=400 - 365 * i)).date(),
                }
            )
    for table in (contacts, licenses, usage_events, config_reports, consents, invoices):
        conn.execute(table.insert(), rows[table.name])


def _file_size(url: str) -> str:
    database = sa.engine.make_url(url).database
    if sa.engine.make_url(url).get_backend_name() != "sqlite" or not database:
        return ""
    return f", {Path(database).stat().st_size / 2**20:,.0f} MiB"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.large",
        description="Build the large on-prem sandbox database for the access benchmark.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="SQLite file to create (must not exist)")
    target.add_argument("--url", help="database URL of an empty database, e.g. PostgreSQL")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--licenses", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.out is not None:
        if args.out.exists():
            parser.error(f"{args.out} exists; remove it first (the database must be empty)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{args.out}"
    else:
        url = args.url
    started = time.perf_counter()
    subject = generate_large_onprem(
        url,
        contacts=args.contacts,
        licenses=args.licenses,
        events=args.events,
        seed=args.seed,
        progress=lambda message: print(message, flush=True),
    )
    print(
        f"built in {time.perf_counter() - started:.1f} s{_file_size(url)}; "
        f"benchmark subject: {subject}"
    )


if __name__ == "__main__":
    main()
