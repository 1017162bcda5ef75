"""Aggregation that keeps what it can: groups generalise level by level until they reach k.

The sweep stages the counts of old rows per day and group (``<into>_pending``, see
connectors/sql/retention.py); this module decides what of them is published, and when.

- A period of the coarsest level (say a quarter) is published once, when it has closed, i.e.
  when every event in it is older than the cutoff, and never changed afterwards. Counts of a
  period already published that turn up later (an event of a lifted restriction) are dropped,
  not added: adding one event to a published row would reveal it (the differencing attack).
- Within a period the staged groups climb the levels, finest first: at each level the groups
  still unpublished are re-cut into that level's cells (time bucket, dimensions generalised);
  a cell of at least k events is published, the rest climbs on. What is below k at the last
  level is one remainder row per period (it may count fewer than k, but names no product,
  event or day), so the period's total is preserved.

The published cells of a period are disjoint sets of events, so no row can be subtracted from
another to isolate fewer than k events of a group. k counts events, as the daily fold does, not
licences or users. Only counts are read into Python (one row per day and group).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.base import SweepResult
from dsrflow.mapping.common import Aggregation, AggregationLevel

REMAINDER = "remainder"  # the level column of a remainder row

# A staged group: the day and the dimensions' values, in group_by order (the day left out).
Group = tuple[dt.date, tuple[Any, ...]]


def period_start(day: dt.date, period: str) -> dt.date:
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)


def bucket(day: dt.date, period: str, coarsest: str) -> dt.date:
    """The first day of ``day``'s ``period``. A week is cut at the boundary of the coarsest
    period (a week over New Year counts in two quarters), so each cell lies in one period and
    a period can be published on its own."""
    start = period_start(day, period)
    return max(start, period_start(day, coarsest))


@dataclass
class Publication:
    """What publishing some closed periods gives: the rows and the figures of the report."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)  # events published per level
    groups: int = 0  # rows published, remainders left out
    remainder: int = 0  # events only in remainder rows


class Hierarchy:
    """An aggregation's levels applied to staged counts."""

    def __init__(self, aggregate: Aggregation) -> None:
        assert aggregate.levels and aggregate.level_column  # validated with the mapping
        self.aggregate = aggregate
        self.levels: list[AggregationLevel] = aggregate.levels
        self.coarsest = self.levels[-1].period
        self.time_key = next(k for k, v in aggregate.group_by.items() if v.startswith("day("))
        self.dimensions = [k for k in aggregate.group_by if k != self.time_key]

    def period_of(self, day: dt.date) -> dt.date:
        """The first day of the coarsest period holding ``day``: the unit of publication."""
        return period_start(day, self.coarsest)

    def first_open_period(self, cutoff: dt.datetime) -> dt.date:
        """Periods starting before this date have closed: all their events are older than
        ``cutoff``. The period holding the cutoff's day ends after the cutoff."""
        return self.period_of(cutoff.date())

    def publish(self, counts: Mapping[Group, int], k: int) -> Publication:
        """Climb ``counts`` (groups of closed periods not yet published) up the levels."""
        out = Publication(levels={level.label: 0 for level in self.levels})
        remaining: Counter[Group] = Counter({g: n for g, n in counts.items() if n > 0})
        for level in self.levels:
            cells: dict[tuple[dt.date, tuple[Any, ...]], list[Group]] = defaultdict(list)
            for group in remaining:
                cells[self._cell(group, level)].append(group)
            climbing: Counter[Group] = Counter()
            for (start, values), members in cells.items():
                total = sum(remaining[m] for m in members)
                if total >= k:
                    out.rows.append(self._row(start, level.label, values, total))
                    out.levels[level.label] += total
                    out.groups += 1
                else:
                    climbing.update({m: remaining[m] for m in members})
            remaining = climbing
        left: Counter[dt.date] = Counter()
        for (day, _), n in remaining.items():
            left[self.period_of(day)] += n
        for start, n in sorted(left.items()):
            other = (self.aggregate.other_value,) * len(self.dimensions)
            out.rows.append(self._row(start, REMAINDER, other, n))
            out.remainder += n
        return out

    def _cell(self, group: Group, level: AggregationLevel) -> tuple[dt.date, tuple[Any, ...]]:
        day, values = group
        generalised = []
        for name, value in zip(self.dimensions, values, strict=True):
            if name in level.merge:
                value = level.merge[name]
            elif name in level.families:
                value = self.aggregate.families[name].of(value)
            generalised.append(value)
        return bucket(day, level.period, self.coarsest), tuple(generalised)

    def _row(self, start: dt.date, label: str, values: Iterable[Any], n: int) -> dict[str, Any]:
        assert self.aggregate.level_column is not None
        return {
            self.time_key: start,
            self.aggregate.level_column: label,
            **dict(zip(self.dimensions, values, strict=True)),
            self.aggregate.count_column: n,
        }


def publish_closed(
    conn: sa.Connection,
    hierarchy: Hierarchy,
    staging: sa.Table,
    target: sa.Table,
    cutoff: dt.datetime,
    result: SweepResult,
    in_place: Iterable[Any] = (),  # rows of the group_by columns and n
) -> None:
    """Publish the staged periods that have closed and are not published yet, in ``conn``'s
    transaction, and empty their staged counts; report into ``result``. A dry run passes the
    old rows counted in place as ``in_place`` and changes nothing."""
    aggregate = hierarchy.aggregate
    keys = list(aggregate.group_by)
    staged: Counter[Group] = Counter()
    rows: list[sa.Row[Any]] = []
    if sa.inspect(conn).has_table(staging.name, schema=staging.schema):
        sums = sa.select(*[staging.c[k] for k in keys], sa.func.sum(staging.c.n).label("n"))
        rows = list(conn.execute(sums.group_by(*[staging.c[k] for k in keys])))
    for row in [*rows, *in_place]:
        values = row._mapping
        group = (values[hierarchy.time_key], tuple(values[d] for d in hierarchy.dimensions))
        staged[group] += int(values["n"])
    boundary = hierarchy.first_open_period(cutoff)
    closed = {g: n for g, n in staged.items() if g[0] < boundary}
    result.pending = sum(n for g, n in staged.items() if g[0] >= boundary)
    done = _published_periods(conn, hierarchy, target, [g[0] for g in closed], boundary)
    late = sum(n for g, n in closed.items() if hierarchy.period_of(g[0]) in done)
    publication = hierarchy.publish(
        {g: n for g, n in closed.items() if hierarchy.period_of(g[0]) not in done},
        aggregate.min_group_size,
    )
    result.levels = publication.levels
    result.groups = publication.groups
    result.suppressed = publication.remainder + late
    if late:
        result.notes.append(
            f"{late} event(s) of periods published earlier dropped uncounted: "
            "published rows never change"
        )
    if result.dry_run:
        return
    if publication.rows:
        conn.execute(sa.insert(target), publication.rows)
    conn.execute(sa.delete(staging).where(staging.c[hierarchy.time_key] < boundary))


def _published_periods(
    conn: sa.Connection,
    hierarchy: Hierarchy,
    target: sa.Table,
    days: list[dt.date],
    boundary: dt.date,
) -> set[dt.date]:
    """The coarsest periods, among those of ``days``, that the aggregate already holds."""
    if not days:
        return set()
    time = target.c[hierarchy.time_key]
    first = hierarchy.period_of(min(days))
    starts = conn.execute(sa.select(time).where(time >= first, time < boundary).distinct())
    return {hierarchy.period_of(day) for day in starts.scalars()}
