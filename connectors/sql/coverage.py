"""The coverage survey of a SQL database: tables and columns holding e-mail-like or phone-like
values that the mapping does not name as identities (so discovery never searches them).

Every text column of every table in the mapping's schema is sampled: at most ``sample_rows``
non-empty values, read and counted here, never kept or returned. A column of a mapped table
counts as covered when it is one of the table's ``identities`` (or their ``lookup_column``) or
``expands_identity``; a table the mapping does not list is covered by nothing. Works on any
database SQLAlchemy reflects (tested on SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.base import Finding
from connectors.sampling import Tally
from connectors.sql.client import SqlClient
from connectors.sql.mapping import SqlMapping, Table

SAMPLE_ROWS = 200
# Types whose values may be text: declared text types, and SQLite's columns without a type.
_TEXTUAL = (sa.types.String, sa.types.NullType)


def covered_columns(table: Table) -> set[str]:
    """The columns of a mapped table discovery searches by."""
    identities = [*table.identities, *table.expands_identity]
    return {i.column for i in identities} | {i.lookup_column for i in identities if i.lookup_column}


class SqlSurvey:
    def __init__(
        self,
        name: str,
        client: SqlClient,
        mapping: SqlMapping,
        *,
        phone_region: str = "NO",
        sample_rows: int = SAMPLE_ROWS,
    ) -> None:
        self.name = name
        self.client = client
        self.mapping = mapping
        self.phone_region = phone_region
        self.sample_rows = sample_rows

    def findings(self) -> list[Finding]:
        schema = self.mapping.db_schema
        found: list[Finding] = []
        with self.client.reachable(), self.client.connect() as conn:
            inspector = sa.inspect(conn)
            for table in sorted(inspector.get_table_names(schema=schema)):
                mapped = self.mapping.tables.get(table)
                skip = covered_columns(mapped) if mapped else set()
                tallies = {
                    column["name"]: self._sample(conn, schema, table, column["name"])
                    for column in inspector.get_columns(table, schema=schema)
                    if isinstance(column["type"], _TEXTUAL) and column["name"] not in skip
                }
                personal = {c: t for c, t in tallies.items() if t.personal}
                if not personal:
                    continue
                if mapped is None:
                    keys = inspector.get_pk_constraint(table, schema=schema)
                    primary = list(keys.get("constrained_columns") or [])
                    found.append(self._table_finding(table, primary, personal))
                else:
                    found += [self._column_finding(table, c, t) for c, t in personal.items()]
        return found

    def _sample(self, conn: Connection, schema: str | None, table: str, column: str) -> Tally:
        col: sa.ColumnClause[Any] = sa.column(column)
        query = (
            sa.select(col)
            .select_from(sa.table(table, col, schema=schema))
            .where(col.is_not(None))
            .limit(self.sample_rows)
        )
        return Tally.of(conn.execute(query).scalars(), self.phone_region)

    def _column_finding(self, table: str, column: str, tally: Tally) -> Finding:
        return Finding(
            source=self.name,
            what="column",
            place=f"{table}.{column}",
            evidence=f"{tally.describe()}; the mapping does not name this column as an identity",
            snippet=(
                f"tables:\n  {table}:\n    identities:\n"
                f"      - {{column: {column}, kind: {tally.kind()}}}"
            ),
        )

    def _table_finding(self, table: str, primary: list[str], personal: dict[str, Tally]) -> Finding:
        primary = primary or ["<primary key column>"]
        identities = "".join(
            f"      - {{column: {c}, kind: {t.kind()}}}\n" for c, t in sorted(personal.items())
        )
        evidence = "; ".join(f"{c}: {t.describe()}" for c, t in sorted(personal.items()))
        return Finding(
            source=self.name,
            what="table",
            place=table,
            evidence=f"not in the mapping; {evidence}",
            snippet=(
                f"tables:\n  {table}:\n    primary_key: [{', '.join(primary)}]\n"
                f"    identities:\n{identities}"
            ).rstrip(),
        )
