"""Discovery of a subject's rows in one SQL database, in two passes; memory follows the
subject's footprint, never the size of the database:

1. rows: from the identity columns, follow the mapping's references to a fixed point (cycles are
   fine), reading rows in batches of keys through indexed ``IN (...)`` lookups;
2. sharing: for every link to a table of personal data, count the rows on the other side that the
   subject does not own; a row with such neighbours is shared (Art. 15(4)). So is a row whose
   text columns (not its keys, references or identity columns) name someone else: addresses and
   phone numbers written there are judged, and masked in the record, by the one rule of
   ``connectors.third_parties``.

Then the rows are handed out as Records.

Every query is parameterised; identifier text is never spliced into SQL.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from connectors.sql.client import SqlClient
from connectors.sql.mapping import Direction, Identity, SqlMapping
from connectors.sql.operations import Key, MappedTables, chunks
from connectors.third_parties import SourceContext, ThirdParties
from dsrflow.identifiers import (
    PHONE_SEPARATORS,
    Identifier,
    IdentifierKind,
    lowered_spellings,
    normalise_found,
    spellings,
)
from dsrflow.records import Record, portable_value, to_utc_iso
from dsrflow.request import Subject

# Whitespace a stored address may carry at either end that the exact pre-filter still finds:
# none, or one of these. An index on lower(column) can only be probed with exact values; longer
# runs need a normalised column (see README, "Matching").
EDGE_PADDING = ("", " ", "\t", "\u00a0", "\n", "\r\n")


# Column types whose values cannot name a person (an integer can: a phone number's digits).
_NAMES_NOBODY = (sa.Date, sa.DateTime, sa.Time, sa.Interval, sa.Boolean)


@dataclass(frozen=True)
class Edge:
    """Discovery may go from ``src_table.src_column`` values to rows of ``dst_table.dst_column``."""

    src_table: str
    src_column: str
    dst_table: str
    dst_column: str

    @property
    def label(self) -> str:
        return f"{self.src_table}.{self.src_column} -> {self.dst_table}.{self.dst_column}"


@dataclass
class Found:
    """One row of the subject: its values, how it was reached, which identifiers matched."""

    row: dict[str, Any]
    reached_via: str | None
    matched: set[str] = field(default_factory=set)


class Discovery:
    """Finds a subject's rows, as the mapping describes the database."""

    def __init__(
        self,
        source: str,
        client: SqlClient,
        tables: MappedTables,
        *,
        batch_size: int,
        timezone: zoneinfo.ZoneInfo,
        context: SourceContext,
        lower_folds_unicode: bool,
    ) -> None:
        self.source = source
        self.client = client
        self.mapping: SqlMapping = tables.mapping
        self.tables = tables
        self.batch_size = batch_size
        self.tz = timezone
        self.context = context
        self.phone_region = context.phone_region
        self.lower_folds_unicode = lower_folds_unicode
        self.edges = self._edges()
        self.links = self._link_columns()
        self.reach = self._reach()
        self.postgres = client.dialect == "postgresql"
        # Built once: the expression of each identity, and each statement shape (its values
        # travel as parameters), so that a request does not rebuild the same SQL.
        self._targets: dict[tuple[str, int], sa.ColumnElement[Any]] = {}
        self._statements: dict[tuple[Any, ...], Any] = {}
        self.text_columns = {name: self._text_columns(name) for name in self.mapping.tables}

    def _edges(self) -> dict[str, list[Edge]]:
        """Outgoing discovery edges per table, from the references and their directions."""
        edges: dict[str, list[Edge]] = defaultdict(list)
        for name, spec in self.mapping.tables.items():
            for ref in spec.references:
                if ref.direction in (Direction.TO, Direction.BOTH):
                    edges[name].append(Edge(name, ref.column, ref.target_table, ref.target_column))
                if ref.direction in (Direction.FROM, Direction.BOTH):
                    edges[ref.target_table].append(
                        Edge(ref.target_table, ref.target_column, name, ref.column)
                    )
        return edges

    def _reach(self) -> dict[str, set[str]]:
        """The tables discovery can get to from each table, following the edges."""
        reach: dict[str, set[str]] = {}
        for start in self.mapping.tables:
            seen: set[str] = set()
            todo = [start]
            while todo:
                for edge in self.edges.get(todo.pop(), []):
                    if edge.dst_table not in seen:
                        seen.add(edge.dst_table)
                        todo.append(edge.dst_table)
            reach[start] = seen
        return reach

    def _link_columns(self) -> dict[str, list[tuple[str, str, str]]]:
        """Every link of a table to a personal table, either way: (column, other, other_col)."""
        links: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for name, spec in self.mapping.tables.items():
            for ref in spec.references:
                target = self.mapping.tables[ref.target_table]
                if target.is_personal():
                    links[name].append((ref.column, ref.target_table, ref.target_column))
                if spec.is_personal():
                    links[ref.target_table].append((ref.target_column, name, ref.column))
        return links

    def records(self, subject: Subject) -> Iterator[Record]:
        with self.client.reachable(), self.client.reading() as conn:
            found = self._find_rows(conn, subject.identifiers)
            shared = self._find_shared(conn, found)
        rule = self.context.third_parties(subject)
        for table, rows in found.items():
            for key, entry in rows.items():
                yield self._record(table, entry, shared[table].get(key, set()), rule)

    def _find_rows(
        self, conn: Connection, identifiers: Iterable[Identifier]
    ) -> dict[str, dict[Key, Found]]:
        """Seeds from the identity columns, then the references, one step of the graph at a
        time: each step reads each table once (every column and value it is reached by, in
        one ``OR`` of ``IN`` lists), not once per reference or per value."""
        found: dict[str, dict[Key, Found]] = defaultdict(dict)
        looked_up: dict[tuple[str, str], set[Any]] = defaultdict(set)
        pending: dict[Edge, list[Any]] = defaultdict(list)
        by_kind: dict[str, list[Identifier]] = defaultdict(list)
        for identifier in identifiers:
            by_kind[identifier.kind].append(identifier)

        def visit(table: str, row: sa.Row[Any], via: str | None, matched: set[str]) -> None:
            key = self.tables.key_of(table, row)
            entry = found[table].get(key)
            if entry is None:
                entry = found[table][key] = Found(row=dict(row._mapping), reached_via=via)
                for edge in self.edges.get(table, []):
                    value = row._mapping[edge.src_column]
                    seen = looked_up[(edge.dst_table, edge.dst_column)]
                    if value is not None and value not in seen:
                        seen.add(value)
                        pending[edge].append(value)
            entry.matched |= matched

        # Seeds: exact matches on the identity columns, all of a table's in one statement.
        for table, spec in self.mapping.tables.items():
            lookups: list[tuple[Any, Sequence[Any]]] = []
            confirm: list[tuple[str, str, dict[str, Identifier]]] = []
            for identity in spec.identities:
                wanted = {i.value: i for i in by_kind.get(identity.kind, [])}
                if not wanted:
                    continue
                column = self.tables[table].c[identity.column]
                candidates = self._candidates(
                    identity.kind, wanted.values(), padded=not identity.lookup_column
                )
                values = self._coerce(column, candidates)
                if values:
                    lookups.append((self.identity_target(table, identity), values))
                    confirm.append((identity.kind, identity.column, wanted))
            for query, params in self._lookups(self.tables[table], lookups):
                for row in self.client.rows(conn, query, params):
                    # The pre-filter is wider than the key (spellings, padding); this decides.
                    matched = set()
                    for kind, name, by_key in confirm:
                        key = normalise_found(kind, row._mapping[name], self.phone_region)
                        if key in by_key:
                            matched.add(str(by_key[key]))
                    if matched:
                        visit(table, row, None, matched)

        # Follow references until nothing new appears, one step at a time.
        while pending:
            # A table another waiting table leads to waits for it, so that it is read once
            # with the values of both (orders lead to payment cards and addresses too).
            waiting = {edge.dst_table for edge in pending}
            ready = {
                t
                for t in waiting
                if not any(t in self.reach[u] and u not in self.reach[t] for u in waiting)
            }
            step = {edge: pending.pop(edge) for edge in list(pending) if edge.dst_table in ready}
            by_table: dict[str, list[Edge]] = defaultdict(list)
            for edge in step:
                by_table[edge.dst_table].append(edge)
            for table, edges in by_table.items():
                dst = self.tables[table]
                lookups = [(dst.c[edge.dst_column], step[edge]) for edge in edges]
                wanted_by = [(edge, set(step[edge])) for edge in edges]
                for query, params in self._lookups(dst, lookups):
                    for row in self.client.rows(conn, query, params):
                        via = next(
                            (
                                edge.label
                                for edge, values in wanted_by
                                if row._mapping[edge.dst_column] in values
                            ),
                            edges[0].label,  # the database compared otherwise (a collation)
                        )
                        visit(table, row, via, set())
        return found

    def identity_target(self, table: str, identity: Identity) -> sa.ColumnElement[Any]:
        """What the pre-filter compares for ``identity``: its ``lookup_column``, the column
        itself when the mapping declares it ``normalised`` (an ordinary index serves it), else
        the column as its key compares it (lower-cased; phone without separators)."""
        memo = (table, id(identity))
        if memo not in self._targets:
            columns = self.tables[table].c
            target: sa.ColumnElement[Any]
            if identity.lookup_column:
                target = columns[identity.lookup_column]
            elif identity.normalised:
                target = columns[identity.column]
            else:
                target = comparable(columns[identity.column], identity.kind)
            self._targets[memo] = target
        return self._targets[memo]

    def _lookups(
        self, table: sa.Table, lookups: Sequence[tuple[Any, Sequence[Any]]]
    ) -> Iterator[tuple[sa.Select[Any], dict[str, Any]]]:
        """``SELECT * FROM table WHERE a IN (...) OR b IN (...)`` (``member``) with its
        parameters, as few as batch_size allows (at most batch_size values per statement)."""
        pieces = [
            (i, chunk)
            for i, (_, values) in enumerate(lookups)
            for chunk in chunks(values, self.batch_size)
        ]
        for batch in _packed(pieces, self.batch_size):
            targets = [lookups[i][0] for i, _ in batch]
            shape = ("rows", table.name, *(id(t) for t in targets))
            if shape not in self._statements:
                members = [self.member(t, f"v{j}") for j, t in enumerate(targets)]
                self._statements[shape] = sa.select(table).where(sa.or_(*members))
            yield self._statements[shape], {f"v{j}": list(c) for j, (_, c) in enumerate(batch)}

    def member(self, target: sa.ColumnElement[Any], name: str) -> Any:
        """``target IN (:name)``, the list expanded; on PostgreSQL ``target = ANY(:name)``,
        one array parameter: the statement's text, and so psycopg's prepared plan, stays the
        same whatever the number of values, and an index on ``target`` serves it alike."""
        if not self.postgres:
            return target.in_(sa.bindparam(name, expanding=True))
        type_ = sa.Text() if isinstance(target.type, sa.types.NullType) else target.type
        return target == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(type_)))

    def _candidates(
        self, kind: str, wanted: Iterable[Identifier], *, padded: bool = True
    ) -> list[str]:
        """The exact values the pre-filter compares ``comparable(column)`` (or the mapping's
        ``lookup_column``, already trimmed: ``padded=False``) with: for an address every text
        ``lower()`` gives for a stored spelling of it (see ``lowered_spellings``), bare or
        with EDGE_PADDING; for a phone its spellings."""
        if kind != IdentifierKind.EMAIL:
            return list(dict.fromkeys(s for i in wanted for s in spellings(i)))
        found: dict[str, None] = {}
        for identifier in wanted:
            for spelling in lowered_spellings(
                identifier.value, lower_folds_unicode=self.lower_folds_unicode
            ):
                for before in EDGE_PADDING if padded else ("",):
                    for after in EDGE_PADDING if padded else ("",):
                        found.setdefault(f"{before}{spelling}{after}")
        return list(found)

    def _find_shared(
        self, conn: Connection, found: dict[str, dict[Key, Found]]
    ) -> dict[str, dict[Key, set[str]]]:
        """For each found row, the links through which rows the subject does not own point.

        Every link's counts come from one statement: a ``UNION ALL`` of one grouped count per
        linked column (``SELECT n, col, count(*) ... WHERE col IN (...) GROUP BY col``), each
        served by the index on that column."""
        # (other table, other column) -> value -> (table, key) of the found rows holding it
        holders: dict[tuple[str, str], dict[Any, list[tuple[str, Key]]]] = {}
        for table, rows in found.items():
            for column, other, other_column in self.links.get(table, []):
                by_value = holders.setdefault((other, other_column), defaultdict(list))
                for key, entry in rows.items():
                    if entry.row[column] is not None:
                        by_value[entry.row[column]].append((table, key))
        links = [(link, by_value) for link, by_value in holders.items() if by_value]
        shared: dict[str, dict[Key, set[str]]] = defaultdict(dict)
        if not links:
            return shared
        owned: dict[tuple[str, str], dict[Any, int]] = {}
        for other, other_column in holders:
            counts = owned[(other, other_column)] = defaultdict(int)
            for entry in found.get(other, {}).values():
                counts[entry.row[other_column]] += 1
        targets = [self.tables[other].c[other_column] for (other, other_column), _ in links]
        pieces = [
            (n, chunk)
            for n, (_, by_value) in enumerate(links)
            for chunk in chunks(list(by_value), self.batch_size)
        ]
        types, positions = _value_columns(targets)
        for batch in _packed(pieces, self.batch_size):
            shape = ("counts", *(id(t) for t in targets), *(n for n, _ in batch))
            if shape not in self._statements:
                self._statements[shape] = _counts(targets, types, positions, batch, self.member)
            params = {f"v{j}": list(values) for j, (_, values) in enumerate(batch)}
            for n, *values, count in conn.execute(self._statements[shape], params):
                self.client.stats.rows += 1
                (other, other_column), by_value = links[n]
                value = values[positions[n]]
                if count > owned[(other, other_column)].get(value, 0):
                    for table, key in by_value[value]:
                        shared[table].setdefault(key, set()).add(f"{other}.{other_column}")
        return shared

    def _record(
        self, table: str, entry: Found, shared_with: set[str], rule: ThirdParties
    ) -> Record:
        spec = self.mapping.tables[table]
        data = entry.row
        fields = {c: portable_value(v, self.tz) for c, v in data.items()}
        for column in self.text_columns[table]:
            value = fields.get(column)
            if isinstance(value, str) and rule.others_in(value):
                fields[column] = rule.mask(value)
                shared_with = shared_with | {f"{table}.{column}"}
        expands = []
        for identity in spec.expands_identity:
            value = normalise_found(identity.kind, data.get(identity.column), self.phone_region)
            if value:
                expands.append(f"{identity.kind}:{value}")
        return Record(
            source=self.source,
            location=table,
            native_id={c: portable_value(data[c], self.tz) for c in spec.primary_key},
            categories={c: spec.category_of(c) for c in data},
            fields=fields,
            matched=tuple(sorted(entry.matched)),
            reached_via=entry.reached_via,
            timestamps={c: to_utc_iso(v, self.tz) for c, v in data.items() if _is_temporal(v)},
            shared=bool(shared_with),
            shared_with=tuple(sorted(shared_with)),
            expands=tuple(expands),
        )

    def _text_columns(self, table: str) -> list[str]:
        """The columns read as text that may name other people: all but the keys, the
        references, the identity columns (whose owner the links already say) and the columns
        whose type holds no text (times, dates, booleans: their ISO text is no phone number)."""
        spec = self.mapping.tables[table]
        skip = set(spec.primary_key) | {i.column for i in spec.identities}
        skip |= {r.column for r in spec.references}
        skip |= {
            r.target_column
            for t in self.mapping.tables.values()
            for r in t.references
            if r.target_table == table
        }
        return [
            c.name
            for c in self.tables[table].c
            if c.name not in skip and not isinstance(c.type, _NAMES_NOBODY)
        ]

    @staticmethod
    def _coerce(column: sa.Column[Any], values: Sequence[str]) -> list[Any]:
        """Identifier text compared with a non-text column (e.g. an integer account id)."""
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            return list(values)
        if python_type is str:
            return list(values)
        coerced = []
        for value in values:
            try:
                coerced.append(python_type(value))
            except (TypeError, ValueError):
                continue  # cannot equal any value of this column
        return coerced


def _packed(
    pieces: Sequence[tuple[int, Sequence[Any]]], limit: int
) -> Iterator[list[tuple[int, Sequence[Any]]]]:
    """The pieces (each at most ``limit`` values) in groups of at most ``limit`` values."""
    batch: list[tuple[int, Sequence[Any]]] = []
    size = 0
    for piece in pieces:
        if batch and size + len(piece[1]) > limit:
            yield batch
            batch, size = [], 0
        batch.append(piece)
        size += len(piece[1])
    if batch:
        yield batch


def _value_columns(
    targets: Sequence[sa.Column[Any]],
) -> tuple[list[sa.types.TypeEngine[Any]], list[int]]:
    """The value columns of ``_counts``' rows, one per type of the linked columns, and the
    position of each linked column's value among them."""
    types: dict[str, sa.types.TypeEngine[Any]] = {}
    names = [repr(target.type) for target in targets]
    for name, target in zip(names, targets, strict=True):
        types.setdefault(name, target.type)
    order = list(types)
    return list(types.values()), [order.index(name) for name in names]


def _counts(
    targets: Sequence[sa.Column[Any]],
    types: Sequence[sa.types.TypeEngine[Any]],
    positions: Sequence[int],
    batch: Sequence[tuple[int, Sequence[Any]]],
    member: Callable[[sa.ColumnElement[Any], str], Any],
) -> sa.CompoundSelect[Any] | sa.Select[Any]:
    """One statement counting, per linked column ``n`` of ``batch``, the rows per value:
    rows ``(n, v1, ..., vk, count)`` with one value column per type (``_value_columns``); the
    branch's value sits in its type's position, the others hold a NULL of their type, so every
    database unites the branches without casting a value."""
    selects = []
    for j, (n, _) in enumerate(batch):
        target = targets[n]
        columns = [
            target if i == positions[n] else sa.cast(sa.null(), type_)
            for i, type_ in enumerate(types)
        ]
        selects.append(
            sa.select(sa.literal_column(str(n)), *columns, sa.func.count())
            .where(member(target, f"v{j}"))
            .group_by(target)
        )
    return selects[0] if len(selects) == 1 else sa.union_all(*selects)


def comparable(column: sa.Column[Any], kind: str) -> sa.ColumnElement[Any]:
    """The column as the pre-filter compares it: lower-cased e-mail (what an index on
    lower(column) holds), phone without separators.

    Both stay exact (no LIKE): the confirmation in Python with the comparison key decides.
    """
    if kind == IdentifierKind.EMAIL:
        return sa.func.lower(column)
    if kind == IdentifierKind.PHONE:
        expression: sa.ColumnElement[Any] = column
        for separator in PHONE_SEPARATORS:
            expression = sa.func.replace(expression, separator, "")
        return expression
    return column


def _is_temporal(value: object) -> bool:
    return isinstance(value, dt.date | dt.datetime)
