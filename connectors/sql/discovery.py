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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.sql.client import SqlClient
from connectors.sql.mapping import Direction, SqlMapping
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
        with self.client.reachable(), self.client.connect() as conn:
            found = self._find_rows(conn, subject.identifiers)
            shared = self._find_shared(conn, found)
        rule = self.context.third_parties(subject)
        for table, rows in found.items():
            for key, entry in rows.items():
                yield self._record(table, entry, shared[table].get(key, set()), rule)

    def _find_rows(
        self, conn: Connection, identifiers: Iterable[Identifier]
    ) -> dict[str, dict[Key, Found]]:
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

        # Seeds: exact matches on the identity columns.
        for table, spec in self.mapping.tables.items():
            for identity in spec.identities:
                wanted = {i.value: i for i in by_kind.get(identity.kind, [])}
                if not wanted:
                    continue
                column = self.tables[table].c[identity.column]
                lookup = identity.lookup_column
                candidates = self._candidates(identity.kind, wanted.values(), padded=not lookup)
                target = (
                    self.tables[table].c[lookup] if lookup else _comparable(column, identity.kind)
                )
                for chunk in chunks(candidates, self.batch_size):
                    query = sa.select(self.tables[table]).where(
                        target.in_(self._coerce(column, chunk))
                    )
                    for row in self.client.stream(conn, query, self.batch_size):
                        # The pre-filter is wider than the key (spellings, padding); this decides.
                        value = normalise_found(
                            identity.kind, row._mapping[identity.column], self.phone_region
                        )
                        if value in wanted:
                            visit(table, row, None, {str(wanted[value])})

        # Follow references until nothing new appears.
        while pending:
            edge = next(iter(pending))
            values = pending.pop(edge)
            dst = self.tables[edge.dst_table]
            for chunk in chunks(values, self.batch_size):
                query = sa.select(dst).where(dst.c[edge.dst_column].in_(chunk))
                for row in self.client.stream(conn, query, self.batch_size):
                    visit(edge.dst_table, row, edge.label, set())
        return found

    def _candidates(
        self, kind: str, wanted: Iterable[Identifier], *, padded: bool = True
    ) -> list[str]:
        """The exact values the pre-filter compares ``_comparable(column)`` (or the mapping's
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
        """For each found row, the links through which rows the subject does not own point."""
        shared: dict[str, dict[Key, set[str]]] = defaultdict(dict)
        for table, rows in found.items():
            for column, other, other_column in self.links.get(table, []):
                by_value: dict[Any, list[Key]] = defaultdict(list)
                for key, entry in rows.items():
                    if entry.row[column] is not None:
                        by_value[entry.row[column]].append(key)
                if not by_value:
                    continue
                owned: dict[Any, int] = defaultdict(int)
                for entry in found.get(other, {}).values():
                    owned[entry.row[other_column]] += 1
                target = self.tables[other].c[other_column]
                for chunk in chunks(list(by_value), self.batch_size):
                    query = (
                        sa.select(target, sa.func.count()).where(target.in_(chunk)).group_by(target)
                    )
                    for value, count in conn.execute(query):
                        self.client.stats.rows += 1
                        if count > owned.get(value, 0):
                            for key in by_value[value]:
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
        references and the identity columns (whose owner the links already say)."""
        spec = self.mapping.tables[table]
        skip = set(spec.primary_key) | {i.column for i in spec.identities}
        skip |= {r.column for r in spec.references}
        skip |= {
            r.target_column
            for t in self.mapping.tables.values()
            for r in t.references
            if r.target_table == table
        }
        return [c.name for c in self.tables[table].c if c.name not in skip]

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


def _comparable(column: sa.Column[Any], kind: str) -> sa.ColumnElement[Any]:
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
