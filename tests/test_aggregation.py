"""Aggregation by levels (issue 17): groups generalise before anything is suppressed, totals are
preserved, no published row counts fewer than k events, and published rows never change."""

import datetime as dt
import random
from collections import Counter

import pytest
import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from pydantic import ValidationError

from connectors.sql.aggregation import REMAINDER, Hierarchy, bucket
from connectors.sql.connector import SqlConnector
from dsrflow.mapping import load_mapping
from dsrflow.mapping.common import Aggregation
from tests.conftest import ONPREM_MAPPING

K = 5
PRODUCTS = {1: "Timesheet Pro", 2: "Secure Forms", 3: "Release Radar", 4: "Timesheet Pro"}
EVENTS = ("page_view", "issue_created", "report_exported", "settings_changed", "login")
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)  # cutoff 2024-11-22 12:00: Q4 2024 open


def sandbox_aggregate() -> Aggregation:
    aggregate = load_mapping(ONPREM_MAPPING).tables["usage_events"].retention.aggregate
    assert aggregate.levels  # the sandbox declares its hierarchy
    return aggregate


def generate(licences, start, end, per_day, seed=17, first_id=1000):
    """Usage events of ``licences`` between ``start`` and ``end``: ``per_day`` a day from each
    licence on average (the fraction as a chance of one more)."""
    rng = random.Random(seed)
    rows, day = [], start
    while day < end:
        for licence in licences:
            for _ in range(int(per_day) + (rng.random() < per_day % 1)):
                rows.append(
                    {
                        "id": first_id + len(rows),
                        "license_id": licence,
                        "instance_id": "inst",
                        "user_hash": f"{rng.getrandbits(32):08x}",
                        "event": rng.choice(EVENTS),
                        "occurred_at": dt.datetime.combine(day, dt.time(rng.randint(0, 23), 7)),
                    }
                )
        day += dt.timedelta(days=1)
    return rows


def load_events(url, rows, *, replace=True):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if replace:
            conn.execute(sa.text("DELETE FROM usage_events"))
        conn.execute(sa.table("usage_events", *[sa.column(c) for c in rows[0]]).insert(), rows)
    engine.dispose()


def published(url):
    """(period_start, level, product, event) -> count, as the statistics table holds them."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT period_start, level, product, event, count FROM usage_statistics")
        ).all()
    engine.dispose()
    return {(_day(r[0]), r[1], r[2], r[3]): r[4] for r in rows}


def staged(url):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("usage_statistics_pending"):
            return 0
        n = conn.execute(sa.text("SELECT sum(n) FROM usage_statistics_pending")).scalar_one()
    engine.dispose()
    return int(n or 0)


def event_ids(url):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = set(conn.execute(sa.text("SELECT id FROM usage_events")).scalars())
    engine.dispose()
    return ids


def _day(value):
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def sweep(url, now, **options):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), url)
    try:
        return next(r for r in connector.sweep(now, **options) if r.table == "usage_events")
    finally:
        connector.close()


def cutoff_of(now):
    return now.replace(tzinfo=None) - relativedelta(years=2)  # the mapping's max_age


def groups_of(rows, until):
    """The events older than ``until`` counted per day, product and event: what is staged."""
    return Counter(
        (r["occurred_at"].date(), (PRODUCTS[r["license_id"]], r["event"]))
        for r in rows
        if r["occurred_at"] < until
    )


def assert_k_and_totals(rows, events):
    """No published group below k; published plus remainders account for every event."""
    groups = {key: n for key, n in rows.items() if key[1] != REMAINDER}
    assert groups and min(groups.values()) >= K
    assert sum(rows.values()) == events


# -- the hierarchy on its own ------------------------------------------------------------------


def test_groups_climb_until_they_reach_k_and_the_rest_is_one_remainder_per_quarter():
    p1, p2 = "Timesheet Pro", "Secure Forms"
    counts = {
        (dt.date(2024, 1, 2), (p1, "login")): 5,  # k on its own day
        (dt.date(2024, 1, 3), (p1, "login")): 2,  # with the next day: k in the week
        (dt.date(2024, 1, 4), (p1, "login")): 3,
        (dt.date(2024, 1, 10), (p1, "login")): 2,  # three weeks: k in the month
        (dt.date(2024, 1, 20), (p1, "login")): 2,
        (dt.date(2024, 1, 30), (p1, "login")): 1,
        (dt.date(2024, 2, 5), (p1, "login")): 2,  # login and page_view: the session family
        (dt.date(2024, 2, 6), (p1, "page_view")): 3,
        (dt.date(2024, 3, 5), (p2, "issue_created")): 1,  # alone all the way up
        (dt.date(2024, 4, 5), (p2, "issue_created")): 3,  # next quarter: both products, all
        (dt.date(2024, 5, 5), (p1, "login")): 2,  # events together reach k
    }
    out = Hierarchy(sandbox_aggregate()).publish(counts, K)
    everything = ("all products", "all events")
    assert {
        (r["period_start"], r["level"], r["product"], r["event"]): r["count"] for r in out.rows
    } == {
        (dt.date(2024, 1, 2), "day", p1, "login"): 5,
        (dt.date(2024, 1, 1), "week", p1, "login"): 5,
        (dt.date(2024, 1, 1), "month", p1, "login"): 5,
        (dt.date(2024, 2, 1), "month, event family", p1, "session"): 5,
        (dt.date(2024, 4, 1), "quarter, all products, all events", *everything): 5,
        (dt.date(2024, 1, 1), REMAINDER, "other", "other"): 1,
    }
    assert out.levels["day"] == out.levels["week"] == out.levels["month"] == 5
    assert (out.groups, out.remainder) == (5, 1)
    assert sum(out.levels.values()) + out.remainder == sum(counts.values())


def test_weeks_are_cut_at_the_quarter_so_each_period_is_published_on_its_own():
    assert bucket(dt.date(2024, 12, 31), "week", "quarter") == dt.date(2024, 12, 30)  # Monday
    assert bucket(dt.date(2025, 1, 2), "week", "quarter") == dt.date(2025, 1, 1)  # not Dec 30
    assert bucket(dt.date(2025, 1, 2), "week", "week") == dt.date(2024, 12, 30)
    counts = {
        (dt.date(2024, 12, 31), ("Secure Forms", "login")): 3,
        (dt.date(2025, 1, 2), ("Secure Forms", "login")): 3,
    }
    out = Hierarchy(sandbox_aggregate()).publish(counts, K)
    assert {r["level"] for r in out.rows} == {REMAINDER}  # 3 + 3 never meet across quarters
    assert [r["count"] for r in out.rows] == [3, 3]


def test_random_counts_keep_totals_and_k():
    rng = random.Random(3)
    counts = Counter()
    for _ in range(2000):
        day = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(730))
        counts[(day, (rng.choice(list(PRODUCTS.values())), rng.choice(EVENTS)))] += 1
    out = Hierarchy(sandbox_aggregate()).publish(counts, K)
    rows = {(r["period_start"], r["level"], r["product"], r["event"]): r["count"] for r in out.rows}
    assert len(rows) == len(out.rows)  # no two rows with one key
    assert_k_and_totals(rows, sum(counts.values()))
    remainders = [key[0] for key in rows if key[1] == REMAINDER]
    assert len(remainders) == len(set(remainders)) <= 8  # at most one per quarter


@pytest.mark.parametrize(
    ("levels", "problem"),
    [
        ([{"period": "month"}, {"period": "week"}], "levels.1: finer than the level before"),
        (
            [{"period": "month", "merge": {"product": "all"}}, {"period": "quarter"}],
            "levels.1: finer than the level before",
        ),
        ([{"period": "month", "families": ["event"]}], "'event' has no entry under families"),
        ([{"period": "month", "merge": {"day": "x"}}], "'day' is not a group_by column"),
        ([{"period": "day"}, {"period": "day"}], "every level needs its own name"),
    ],
)
def test_a_hierarchy_that_does_not_climb_is_refused(levels, problem):
    with pytest.raises(ValidationError, match=problem):
        Aggregation.model_validate(
            {
                "into": "stats",
                "group_by": {"day": "day(at)", "product": "product", "event": "event"},
                "level_column": "level",
                "levels": levels,
            }
        )


# -- the sweep ---------------------------------------------------------------------------------


def test_a_small_customer_base_keeps_coarser_figures_instead_of_nothing(sandbox_url):
    """Three licences over three years, about one event each per ten days: no day or product
    group reaches k, yet most old events stay counted in monthly figures."""
    rows = generate([1, 2, 3], dt.date(2023, 11, 22), NOW.date(), per_day=0.1)
    load_events(sandbox_url, rows)
    cutoff = cutoff_of(NOW)
    old = [r for r in rows if r["occurred_at"] < cutoff]
    daily = groups_of(rows, cutoff)
    assert max(daily.values()) < K  # the daily fold would have counted nothing
    result = sweep(sandbox_url, NOW)
    assert result.rows == len(old)
    assert event_ids(sandbox_url) == {r["id"] for r in rows} - {r["id"] for r in old}
    statistics = published(sandbox_url)
    pending = staged(sandbox_url)
    assert (
        pending == result.pending == sum(r["occurred_at"] >= dt.datetime(2024, 10, 1) for r in old)
    )
    assert_k_and_totals(statistics, len(old) - pending)
    counted = sum(n for key, n in statistics.items() if key[1] != REMAINDER)
    assert counted == sum(result.levels.values()) >= 0.8 * (len(old) - pending)
    assert result.suppressed == sum(n for key, n in statistics.items() if key[1] == REMAINDER)
    assert not result.levels["day"] and not result.levels["week"]
    monthly = sum(n for level, n in result.levels.items() if level.startswith("month"))
    assert monthly >= 0.6 * (len(old) - pending)


def test_every_event_is_counted_once_at_the_level_its_group_reached(sandbox_url):
    """Four licences around the cutoff: the table holds what the hierarchy makes of the old
    events of the closed quarters, counted in Python from the generated rows."""
    rows = generate([1, 2, 3, 4], dt.date(2024, 5, 1), dt.date(2024, 12, 31), per_day=8)
    load_events(sandbox_url, rows)
    result = sweep(sandbox_url, NOW)
    closed = groups_of(rows, dt.datetime(2024, 10, 1))
    expected = Hierarchy(sandbox_aggregate()).publish(closed, K)
    assert published(sandbox_url) == {
        (r["period_start"], r["level"], r["product"], r["event"]): r["count"] for r in expected.rows
    }
    assert result.levels == expected.levels and result.levels["day"] > 0
    assert (result.groups, result.suppressed) == (expected.groups, expected.remainder)
    assert (
        result.pending
        == staged(sandbox_url)
        == sum(groups_of(rows, cutoff_of(NOW)).values()) - sum(closed.values())
    )


def test_published_rows_are_never_re_cut_so_one_event_cannot_be_singled_out(sandbox_url):
    """Two sweeps a day apart with one more event between them: every row of the first is
    the same after the second, and the second only adds periods the first did not publish.
    An old event of a published period that turns up later is dropped, not added."""
    rows = generate([1, 2, 3, 4], dt.date(2024, 7, 1), dt.date(2025, 2, 1), per_day=0.3)
    load_events(sandbox_url, rows)
    first_now = dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC)  # cutoff 2024-12-31 12:00
    sweep(sandbox_url, first_now)
    first = published(sandbox_url)
    assert first and all(key[0] < dt.date(2024, 10, 1) for key in first)  # Q4 2024 not yet closed
    extra = {**rows[-1], "id": 99_999, "occurred_at": dt.datetime(2024, 12, 31, 18, 0)}
    load_events(sandbox_url, [extra], replace=False)
    second = sweep(sandbox_url, first_now + dt.timedelta(days=1))  # closes Q4 2024
    after = published(sandbox_url)
    assert {key: after[key] for key in first} == first  # nothing published changed
    added = set(after) - set(first)
    assert added and all(dt.date(2024, 10, 1) <= key[0] < dt.date(2025, 1, 1) for key in added)
    assert sum(second.levels.values()) + second.suppressed == sum(after[key] for key in added)
    # An event of the published third quarter, found old only now: counted nowhere.
    late = {**rows[-1], "id": 100_000, "occurred_at": dt.datetime(2024, 8, 15, 9, 0)}
    load_events(sandbox_url, [late], replace=False)
    third = sweep(sandbox_url, first_now + dt.timedelta(days=1))  # the cutoff as before
    assert published(sandbox_url) == after
    assert (third.rows, third.suppressed) == (1, 1)
    assert "dropped uncounted" in third.notes[0]
    swept = len(rows) + 2 - len(event_ids(sandbox_url))
    assert sum(after.values()) + staged(sandbox_url) + third.suppressed == swept


def test_dry_run_changes_nothing_and_reports_what_the_sweep_then_does(sandbox_url):
    rows = generate([1, 2, 3, 4], dt.date(2024, 7, 1), dt.date(2025, 2, 1), per_day=0.3)
    load_events(sandbox_url, rows)
    first_now = dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC)
    sweep(sandbox_url, first_now)  # something staged, something published
    before = (published(sandbox_url), staged(sandbox_url), event_ids(sandbox_url))
    assert before[1] > 0
    later = first_now + dt.timedelta(days=40)
    dry = sweep(sandbox_url, later, dry_run=True)
    assert (published(sandbox_url), staged(sandbox_url), event_ids(sandbox_url)) == before
    done = sweep(sandbox_url, later)
    figures = ("rows", "groups", "suppressed", "pending", "levels")
    assert {f: getattr(dry, f) for f in figures} == {f: getattr(done, f) for f in figures}
    assert dry.rows > 0 and sum(dry.levels.values()) > 0


def test_a_crash_while_publishing_loses_nothing_and_publishes_once(sandbox_url):
    rows = generate([1, 2, 3, 4], dt.date(2024, 5, 1), dt.date(2024, 12, 31), per_day=0.5)
    load_events(sandbox_url, rows)

    def power_cut(conn, cursor, sql, parameters, context, executemany):
        if " ".join(sql.split()).startswith("INSERT INTO usage_statistics "):
            raise RuntimeError("power cut")

    sa.event.listen(sa.Engine, "before_cursor_execute", power_cut)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            sweep(sandbox_url, NOW)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", power_cut)
    assert published(sandbox_url) == {}
    sweep(sandbox_url, NOW)
    closed = groups_of(rows, dt.datetime(2024, 10, 1))
    expected = Hierarchy(sandbox_aggregate()).publish(closed, K)
    assert sum(published(sandbox_url).values()) == sum(closed.values())
    assert len(published(sandbox_url)) == len(expected.rows)
