"""Retention for SQL sources, set-based and in bounded batches: rows older than their rule's
maximum age are aggregated (when the mapping says so) and deleted, inside the database.

Nothing is pulled into Python but counts, so memory stays flat however large the table. Each
batch of days is aggregated and deleted in one transaction: a crash loses nothing and a rerun
counts nothing twice, because what was aggregated is gone with the same commit.

Aggregates never describe fewer than k events: a group smaller than k is folded into its day's
"other" bucket, and an "other" bucket still smaller than k is dropped (counted as suppressed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from connectors.base import SweepResult
from dsrflow.mapping.common import GROUP_SOURCE, Aggregation
from dsrflow.mapping.sql import SqlMapping, Table

Key = tuple[Any, ...]


class day_of(FunctionElement[dt.date]):  # lower case: it reads like the SQL it compiles to
    """The calendar day of a timestamp, in each dialect's own words."""

    type = sa.Date()
    inherit_cache = True


@compiles(day_of)
def _day_default(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(day_of, "sqlite")
def _day_sqlite(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


class SqlRetention:
    """The retention rules of one SQL mapping, applied to its database."""

    def __init__(
        self,
        engine: sa.Engine,
        mapping: SqlMapping,
        tables: dict[str, sa.Table],
        *,
        batch_rows: int = 500_000,
    ) -> None:
        self.engine = engine
        self.mapping = mapping
        self.tables = tables
        # Rows per transaction: large enough that index pages are rewritten few times, small
        # enough that a batch's journal and lock stay bounded.
        self.batch_rows = batch_rows

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: dict[str, set[Key]] | None = None,
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """Apply every retention rule; ``protected`` rows (restricted subjects) are left alone."""
        results = []
        for name, spec in self.mapping.tables.items():
            if spec.retention is None:
                continue
            cutoff = now.astimezone(dt.UTC).replace(tzinfo=None) - spec.retention.max_age.as_delta()
            keep = (protected or {}).get(name, set())
            if spec.retention.aggregate:
                aggregate = spec.retention.aggregate
                if min_group_size:
                    aggregate = aggregate.model_copy(update={"min_group_size": min_group_size})
                results.append(
                    self._aggregate_and_delete(name, spec, aggregate, cutoff, keep, dry_run)
                )
            else:
                results.append(self._delete(name, spec, cutoff, keep, dry_run))
        return results

    # -- helpers ----------------------------------------------------------------------------

    def _not_protected(self, name: str, keep: set[Key]) -> ColumnElement[bool]:
        if not keep:
            return sa.true()
        pk = [self.tables[name].c[c] for c in self.mapping.tables[name].primary_key]
        if len(pk) == 1:
            return pk[0].not_in([k[0] for k in keep])
        return sa.tuple_(*pk).not_in(list(keep))

    def _delete(
        self, name: str, spec: Table, cutoff: dt.datetime, keep: set[Key], dry_run: bool
    ) -> SweepResult:
        assert spec.retention is not None
        table = self.tables[name]
        old = sa.and_(table.c[spec.retention.counts_from] < cutoff, self._not_protected(name, keep))
        result = SweepResult(
            table=name,
            rule="delete",
            cutoff=cutoff.isoformat(),
            protected=len(keep),
            dry_run=dry_run,
        )
        if dry_run:
            with self.engine.connect() as conn:
                result.rows = conn.execute(sa.select(sa.func.count()).where(old)).scalar_one()
            return result
        pk = [table.c[c] for c in spec.primary_key]
        while True:
            batch = sa.select(*pk).where(old).limit(self.batch_rows)
            key = pk[0] if len(pk) == 1 else sa.tuple_(*pk)
            with self.engine.begin() as conn:
                deleted = conn.execute(
                    sa.delete(table).where(
                        key.in_(batch.scalar_subquery() if len(pk) == 1 else batch)
                    )
                ).rowcount
            if not deleted:
                return result
            result.rows += deleted
            result.batches += 1

    def _group_sources(
        self, name: str, spec: Table, aggregate: Aggregation
    ) -> tuple[list[ColumnElement[Any]], Any]:
        """The group-by expressions and the FROM clause (with joins to referenced tables)."""
        table = self.tables[name]
        source: Any = table
        joined: set[str] = set()
        expressions = []
        for target, text in aggregate.group_by.items():
            match = GROUP_SOURCE.match(text)
            assert match is not None  # validated with the mapping
            if match["day"]:
                expression: ColumnElement[Any] = day_of(table.c[match["day"]])
            elif match["table"]:
                other = match["table"]
                ref = next(r for r in spec.references if r.target_table == other)
                if other not in joined:
                    source = source.outerjoin(
                        self.tables[other],
                        table.c[ref.column] == self.tables[other].c[ref.target_column],
                    )
                    joined.add(other)
                expression = self.tables[other].c[match["joined"]]
            else:
                expression = table.c[match["column"]]
            expressions.append(expression.label(target))
        return expressions, source

    def _windows(
        self, stamp: sa.Column[Any], where: ColumnElement[bool], cutoff: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Runs of whole days holding about ``batch_rows`` rows each (a day is never split, so
        the k-anonymous folding sees all of a day at once). Reads one count per day."""
        day = day_of(stamp)
        with self.engine.connect() as conn:
            days = conn.execute(
                sa.select(day, sa.func.count()).where(where).group_by(day).order_by(day)
            ).all()
        windows: list[tuple[dt.datetime, dt.datetime]] = []
        start: dt.datetime | None = None
        rows = 0
        for value, count in days:
            begins = dt.datetime.combine(_as_date(value), dt.time())
            if start is None:
                start = begins
            elif rows + count > self.batch_rows:
                windows.append((start, begins))
                start, rows = begins, 0
            rows += count
        if start is not None:
            windows.append((start, cutoff))
        return windows

    def _aggregate_and_delete(
        self,
        name: str,
        spec: Table,
        aggregate: Aggregation,
        cutoff: dt.datetime,
        keep: set[Key],
        dry_run: bool,
    ) -> SweepResult:
        assert spec.retention is not None
        table = self.tables[name]
        stamp = table.c[spec.retention.counts_from]
        target = sa.Table(
            aggregate.into, sa.MetaData(), autoload_with=self.engine, schema=self.mapping.db_schema
        )
        result = SweepResult(
            table=name,
            rule=f"aggregate into {aggregate.into}, then delete",
            cutoff=cutoff.isoformat(),
            protected=len(keep),
            dry_run=dry_run,
        )
        not_protected = self._not_protected(name, keep)
        expressions, source = self._group_sources(name, spec, aggregate)
        keys = list(aggregate.group_by)
        k = aggregate.min_group_size
        for start, end in self._windows(stamp, sa.and_(stamp < cutoff, not_protected), cutoff):
            window = sa.and_(stamp >= start, stamp < end, not_protected)
            grouped = (
                sa.select(*expressions, sa.func.count().label("n"))
                .select_from(source)
                .where(window)
                .group_by(*expressions)
                .subquery("grouped")
            )
            small = grouped.c.n < k
            # Days are never folded: the "other" bucket is per day.
            folded = [
                grouped.c[key]
                if text.startswith("day(")
                else sa.case((small, sa.literal(aggregate.other_value)), else_=grouped.c[key])
                for key, text in aggregate.group_by.items()
            ]
            buckets = sa.select(
                *[f.label(key) for f, key in zip(folded, keys, strict=True)],
                sa.func.sum(grouped.c.n).label("n"),
            ).group_by(*folded)
            with self.engine.begin() as conn:
                rows = conn.execute(buckets).all()  # one row per bucket, never per event
                total = sum(int(r.n) for r in rows)
                kept_rows = [r for r in rows if int(r.n) >= k]
                if dry_run:
                    result.rows += total
                    continue
                if kept_rows:
                    self._upsert(conn, target, aggregate, keys, kept_rows)
                deleted = conn.execute(sa.delete(table).where(window)).rowcount
                if deleted != total:
                    raise RuntimeError(
                        f"{name}: aggregated {total} rows but deleted {deleted}; rolled back"
                    )
            result.rows += deleted
            result.groups += len(kept_rows)
            result.suppressed += total - sum(int(r.n) for r in kept_rows)
            result.batches += 1
        return result

    def _upsert(
        self,
        conn: sa.Connection,
        target: sa.Table,
        aggregate: Aggregation,
        keys: list[str],
        rows: Iterable[Any],
    ) -> None:
        """Add counts to the aggregate table: a rerun of a later batch adds, never replaces."""
        dialect = conn.dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
        if insert is None:
            raise NotImplementedError(f"aggregation upsert on {dialect} is not supported yet")
        values = [
            {**{k: getattr(r, k) for k in keys}, aggregate.count_column: int(r.n)} for r in rows
        ]
        statement = insert(target).values(values)
        count = target.c[aggregate.count_column]
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=keys,
                set_={aggregate.count_column: count + statement.excluded[aggregate.count_column]},
            )
        )


def _as_date(value: Any) -> dt.date:
    """A day as the database returns it (SQLite's date() gives text)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
