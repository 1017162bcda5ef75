"""`dsr mapping check --db URL`: can the database serve every lookup of the SQL connector
through an index?

The connector reads a subject's rows by its identity columns (seeds), by the columns the
references lead to (traversal) and counts the rows behind each link (sharing). Each of those
lookups is asked of the database's own planner, on the column or expression the connector
compares, as ``IN`` with one placeholder value (PostgreSQL plans the connector's
``= ANY(array)`` on the same index paths). PostgreSQL is asked with sequential scans switched
off for the question, so that a small table's cheaper scan does not hide a missing index: a
scan it still plans, or an index it reads whole, means no index can serve the lookup. SQLite
is asked by ``EXPLAIN QUERY PLAN`` (``SEARCH ...`` or ``SCAN ...``). A lookup no index serves
is reported with the ``CREATE INDEX`` statement that would serve it, e.g.
``CREATE INDEX ix_customer_email_lower ON customer (lower(email))`` for an identity whose
column is not declared ``normalised``.

An identity declared ``normalised`` is also checked against the rows: a stored value that
differs from its pre-filter form (capitals, phone separators) would be missed by the plain
``IN`` the declaration allows, so it is reported too. That check reads the whole column once.

Only placeholder values reach the database; no identifier is involved.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from sqlalchemy.engine import Connection

from connectors.sql.client import SqlClient
from connectors.sql.discovery import Discovery, comparable
from connectors.sql.mapping import SqlMapping
from connectors.sql.operations import MappedTables
from connectors.third_parties import SourceContext
from dsrflow.errors import DsrflowError
from dsrflow.mapping.common import BaseMapping

SUPPORTED = ("postgresql", "sqlite")
# Index names PostgreSQL keeps whole (it truncates longer ones to 63 bytes).
MAX_NAME = 63


class IndexCheckError(DsrflowError):
    """The database cannot be checked (bad URL, unsupported dialect)."""


@dataclass(frozen=True)
class Lookup:
    """One lookup the connector makes: ``table`` filtered by ``expression IN (...)``."""

    table: str
    role: str  # "identity email", "reference customer_id"
    column: str
    expression: sa.ColumnElement[Any]
    suffix: str  # of the proposed index's name: "" for a plain column, "lower", "digits"


@dataclass
class IndexReport:
    """What the check found: lookups without a usable index, false declarations, skips."""

    checked: int = 0
    missing: list[tuple[Lookup, str]] = field(default_factory=list)  # with its CREATE INDEX
    false_declarations: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.false_declarations


def check_indexes(mapping: SqlMapping, mapping_path: Path, url: str) -> IndexReport:
    """Ask the database at ``url`` whether an index serves each lookup of ``mapping``."""
    try:
        client = SqlClient("mapping check", url)
    except sa.exc.ArgumentError as exc:
        raise IndexCheckError(f"--db: not a database URL: {exc}") from None
    try:
        if client.dialect not in SUPPORTED:
            raise IndexCheckError(
                f"--db: the index check knows the planners of {', '.join(SUPPORTED)}, "
                f"not {client.dialect}"
            )
        tables = MappedTables.bind(client, mapping, mapping_path)
        discovery = Discovery(
            "mapping check",
            client,
            tables,
            batch_size=1,
            timezone=zoneinfo.ZoneInfo("UTC"),
            context=SourceContext(),
            lower_folds_unicode=client.lower_folds_unicode(),
        )
        report = IndexReport()
        with client.reachable(), client.connect() as conn:
            for lookup in lookups(discovery):
                # The column's type: lower(column) has none SQLAlchemy knows.
                sample = _placeholder(tables[lookup.table].c[lookup.column])
                if sample is None:
                    report.not_checked.append(
                        f"{lookup.table}.{lookup.column}: no placeholder for its type"
                    )
                    continue
                query = sa.select(tables[lookup.table]).where(lookup.expression.in_([sample]))
                report.checked += 1
                if not _index_serves(conn, query):
                    report.missing.append((lookup, create_index(client.engine, tables, lookup)))
            report.false_declarations = list(_false_declarations(conn, discovery))
        return report
    finally:
        client.close()


def lookups(discovery: Discovery) -> Iterator[Lookup]:
    """Every lookup discovery makes, each (table, expression) once, in mapping order."""
    seen: set[tuple[str, str]] = set()
    mapping = discovery.mapping
    for table, spec in mapping.tables.items():
        for identity in spec.identities:
            expression = discovery.identity_target(table, identity)
            if identity.lookup_column or identity.normalised:
                suffix = ""
            else:
                suffix = {"email": "lower", "phone": "digits"}.get(identity.kind, "")
            column = identity.lookup_column or identity.column
            if (table, f"{column}:{suffix}") not in seen:
                seen.add((table, f"{column}:{suffix}"))
                yield Lookup(table, f"identity {identity.kind}", column, expression, suffix)
    references = [(e.dst_table, e.dst_column) for es in discovery.edges.values() for e in es]
    references += [(other, column) for ls in discovery.links.values() for _, other, column in ls]
    for table, column in references:
        if (table, f"{column}:") not in seen:
            seen.add((table, f"{column}:"))
            yield Lookup(table, "reference", column, discovery.tables[table].c[column], "")


def create_index(engine: sa.Engine, tables: MappedTables, lookup: Lookup) -> str:
    """The ``CREATE INDEX`` statement that serves ``lookup``, in the database's dialect."""
    name = "_".join(p for p in ("ix", lookup.table, lookup.column, lookup.suffix) if p)
    # A copy of the table: the Index must not stay attached to the reflected one.
    table = tables[lookup.table].to_metadata(sa.MetaData())
    expression: sa.ColumnElement[Any]
    if lookup.suffix:
        kind = "email" if lookup.suffix == "lower" else "phone"
        expression = comparable(table.c[lookup.column], kind)
    else:
        expression = table.c[lookup.column]
    index = sa.Index(name[:MAX_NAME], expression)  # bound to the table of its expression
    return str(sa.schema.CreateIndex(index).compile(dialect=engine.dialect)).strip() + ";"


def _placeholder(expression: sa.ColumnElement[Any]) -> Any:
    """A value of the expression's type to ask the planner with (never a real identifier)."""
    try:
        python_type = expression.type.python_type
    except NotImplementedError:
        return None
    return {str: "placeholder@example.invalid", int: 0}.get(python_type)


def _index_serves(conn: Connection, query: sa.Select[Any]) -> bool:
    """Whether the database's planner reads ``query`` through an index, not a scan."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        details = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        return any(d.startswith("SEARCH") for d in details) and not any(
            d.startswith("SCAN") for d in details
        )
    # Only for this question (SET LOCAL ends with the transaction): a scan the planner still
    # chooses has no index to use.
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    (plan,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}").scalar_one()
    conn.rollback()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    # Without sequential scans the planner may still read a whole index (a filter, no
    # condition on it): only an index probed by the lookup's condition serves it.
    scans = [n for n in _nodes(plan["Plan"]) if n.get("Node Type") in _SCANS]
    return bool(scans) and all("Index Cond" in n for n in scans)


_SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan"}


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _false_declarations(conn: Connection, discovery: Discovery) -> Iterator[str]:
    """Identities declared ``normalised`` whose column holds a value that is not."""
    for table, spec in discovery.mapping.tables.items():
        for i, identity in enumerate(spec.identities):
            if not identity.normalised:
                continue
            column = discovery.tables[table].c[identity.column]
            query: sa.Select[Any] = (
                sa.select(sa.literal_column("1"))
                .where(column != comparable(column, identity.kind))
                .limit(1)
            )
            if conn.execute(query).first() is not None:
                form = "lower-case" if identity.kind == "email" else "without separators"
                yield (
                    f"tables.{table}.identities.{i}: declared normalised, but {identity.column} "
                    f"holds a value that is not {form}; discovery would miss it: drop "
                    "`normalised` (and index the expression) or normalise the column"
                )


def print_report(report: IndexReport, mapping_path: Path, out: Console, err: Console) -> bool:
    """Print the findings; True when every lookup has an index and every declaration holds."""
    for lookup, statement in report.missing:
        err.print(
            f"[bold red]no index:[/] {mapping_path}: {lookup.table}.{lookup.column} "
            f"({lookup.role}) is looked up without an index; create one:\n  {statement}",
            highlight=False,
        )
    for problem in report.false_declarations:
        err.print(f"[bold red]not normalised:[/] {mapping_path}: {problem}", highlight=False)
    for note in report.not_checked:
        err.print(f"[yellow]not checked:[/] {mapping_path}: {note}", highlight=False)
    if report.ok:
        out.print(
            f"[green]indexed[/] {mapping_path}: all {report.checked} lookups have a usable index",
            highlight=False,
        )
    return report.ok


def check_mappings(
    mappings: list[tuple[Path, BaseMapping]], url: str, out: Console, err: Console
) -> bool:
    """``dsr mapping check --db``: every SQL mapping of ``mappings`` against ``url``."""
    sql = [(path, mapping) for path, mapping in mappings if isinstance(mapping, SqlMapping)]
    if not sql:
        raise IndexCheckError("--db: none of the mappings is of kind sql")
    results = [print_report(check_indexes(m, path, url), path, out, err) for path, m in sql]
    return all(results)
