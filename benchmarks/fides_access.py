"""The SQL connector against hand-written SQL, on a large copy of Fides' example database.

Both find everything of ``customer-4242@example.com`` on the same PostgreSQL database: the
connector through the mapping of Fides' dataset (tests/fixtures/fides/mapping.yaml, the e-mail
columns declared ``normalised``), the hand-written program with one statement per table,
following the same references (``HAND_WRITTEN`` below), over one psycopg connection. After one
warm-up run of each, the runs are interleaved: connector then hand-written, then hand-written
then connector, and so on (A B B A A B ...), so neither side always runs on the other's warm
caches; the figures are the medians, and the statements each side sends are counted. The
hand-written side does not tell shared rows (Art. 15(4)); the connector does.

Without ``--url`` the benchmark builds its own database (as ``make bench`` runs it): a
throwaway PostgreSQL server (tests/support/postgres.py), ``gen.sql`` and ``indexes.sql`` of
``peer/fides/large`` in the shared folder (``$DSRFLOW_SHARED_DIR``, by default ``../shared``
beside the repository) loaded by that server's ``psql``, then the indexes
``dsr mapping check --db`` names for the mapping (dsrflow/index_check.py; the columns that
point at an address), each printed; the server and its files go at the end. Building takes
about 15 s on an idle machine. With ``--url`` it measures the database as it is given:

    createdb large && psql -d large -v ON_ERROR_STOP=1 -f gen.sql -f indexes.sql
    python -m benchmarks.fides_access --url postgresql+psycopg://USER@HOST/large [--json]

Then, on the same database, dsrflow's whole access flow (flows/access.py in this process, a
config with this database as its only source, a Prefect server of the benchmark's own) against
Fides 2.86's own access request (benchmarks/fides_app.py: Fides in its own venv, as its
integration tests run it), one warm-up each, then ``--flow-runs`` interleaved runs, medians;
both must find the same rows per table. Without Fides' venv the flow is measured alone and the
figure says why.

``--json`` prints the figures for ``make bench`` as a JSON list of
``{"name", "figure", "unit", "anchor", "ratio", "target"}``: the connector's median against the
hand-written one (ms), the statements each side sends, the whole flow against Fides (ms, target
<= 0.25) and whether both found the same rows.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from benchmarks import fides_app
from benchmarks.fides_app import FidesApp
from benchmarks.figures import figure
from connectors.sql.connector import SqlConnector
from connectors.sql.mapping import SqlMapping
from dsrflow.identifiers import mask_email
from dsrflow.index_check import check_indexes
from dsrflow.local_prefect import private_home
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject

REPO = Path(__file__).resolve().parents[1]
FIDES_MAPPING = REPO / "tests" / "fixtures" / "fides" / "mapping.yaml"
SUBJECT = "customer-4242@example.com"
FIDES_DATASET_NAME = "postgres_example_test_dataset.yml"
TARGET_RATIO = 5.0  # connector ÷ hand-written, issue 18
TARGET_FLOW_RATIO = 0.25  # whole access flow ÷ Fides' access request, issue 18
DATABASE = "fides_large"

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


Side = Callable[[], tuple[Counter[str], int]]


def interleaved(
    sides: dict[str, Side], runs: int, own_ms: dict[str, Callable[[], float]] | None = None
) -> tuple[dict[str, list[float]], dict[str, tuple[Counter[str], int]]]:
    """One warm-up run of each side, then ``runs`` interleaved timed runs (A B, then B A, ...);
    the times (ms) and each side's warm-up outcome, which every later run must repeat.
    ``own_ms``: sides that time themselves (a child process: its own clock, not the pipe's)."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    results: dict[str, tuple[Counter[str], int]] = {}
    for name, side in sides.items():
        results[name] = side()  # warm-up: caches, plans, connections
    for i in range(runs):
        # A B, then B A: neither side always runs first (on warmer caches).
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            started = time.perf_counter()
            outcome = sides[name]()
            wall = (time.perf_counter() - started) * 1000
            times[name].append(own_ms[name]() if own_ms and name in own_ms else wall)
            if outcome != results[name]:
                raise RuntimeError(f"{name}: another result than in the warm-up run")
    return times, results


def summary(
    times: dict[str, list[float]], results: dict[str, tuple[Counter[str], int]]
) -> dict[str, Any]:
    return {
        name: {
            "median_ms": statistics.median(times[name]),
            "statements": results[name][1],
            "rows_by_table": dict(sorted(results[name][0].items())),
        }
        for name in times
    }


def bench(url: str, runs: int, mapping: Path) -> dict[str, Any]:
    """Interleaved runs of both sides; medians in ms, statements and rows per side."""
    subject = Subject.from_raw([SUBJECT])
    connector = SqlConnector("fides", load_mapping(mapping), url, mapping_path=mapping)
    libpq = sa.engine.make_url(url).translate_connect_args(username="user", database="dbname")
    conn = psycopg.connect(**libpq, autocommit=True)
    sides: dict[str, Side] = {
        "connector": lambda: connector_run(connector, subject),
        "hand_written": lambda: hand_written(conn, SUBJECT),
    }
    try:
        return summary(*interleaved(sides, runs))
    finally:
        connector.close()
        conn.close()


class FlowSide:
    """dsrflow's whole access flow in this process (flows/access.py: ledger, discovery, merge,
    export, Prefect's flow and task runs), one request per call; it times only the flow call,
    and reads the rows per table off the export it wrote, then removes that export."""

    def __init__(self, config: Path, out: Path) -> None:
        self.config, self.out = config, out
        self.number = 9000
        self.last_ms = 0.0

    def __call__(self) -> tuple[Counter[str], int]:
        from dsrflow.run_settings import run_settings
        from flows.access import access_request

        self.number += 1
        request_id = f"DSR-2026-{self.number}"
        with run_settings(self.config, self.out):
            # As ``dsr access`` runs its flow (dsrflow/cli/collector.py): what exists before
            # the request is not traversed by the collector again.
            gc.freeze()
            started = time.perf_counter()
            result = access_request(request_id=request_id, subject_emails=[SUBJECT])
            self.last_ms = (time.perf_counter() - started) * 1000
        export = self.out / request_id
        document = json.loads((export / "export.json").read_text(encoding="utf-8"))
        shutil.rmtree(export)
        rows = Counter(str(record["location"]) for record in document["whole_records"])
        return rows, result.total_records


class FidesSide:
    """Fides' own access request (benchmarks/fides_app.py), timed in its process."""

    def __init__(self, app: FidesApp) -> None:
        self.app = app
        self.last_ms = 0.0

    def __call__(self) -> tuple[Counter[str], int]:
        self.last_ms, rows = self.app.run()
        return Counter(rows), sum(rows.values())


def flow_bench(
    url: str, runs: int, mapping: Path, log: Callable[[str], None]
) -> tuple[dict[str, Any], str | None]:
    """dsrflow's whole access flow (an on-prem-only config on ``url``) and, where its venv is
    there, Fides' access request on the same database, interleaved; the summary, and why Fides
    was not measured (None: it was)."""
    folder = Path(tempfile.mkdtemp(prefix="dsrflow-fides-flow-"))
    try:
        from sandbox.runtime import write_config

        config = folder / "dsrflow.yaml"
        source = {"kind": "sql", "url": url, "mapping": str(mapping.resolve())}
        write_config(config, {"fides": source}, folder / "exports")
        # One Prefect home for the benchmark, its server stopped at the end (as access_large).
        os.environ["DSRFLOW_PREFECT_SERVER_IDLE_MINUTES"] = "0"
        private_home(folder)  # before Prefect is imported
        from dsrflow.local_prefect import prefect_server
        from flows.private import scrub_run_logs

        scrub_run_logs()  # as the command line does: no log line names the subject
        flow = FlowSide(config, folder / "exports")
        sides: dict[str, Side] = {"flow": flow}
        own_ms: dict[str, Callable[[], float]] = {"flow": lambda: flow.last_ms}
        with prefect_server(log), ExitStack() as stack:
            if (reason := fides_app.unavailable_reason()) is None:
                log(f"starting Fides {fides_app.FIDES_VERSION} (its venv, Redis, its database) ...")
                dataset = large_dir().parent / FIDES_DATASET_NAME
                app = stack.enter_context(FidesApp(url, dataset, SUBJECT))
                fides = FidesSide(app)
                sides["fides"] = fides
                own_ms["fides"] = lambda: fides.last_ms
            else:
                log(f"Fides not measured: {reason}")
            return summary(*interleaved(sides, runs, own_ms)), reason
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def large_dir() -> Path:
    """``peer/fides/large`` of the shared folder (as tests/support/fides.py finds it)."""
    shared = os.environ.get("DSRFLOW_SHARED_DIR")
    return (Path(shared) if shared else REPO.parent / "shared") / "peer" / "fides" / "large"


@contextmanager
def built_database(mapping_path: Path, log: Callable[[str], None]) -> Iterator[tuple[str, int]]:
    """A throwaway PostgreSQL server holding the large Fides database with ``indexes.sql`` and
    the indexes ``dsr mapping check --db`` names for ``mapping_path``; yields its URL and how
    many indexes were added."""
    folder = large_dir()
    scripts = [folder / "gen.sql", folder / "indexes.sql"]
    if missing := [s.name for s in scripts if not s.is_file()]:
        raise SystemExit(
            f"fides_access: no {' or '.join(missing)} in {folder}: set DSRFLOW_SHARED_DIR to the "
            "folder holding peer/fides/large (default: ../shared beside the repository)"
        )
    # Test support, imported only here: with --url the benchmark needs no PostgreSQL binaries.
    from tests.support.postgres import HOST, SUPERUSER, PostgresServer, find_bin_dir

    with PostgresServer() as server:
        url = server.create_database(DATABASE)
        log(f"loading {', '.join(s.name for s in scripts)} from {folder} ...")
        started = time.perf_counter()
        # psql, not psycopg: the scripts hold psql commands (\timing); ON_ERROR_STOP makes a
        # failing statement fail the load instead of leaving a partial database.
        command = [str(find_bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        command += ["-h", HOST, "-p", str(server.port), "-U", SUPERUSER, "-d", DATABASE]
        for script in scripts:
            command += ["-f", str(script)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        log(f"loaded in {time.perf_counter() - started:.0f} s")
        added = add_missing_indexes(url, mapping_path)
        for statement in added:
            log(f"added (named by dsr mapping check --db): {statement}")
        yield url, len(added)


def add_missing_indexes(url: str, mapping_path: Path) -> list[str]:
    """Create the indexes the index check names for the mapping, then check again: every
    lookup must now have one. The statements created, in the check's order."""
    mapping = load_mapping(mapping_path)
    if not isinstance(mapping, SqlMapping):
        raise SystemExit(f"fides_access: {mapping_path} is not a mapping of kind sql")
    statements = [statement for _, statement in check_indexes(mapping, mapping_path, url).missing]
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")  # plans on the new indexes' statistics
    finally:
        engine.dispose()
    if still := check_indexes(mapping, mapping_path, url).missing:
        names = ", ".join(f"{lookup.table}.{lookup.column}" for lookup, _ in still)
        raise SystemExit(f"fides_access: still no usable index for {names}")
    return statements


def figures(measured: dict[str, Any], added: int | None) -> list[dict[str, Any]]:
    """The figures for ``make bench``; ``added``: indexes added to ``indexes.sql``'s (None: a
    database given by ``--url``, measured as it is)."""
    ours, anchor = measured["connector"], measured["hand_written"]
    where = "the given database" if added is None else f"indexes.sql + {added} named by the check"
    return [
        figure(
            f"SQL connector / hand-written SQL, PostgreSQL ({where})",
            ours["median_ms"],
            "ms",
            anchor["median_ms"],
            f"<= {TARGET_RATIO:g}",
        ),
        figure(
            "SQL statements, connector / hand-written",
            ours["statements"],
            "statements",
            anchor["statements"],
            None,
        ),
    ]


def flow_figures(flows: dict[str, Any], not_measured: str | None) -> list[dict[str, Any]]:
    """The whole-flow figures for ``make bench``: dsrflow's flow against Fides' access request
    (target <= 0.25), and whether both found the same rows per table. Without Fides, the
    flow's own time, with no target (the name says why)."""
    ours = flows["flow"]
    if not_measured is not None:
        name = f"whole access flow (Fides not measured: {not_measured})"
        return [figure(name, ours["median_ms"], "ms", None, None)]
    fides = flows["fides"]
    same = int(ours["rows_by_table"] == fides["rows_by_table"])
    return [
        figure(
            f"whole access flow / Fides {fides_app.FIDES_VERSION} access request",
            ours["median_ms"],
            "ms",
            fides["median_ms"],
            f"<= {TARGET_FLOW_RATIO:g}",
        ),
        figure("same rows per table as Fides (1: yes)", same, "", None, ">= 1"),
    ]


def log_sides(measured: dict[str, Any], log: Callable[[str], None], what: str) -> None:
    for name, side in measured.items():
        rows = ", ".join(f"{t} {n}" for t, n in side["rows_by_table"].items())
        log(f"{name:>12}: {side['median_ms']:8.2f} ms, {side['statements']:3d} {what}; {rows}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fides_access",
        description="SQL connector vs hand-written SQL, and dsrflow's whole access flow vs "
        "Fides, on the large Fides database.",
    )
    parser.add_argument(
        "--url",
        help="postgresql+psycopg://... of the database (default: build one, see above)",
    )
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each side")
    parser.add_argument(
        "--flow-runs", type=int, default=7, help="timed runs of the whole flow and of Fides"
    )
    parser.add_argument("--mapping", type=Path, default=FIDES_MAPPING)
    parser.add_argument("--json", action="store_true", help="print the make-bench figures")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.flow_runs < 2:
        parser.error("--runs and --flow-runs must be at least 2")
    # With --json only the figures go to stdout (make bench reads them); the rest to stderr.
    out = sys.stderr if args.json else sys.stdout

    def log(line: str) -> None:
        print(line, file=out, flush=True)

    def measure(url: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        return bench(url, args.runs, args.mapping), *flow_bench(
            url, args.flow_runs, args.mapping, log
        )

    if args.url:
        (measured, flows, not_measured), added = measure(args.url), None
    else:
        with built_database(args.mapping, log) as (url, added):
            measured, flows, not_measured = measure(url)
    log(f"subject {mask_email(SUBJECT)}, {args.runs} interleaved runs per side, medians")
    log_sides(measured, log, "statements")
    ratio = measured["connector"]["median_ms"] / measured["hand_written"]["median_ms"]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    log(f"connector / hand-written = {ratio:.2f}x (target <= {TARGET_RATIO:g}x: {verdict})")
    log(f"whole access flow and Fides, {args.flow_runs} interleaved runs per side, medians")
    log_sides(flows, log, "records")
    if not_measured is None:
        flow_ratio = flows["flow"]["median_ms"] / flows["fides"]["median_ms"]
        verdict = "met" if flow_ratio <= TARGET_FLOW_RATIO else "NOT met"
        same = flows["flow"]["rows_by_table"] == flows["fides"]["rows_by_table"]
        log(
            f"whole flow / Fides = {flow_ratio:.2f}x (target <= {TARGET_FLOW_RATIO:g}x: "
            f"{verdict}); same rows per table: {'yes' if same else 'NO'}"
        )
    if args.json:
        print(json.dumps(figures(measured, added) + flow_figures(flows, not_measured), indent=2))


if __name__ == "__main__":
    main()
