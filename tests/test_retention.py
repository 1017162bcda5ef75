"""The retention sweep on SQL: aggregation with k-anonymity, deletion, batches, crash safety."""

import datetime as dt
import random
from collections import Counter

import pytest
import sqlalchemy as sa

from connectors.sql.connector import SqlConnector
from connectors.sql.retention import pages_per_batch
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from tests.conftest import ONPREM_MAPPING

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
CUTOFF = dt.datetime(2024, 11, 22, 12, 0)
PRODUCTS = {1: "Timesheet Pro", 2: "Secure Forms", 3: "Release Radar", 4: "Timesheet Pro"}


@pytest.fixture
def events_db(sandbox_url):
    """The sandbox fixture plus 3,000 generated usage events around the two-year cutoff."""
    rng = random.Random(7)
    rows = []
    for i in range(3000):
        when = CUTOFF + dt.timedelta(days=rng.uniform(-60, 30), seconds=rng.randint(0, 3600))
        rows.append(
            {
                "id": 1000 + i,
                "license_id": rng.choice([1, 2, 3, 4]),
                "instance_id": "inst",
                "user_hash": f"{rng.getrandbits(32):08x}",
                "event": rng.choices(["login", "page_view", "export", "rare"], [50, 40, 9, 1])[0],
                "occurred_at": when.replace(microsecond=0),
            }
        )
    engine = sa.create_engine(sandbox_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM usage_events"))
        conn.execute(sa.table("usage_events", *[sa.column(c) for c in rows[0]]).insert(), rows)
    engine.dispose()
    return sandbox_url, rows


def expected_aggregates(rows, k, protected=frozenset()):
    groups = Counter(
        (r["occurred_at"].date(), PRODUCTS[r["license_id"]], r["event"])
        for r in rows
        if r["occurred_at"] < CUTOFF and r["id"] not in protected
    )
    out, suppressed = Counter(), 0
    for (day, product, event), n in groups.items():
        out[(day, product, event) if n >= k else (day, "other", "other")] += n
    for key in [key for key, n in out.items() if key[1] == "other" and n < k]:
        suppressed += out.pop(key)
    return dict(out), suppressed


def state(url):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        daily = {
            (
                r.day if isinstance(r.day, dt.date) else dt.date.fromisoformat(r.day),
                r.product,
                r.event,
            ): r.count
            for r in conn.execute(sa.text("SELECT day, product, event, count FROM usage_daily"))
        }
        ids = {r.id for r in conn.execute(sa.text("SELECT id FROM usage_events"))}
    engine.dispose()
    return daily, ids


def pending(url):
    """Staged counts not folded yet: none once a sweep has finished."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM usage_daily_pending")).scalar_one()
    engine.dispose()
    return n


def daily_fold_mapping():
    """The sandbox mapping with its aggregation as the daily fold (no levels): these tests pin
    the batches, the staging and crash safety on that fold; tests/test_aggregation.py covers
    the levels."""
    mapping = load_mapping(ONPREM_MAPPING)
    events = mapping.tables["usage_events"]
    assert events.retention is not None and events.retention.aggregate is not None
    aggregate = events.retention.aggregate.model_copy(
        update={
            "into": "usage_daily",
            "group_by": {
                "day": "day(occurred_at)",
                "product": "licenses.product",
                "event": "event",
            },
            "levels": None,
            "level_column": None,
            "families": {},
        }
    )
    retention = events.retention.model_copy(update={"aggregate": aggregate})
    mapping.tables["usage_events"] = events.model_copy(update={"retention": retention})
    return mapping


def page_batches(url, batch_rows):
    """PostgreSQL's batches (stretches of pages) that hold old rows; asked before the sweep."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        pages = conn.execute(sa.text("SELECT pg_relation_size('usage_events') / 8192")).scalar()
        rows = conn.execute(sa.text("SELECT count(*) FROM usage_events")).scalar_one()
        blocks = conn.execute(
            sa.text("SELECT (ctid::text::point)[0] FROM usage_events WHERE occurred_at < :c"),
            {"c": CUTOFF},
        ).scalars()
        step = pages_per_batch(batch_rows, rows, pages)
        stretches = {int(block) // step for block in blocks}
    engine.dispose()
    return len(stretches)


def connector(url, **options):
    return SqlConnector("onprem", daily_fold_mapping(), url, **options)


def test_old_events_are_aggregated_k_anonymously_then_deleted(events_db):
    url, rows = events_db
    on_postgres = url.startswith("postgresql")
    stretches = page_batches(url, 300) if on_postgres else None
    c = connector(url, sweep_batch_rows=300)
    (result, reports_rule) = [
        r for r in c.sweep(NOW) if r.table in ("usage_events", "config_reports")
    ]
    c.close()
    expected, suppressed = expected_aggregates(rows, k=5)
    daily, ids = state(url)
    assert daily == expected
    assert min(daily.values()) >= 5
    assert result.suppressed == suppressed
    old = {r["id"] for r in rows if r["occurred_at"] < CUTOFF}
    assert result.rows == len(old)
    assert ids == {r["id"] for r in rows} - old  # the young stay, the old are gone
    assert sum(daily.values()) + suppressed == len(old)
    # batches of 300 consecutive ids (the first is 1000), on PostgreSQL of pages holding about
    # 300 rows; a stretch without old rows is no batch
    assert result.batches == (stretches or len({(i - 1000) // 300 for i in old}))
    assert result.groups == len(daily)
    assert pending(url) == 0
    assert reports_rule.rule == "delete"


def test_a_table_without_an_integer_key_is_swept_in_keyset_pages(events_db):
    """A composite key cannot be cut into ranges by arithmetic: pages of ``batch_rows`` old
    rows each, found by key order, with the same outcome."""
    url, rows = events_db
    mapping = daily_fold_mapping()
    events = mapping.tables["usage_events"]
    mapping.tables["usage_events"] = events.model_copy(update={"primary_key": ["license_id", "id"]})
    stretches = page_batches(url, 300) if url.startswith("postgresql") else None
    c = SqlConnector("onprem", mapping, url, sweep_batch_rows=300)
    result = next(r for r in c.sweep(NOW) if r.table == "usage_events")
    c.close()
    old = {r["id"] for r in rows if r["occurred_at"] < CUTOFF}
    expected, suppressed = expected_aggregates(rows, k=5)
    daily, ids = state(url)
    assert daily == expected
    assert (result.rows, result.suppressed) == (len(old), suppressed)
    assert ids == {r["id"] for r in rows} - old
    # full pages of 300, then the rest; PostgreSQL cuts the table's pages whatever the key
    assert result.batches == (stretches or -(-len(old) // 300))
    assert pending(url) == 0


@pytest.mark.parametrize("sandbox_url", ["postgres"], indirect=True)
def test_on_postgresql_a_batch_is_a_stretch_of_pages_read_by_a_tid_range_scan(events_db):
    url, rows = events_db
    statements = []

    def seen(conn, cursor, sql, parameters, context, executemany):
        statements.append(" ".join(sql.split()))

    sa.event.listen(sa.Engine, "before_cursor_execute", seen)
    c = connector(url, sweep_batch_rows=300)
    try:
        result = next(r for r in c.sweep(NOW) if r.table == "usage_events")
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", seen)
    c.close()
    deletes = [s for s in statements if s.startswith("DELETE FROM usage_events WHERE")]
    assert len(deletes) > 2 and all("usage_events.ctid >= '(" in s for s in deletes)
    assert result.rows == sum(r["occurred_at"] < CUTOFF for r in rows)
    # The planner reads such a stretch by its pages, neither the whole table nor an index.
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        plan = conn.execute(
            sa.text("EXPLAIN SELECT * FROM usage_events WHERE ctid >= '(0,0)' AND ctid < '(4,0)'")
        ).scalars()
        assert "Tid Range Scan" in "\n".join(plan)
    engine.dispose()


def test_rerun_counts_nothing_twice(events_db):
    url, _ = events_db
    c = connector(url)
    c.sweep(NOW)
    first = state(url)
    again = next(r for r in c.sweep(NOW) if r.table == "usage_events")
    c.close()
    assert again.rows == 0
    assert state(url) == first


@pytest.mark.parametrize(
    ("statement", "nth"),
    [
        ("DELETE FROM usage_events", 1),  # first batch: staged, not yet deleted
        ("DELETE FROM usage_events", 4),  # three batches committed, the fourth rolled back
        ("INSERT INTO usage_daily ", 1),  # every batch committed, the fold fails
        ("DELETE FROM usage_daily_pending", 1),  # the fold wrote, then failed to clear
    ],
)
def test_crash_mid_sweep_loses_nothing_and_doubles_nothing(events_db, statement, nth):
    url, rows = events_db
    seen = {"n": 0}

    def power_cut(conn, cursor, sql, parameters, context, executemany):
        if " ".join(sql.split()).startswith(statement):
            seen["n"] += 1
            if seen["n"] == nth:
                raise RuntimeError("power cut")

    sa.event.listen(sa.Engine, "before_cursor_execute", power_cut)
    c = connector(url, sweep_batch_rows=300)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            c.sweep(NOW)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", power_cut)
    c.sweep(NOW)
    c.close()
    expected, _ = expected_aggregates(rows, k=5)
    daily, ids = state(url)
    assert daily == expected
    assert ids == {r["id"] for r in rows if r["occurred_at"] >= CUTOFF}
    assert pending(url) == 0


def test_dry_run_changes_nothing(events_db):
    url, rows = events_db
    before = state(url)
    c = connector(url)
    result = next(r for r in c.sweep(NOW, dry_run=True) if r.table == "usage_events")
    c.close()
    assert result.rows == sum(r["occurred_at"] < CUTOFF for r in rows)
    expected, suppressed = expected_aggregates(rows, k=5)
    assert (result.groups, result.suppressed) == (len(expected), suppressed)
    assert state(url) == before


def test_restricted_subjects_rows_are_left_alone(events_db):
    url, rows = events_db
    c = connector(url)
    restricted = list(c.discover(Subject.from_raw(["o'brien@example.com"])))  # licence 4
    result = next(r for r in c.sweep(NOW, protected=restricted) if r.table == "usage_events")
    c.close()
    kept = {r["id"] for r in rows if r["license_id"] == 4}
    assert result.protected == len(kept)
    daily, ids = state(url)
    assert kept <= ids
    expected, _ = expected_aggregates(rows, k=5, protected=kept)
    assert daily == expected


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_sweep_flow_honours_restrictions_and_is_logged(events_db, tmp_path):
    from typer.testing import CliRunner

    from dsrflow.cli import app
    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger
    from sandbox.runtime import onprem_source, write_config

    url, rows = events_db
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(url), tmp_path / "out")
    ledger = Ledger(load_config(config).ledger_url)
    ledger.add_restriction(Subject.from_raw(["o'brien@example.com"]), "DSR-2026-0500", "test")
    ledger.close()
    runner = CliRunner()
    before = state(url)
    dry = runner.invoke(app, ["sweep", "--dry-run", "--config", str(config)])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    assert state(url) == before
    done = runner.invoke(app, ["sweep", "--config", str(config)])
    assert done.exit_code == 0, done.output
    _daily, ids = state(url)
    assert {r["id"] for r in rows if r["license_id"] == 4} <= ids  # restricted: untouched
    ledger = Ledger(load_config(config).ledger_url)
    sweeps = [e for e in ledger.entries() if e.event.startswith("retention_sweep")]
    ledger.close()
    assert [e.event for e in sweeps] == ["retention_sweep_dry_run", "retention_sweep"]
    assert sweeps[1].details["restricted_subjects"] == 1
    assert sweeps[1].details["rows"]["onprem.usage_events"] > 0
    # The report by level (counts only): every swept event published at a level, suppressed
    # or waiting for its quarter to close; the dry run said the same kind of thing first.
    assert "published by level: day " in dry.output
    report = sweeps[1].details["aggregated"]["onprem.usage_events"]
    assert set(report["levels"]) == {level.label for level in aggregate_levels()}
    assert report["pending"] > 0 and sum(report["levels"].values()) > 0
    assert (
        sum(report["levels"].values()) + report["suppressed"] + report["pending"]
        == sweeps[1].details["rows"]["onprem.usage_events"]
    )
    assert set(sweeps[0].details["aggregated"]["onprem.usage_events"]) == set(report)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_min_group_size_from_the_command_line_reaches_the_sweep(events_db, tmp_path):
    """``dsr sweep --min-group-size`` is a setting of the process that runs the sweep
    (dsrflow/run_settings.py), not of the run form: a k that no group reaches publishes
    nothing, where the mappings' k published some."""
    from typer.testing import CliRunner

    from dsrflow.cli import app
    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger
    from sandbox.runtime import onprem_source, write_config

    url, _rows = events_db
    config = tmp_path / "dsrflow.yaml"
    write_config(config, onprem_source(url), tmp_path / "out")
    runner = CliRunner()
    for k in ([], ["--min-group-size", "100000"]):
        result = runner.invoke(app, ["sweep", "--dry-run", "--config", str(config), *k])
        assert result.exit_code == 0, result.output
    ledger = Ledger(load_config(config).ledger_url)
    mappings_k, huge_k = [
        e.details["aggregated"]["onprem.usage_events"]
        for e in ledger.entries()
        if e.event == "retention_sweep_dry_run"
    ]
    ledger.close()
    assert sum(mappings_k["levels"].values()) > 0
    assert sum(huge_k["levels"].values()) == 0
    assert huge_k["suppressed"] > mappings_k["suppressed"]


def aggregate_levels():
    aggregate = load_mapping(ONPREM_MAPPING).tables["usage_events"].retention.aggregate
    return aggregate.levels
