"""What discovery, the row changes and the retention sweep share: the mapped tables as the
database holds them, and rows addressed by their primary key."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.sql.client import SqlClient
from connectors.sql.mapping import SqlMapping
from dsrflow.mapping import MappingError
from dsrflow.records import Record

Key = tuple[Any, ...]


@dataclass(frozen=True)
class MappedTables:
    """The mapping's tables, reflected from the database and checked against it."""

    mapping: SqlMapping
    tables: dict[str, sa.Table]

    @classmethod
    def bind(cls, client: SqlClient, mapping: SqlMapping, mapping_path: Path) -> MappedTables:
        """Reflect the mapped tables; every table and column the mapping names must exist."""
        tables = client.reflect(mapping.db_schema, mapping.tables)
        problems = _missing_names(mapping, tables)
        if problems:
            raise MappingError(mapping_path, problems)
        return cls(mapping, tables)

    def __getitem__(self, name: str) -> sa.Table:
        return self.tables[name]

    def primary_key(self, name: str) -> list[sa.Column[Any]]:
        return [self.tables[name].c[c] for c in self.mapping.tables[name].primary_key]

    def key_of(self, name: str, row: sa.Row[Any]) -> Key:
        return tuple(row._mapping[c] for c in self.mapping.tables[name].primary_key)

    def native_key(self, name: str, native_id: Mapping[str, Any]) -> Key:
        """A record's portable key (as plans and records carry it) as the database holds it."""
        return tuple(native(c, native_id[c.name]) for c in self.primary_key(name))

    def where_key(self, name: str, native_id: Mapping[str, Any], record_id: str) -> Any:
        """The condition that selects exactly the row of ``native_id``."""
        if set(native_id) != set(self.mapping.tables[name].primary_key):
            raise ValueError(f"{record_id}: key does not match the primary key")
        columns = self.primary_key(name)
        return sa.and_(
            *[c == v for c, v in zip(columns, self.native_key(name, native_id), strict=True)]
        )

    def keys_of(self, records: Iterable[Record]) -> dict[str, set[Key]]:
        """Primary keys (as the database holds them) of discovered records, per table."""
        keys: dict[str, set[Key]] = defaultdict(set)
        for record in records:
            keys[record.location].add(self.native_key(record.location, record.native_id))
        return keys


def native(column: sa.Column[Any], value: Any) -> Any:
    """The key value as the database holds it (plans and records carry portable JSON values)."""
    if isinstance(value, str) and isinstance(column.type, sa.DateTime):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    if isinstance(value, str) and isinstance(column.type, sa.Date):
        return dt.date.fromisoformat(value)
    return value


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _missing_names(mapping: SqlMapping, tables: dict[str, sa.Table]) -> list[str]:
    """What the mapping names that the database does not hold, where the mapping names it."""
    problems = [
        f"tables.{t}: no such table in the database" for t in mapping.tables if t not in tables
    ]
    for name, spec in mapping.tables.items():
        if name not in tables:
            continue
        known = set(tables[name].c.keys())
        used = [(f"primary_key.{i}", c) for i, c in enumerate(spec.primary_key)]
        used += [(f"identities.{i}.column", x.column) for i, x in enumerate(spec.identities)]
        used += [
            (f"identities.{i}.lookup_column", x.lookup_column)
            for i, x in enumerate(spec.identities)
            if x.lookup_column
        ]
        used += [
            (f"expands_identity.{i}.column", x.column) for i, x in enumerate(spec.expands_identity)
        ]
        used += [(f"references.{i}.column", r.column) for i, r in enumerate(spec.references)]
        used += [(f"columns.{c}", c) for c in spec.columns]
        problems += [
            f"tables.{name}.{where}: no column {column!r} in table {name}"
            for where, column in used
            if column not in known
        ]
        for i, ref in enumerate(spec.references):
            target = tables.get(ref.target_table)
            if target is not None and ref.target_column not in target.c:
                problems.append(
                    f"tables.{name}.references.{i}.target: no column "
                    f"{ref.target_column!r} in table {ref.target_table}"
                )
    return problems
