"""The SQL connector against hand-written SQL, on a large copy of Fides' example database.

Both find everything of ``customer-4242@example.com`` on the same PostgreSQL database: the
connector through the mapping of Fides' dataset (tests/fixtures/fides/mapping.yaml, the e-mail
columns declared ``normalised``), the hand-written program with one statement per table,
following the same references (``HAND_WRITTEN`` below), over one psycopg connection. After one
warm-up run of each, the runs are interleaved: connector then hand-written, then hand-written
then connector, and so on (A B B A A B ...), so neither side always runs on the other's warm
caches; the figures are the medians, and the statements each side sends are counted. The
hand-written side does not tell shared rows (Art. 15(4)); the connector does.

Build the database (``../shared/peer/fides/large`` beside the repository, about 15 s), then:

    createdb large && psql -d large -v ON_ERROR_STOP=1 -f gen.sql -f indexes.sql
    python -m benchmarks.fides_access --url postgresql+psycopg://USER@HOST/large [--json]

``dsr mapping check --db URL tests/fixtures/fides/mapping.yaml`` names the indexes the
connector's sharing checks want beyond ``indexes.sql`` (the columns that point at an address);
the benchmark measures the database as it is given. ``--json`` prints one line,
``{"name", "figure", "unit", "anchor", "ratio", "target"}`` (connector and hand-written medians
in ms), for ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from connectors.sql.connector import SqlConnector
from dsrflow.identifiers import mask_email
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject

REPO = Path(__file__).resolve().parents[1]
FIDES_MAPPING = REPO / "tests" / "fixtures" / "fides" / "mapping.yaml"
SUBJECT = "customer-4242@example.com"
TARGET_RATIO = 5.0  # connector ÷ hand-written, issue 18

# One statement per table, in the order the references allow; each takes the keys the earlier
# ones found (as the connector does), so the two sides do the same reading.
HAND_WRITTEN: tuple[tuple[str, str, Callable[[dict[str, list[Any]]], dict[str, Any]]], ...] = (
    ("customer", "SELECT * FROM customer WHERE email = %(e)s", lambda f: {}),
    ("employee", "SELECT * FROM employee WHERE email = %(e)s", lambda f: {}),
    ("report", "SELECT * FROM report WHERE email = %(e)s", lambda f: {}),
    ("visit", "SELECT * FROM visit WHERE email = %(e)s", lambda f: {}),
    (
        "service_request",
        "SELECT * FROM service_request WHERE email = %(e)s OR alt_email = %(e)s "
        "OR employee_id = ANY(%(employees)s)",
        lambda f: {"employees": _ids(f, "employee", 0)},
    ),
    (
        "orders",
        "SELECT * FROM orders WHERE customer_id = ANY(%(customers)s)",
        lambda f: {"customers": _ids(f, "customer", 0)},
    ),
    (
        "login",
        "SELECT * FROM login WHERE customer_id = ANY(%(customers)s)",
        lambda f: {"customers": _ids(f, "customer", 0)},
    ),
    (
        "composite_pk_test",
        "SELECT * FROM composite_pk_test WHERE customer_id = ANY(%(customers)s)",
        lambda f: {"customers": _ids(f, "customer", 0)},
    ),
    (
        "payment_card",
        "SELECT * FROM payment_card WHERE customer_id = ANY(%(customers)s) OR id = ANY(%(cards)s)",
        lambda f: {"customers": _ids(f, "customer", 0), "cards": _ids(f, "orders", "card")},
    ),
    (
        "order_item",
        "SELECT * FROM order_item WHERE order_id = ANY(%(orders)s)",
        lambda f: {"orders": _ids(f, "orders", 0)},
    ),
    (
        "product",
        "SELECT * FROM product WHERE id = ANY(%(products)s)",
        lambda f: {"products": _ids(f, "order_item", "product")},
    ),
    (
        "address",
        "SELECT * FROM address WHERE id = ANY(%(addresses)s)",
        lambda f: {"addresses": _ids(f, "*", "address")},
    ),
)


def _ids(found: dict[str, list[Any]], table: str, column: int | str) -> list[Any]:
    """Key or link values of rows found so far (psycopg rows as dicts)."""
    if table == "*":
        links = ("address_id", "shipping_address_id", "billing_address_id")
        return sorted({r[c] for rows in found.values() for r in rows for c in links if r.get(c)})
    rows = found.get(table, [])
    if column == 0:
        return [r.get("id") for r in rows]
    name = {"card": "payment_card_id", "product": "product_id"}[str(column)]
    return sorted({r[name] for r in rows if r[name] is not None})


def hand_written(conn: psycopg.Connection[Any], email: str) -> tuple[Counter[str], int]:
    """The subject's rows by the statements above: rows per table, statements sent."""
    found: dict[str, list[Any]] = {}
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        for table, sql, params in HAND_WRITTEN:
            cur.execute(sql, {"e": email, **params(found)})
            found[table] = cur.fetchall()
    return Counter({t: len(rows) for t, rows in found.items() if rows}), len(HAND_WRITTEN)


def connector_run(connector: SqlConnector, subject: Subject) -> tuple[Counter[str], int]:
    before = connector.stats.queries
    by_table = Counter(record.location for record in connector.discover(subject))
    return by_table, connector.stats.queries - before


def bench(url: str, runs: int, mapping: Path) -> dict[str, Any]:
    """Interleaved runs of both sides; medians in ms, statements and rows per side."""
    subject = Subject.from_raw([SUBJECT])
    connector = SqlConnector("fides", load_mapping(mapping), url, mapping_path=mapping)
    libpq = sa.engine.make_url(url).translate_connect_args(username="user", database="dbname")
    conn = psycopg.connect(**libpq, autocommit=True)
    sides: dict[str, Callable[[], tuple[Counter[str], int]]] = {
        "connector": lambda: connector_run(connector, subject),
        "hand_written": lambda: hand_written(conn, SUBJECT),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    results: dict[str, tuple[Counter[str], int]] = {}
    try:
        for name, side in sides.items():
            results[name] = side()  # warm-up: caches, plans, connections
        for i in range(runs):
            # A B, then B A: neither side always runs first (on warmer caches).
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for name in order:
                started = time.perf_counter()
                outcome = sides[name]()
                times[name].append((time.perf_counter() - started) * 1000)
                if outcome != results[name]:
                    raise RuntimeError(f"{name}: another result than in the warm-up run")
    finally:
        connector.close()
        conn.close()
    return {
        name: {
            "median_ms": statistics.median(times[name]),
            "statements": results[name][1],
            "rows_by_table": dict(sorted(results[name][0].items())),
        }
        for name in sides
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fides_access",
        description="SQL connector vs hand-written SQL on the large Fides database.",
    )
    parser.add_argument("--url", required=True, help="postgresql+psycopg://... of the database")
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each side")
    parser.add_argument("--mapping", type=Path, default=FIDES_MAPPING)
    parser.add_argument("--json", action="store_true", help="print the make-bench JSON line")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    figures = bench(args.url, args.runs, args.mapping)
    ours, anchor = figures["connector"], figures["hand_written"]
    ratio = ours["median_ms"] / anchor["median_ms"]
    if args.json:
        line = {
            "name": "fides_access: SQL connector / hand-written SQL, indexed PostgreSQL",
            "figure": round(ours["median_ms"], 2),
            "unit": "ms",
            "anchor": round(anchor["median_ms"], 2),
            "ratio": round(ratio, 2),
            "target": TARGET_RATIO,
        }
        print(json.dumps(line))
        return
    print(f"subject {mask_email(SUBJECT)}, {args.runs} interleaved runs per side, medians")
    for name, side in figures.items():
        rows = ", ".join(f"{t} {n}" for t, n in side["rows_by_table"].items())
        print(
            f"{name:>12}: {side['median_ms']:8.2f} ms, {side['statements']:3d} statements; {rows}"
        )
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"connector / hand-written = {ratio:.2f}x (target <= {TARGET_RATIO:g}x: {verdict})")


if __name__ == "__main__":
    main()
