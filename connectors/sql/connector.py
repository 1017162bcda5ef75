"""On-prem SQL databases through SQLAlchemy Core: any database URL, driven by a mapping.

Discovery works in two passes; memory follows the subject's footprint, never the size of the
database:

1. rows: from the identity columns, follow the mapping's references to a fixed point (cycles are
   fine), reading rows in batches of keys through indexed ``IN (...)`` lookups;
2. sharing: for every link to a table of personal data, count the rows on the other side that the
   subject does not own; a row with such neighbours is shared (Art. 15(4)).

Then the rows are handed out as Records.

Every query is parameterised; identifier text is never spliced into SQL.
"""

from __future__ import annotations

import datetime as dt
import warnings
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.base import Capability, Closing, SourceUnavailable, SweepResult
from connectors.masking import HMAC_STRATEGY, MaskingKey, mask
from connectors.sql.mapping import Direction, RowErasure, SqlMapping
from connectors.sql.retention import DEFAULT_BATCH_ROWS, SqlRetention
from dsrflow.identifiers import (
    PHONE_SEPARATORS,
    Identifier,
    IdentifierKind,
    lowered_spellings,
    normalise_found,
    spellings,
)
from dsrflow.mapping import MappingError
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
from dsrflow.records import Record, portable_value, to_utc_iso
from dsrflow.request import RequestType, Subject

Key = tuple[Any, ...]

# Whitespace a stored address may carry at either end that the exact pre-filter still finds:
# none, or one of these. An index on lower(column) can only be probed with exact values; longer
# runs need a normalised column (see README, "Matching").
EDGE_PADDING = ("", " ", "\t", "\u00a0", "\n", "\r\n")
# Whether the database's lower() folds non-ASCII letters: asked once, with this text.
_LOWER_PROBE = ("\u00c5\u03a3", "\u00e5\u03c3")


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
class QueryStats:
    queries: int = 0
    rows: int = 0


@dataclass
class _Found:
    """One row of the subject: its values, how it was reached, which identifiers matched."""

    row: dict[str, Any]
    reached_via: str | None
    matched: set[str] = field(default_factory=set)


class SqlConnector(Closing):
    """Finds a subject's rows in one SQL database, as its mapping describes it."""

    capabilities = frozenset(
        {
            Capability.DISCOVER,
            Capability.ERASE,
            Capability.RECTIFY,
            Capability.RESTRICT,
            Capability.SWEEP,
        }
    )

    def __init__(
        self,
        name: str,
        mapping: SqlMapping,
        url: str,
        *,
        batch_size: int = 500,
        timezone: str = "UTC",
        phone_region: str = "NO",
        mapping_path: Path | None = None,
        masking_key: MaskingKey | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.masking_key = masking_key or MaskingKey()
        self.batch_size = batch_size
        self.phone_region = phone_region
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.stats = QueryStats()
        self.mapping_path = mapping_path or Path(f"(mapping of source {name!r})")
        _refuse_missing_sqlite_file(name, url)
        self.engine = sa.create_engine(url)
        self.lower_folds_unicode = False
        self.tables = self._bind_tables()
        # Counted from here on: the benchmark reports the queries of discovery, not reflection.
        sa.event.listen(self.engine, "before_cursor_execute", self._count_query)
        self.edges = self._edges()
        self.links = self._link_columns()

    # -- set-up -----------------------------------------------------------------------------

    def _count_query(self, *_: Any) -> None:
        self.stats.queries += 1

    def _bind_tables(self) -> dict[str, sa.Table]:
        """Reflect the mapped tables and check every name the mapping uses exists."""
        metadata = sa.MetaData(schema=self.mapping.db_schema)
        try:
            with self.engine.connect() as conn:
                present = set(sa.inspect(conn).get_table_names(schema=self.mapping.db_schema))
                missing = [t for t in self.mapping.tables if t not in present]
                self.lower_folds_unicode = _lower_folds_unicode(conn)
                with warnings.catch_warnings():
                    # Expression indexes (lower(email)) cannot be reflected; they are not needed.
                    warnings.filterwarnings("ignore", "Skipped unsupported reflection")
                    metadata.reflect(
                        conn, only=[t for t in self.mapping.tables if t in present], views=True
                    )
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(self.name, _first_line(exc.orig)) from exc
        problems = [f"tables.{t}: no such table in the database" for t in missing]
        tables = {
            name: metadata.tables[
                f"{self.mapping.db_schema}.{name}" if self.mapping.db_schema else name
            ]
            for name in self.mapping.tables
            if name not in missing
        }
        for name, spec in self.mapping.tables.items():
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
                (f"expands_identity.{i}.column", x.column)
                for i, x in enumerate(spec.expands_identity)
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
        if problems:
            raise MappingError(self.mapping_path, problems)
        return tables

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

    def close(self) -> None:
        self.engine.dispose()

    # -- preflight ----------------------------------------------------------------------------

    def preflight(self, right: RequestType) -> list[str]:
        """What would stop ``right`` here, beyond what opening checked (reachable, tables and
        columns): the masking key, and on PostgreSQL the table privileges the right uses."""
        problems = []
        hashed = [
            f"{table}.{column}"
            for table, spec in self.mapping.tables.items()
            for column, col in spec.columns.items()
            if col.erase is not None and col.erase.strategy.value == HMAC_STRATEGY
        ]
        if hashed and right in (RequestType.ERASURE, RequestType.CONSENT_WITHDRAWAL):
            missing = self.masking_key.problem()
            if missing:
                columns = ", ".join(hashed)
                problems.append(f"mapping uses hmac_sha256 masking ({columns}): {missing}")
        if self.engine.dialect.name == "postgresql":
            problems += self._privilege_problems(right)
        return problems

    def _privileges_for(self, right: RequestType) -> dict[str, set[str]]:
        """Table -> the privileges the right's reads and writes use there."""
        wanted: dict[str, set[str]] = {}
        for name, spec in self.mapping.tables.items():
            privileges = {"SELECT"}
            personal = spec.is_personal()
            if right in (RequestType.ERASURE, RequestType.CONSENT_WITHDRAWAL) and personal:
                privileges.add("UPDATE")  # redaction of shared rows, consent marks
                if spec.erasure == RowErasure.DELETE or right == RequestType.CONSENT_WITHDRAWAL:
                    privileges.add("DELETE")
            if right == RequestType.RECTIFICATION and personal:
                privileges.add("UPDATE")
            if right == RequestType.RESTRICTION and spec.restriction is not None:
                privileges.add("UPDATE")
            wanted[name] = privileges
        return wanted

    def _privilege_problems(self, right: RequestType) -> list[str]:
        preparer = self.engine.dialect.identifier_preparer
        query = sa.text("SELECT has_table_privilege(:table, :privilege)")
        problems = []
        try:
            with self.engine.connect() as conn:
                for name, privileges in self._privileges_for(right).items():
                    qualified = preparer.format_table(self.tables[name])
                    lacking = sorted(
                        p
                        for p in privileges
                        if not conn.execute(query, {"table": qualified, "privilege": p}).scalar()
                    )
                    if lacking:
                        problems.append(
                            f"the database user lacks {', '.join(lacking)} on table {name}, "
                            f"which {right.value} needs (GRANT it)"
                        )
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(self.name, _first_line(exc.orig)) from exc
        return problems

    # -- discovery --------------------------------------------------------------------------

    def discover(self, subject: Subject) -> Iterator[Record]:
        try:
            with self.engine.connect() as conn:
                found = self._find_rows(conn, subject.identifiers)
                shared = self._find_shared(conn, found)
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(self.name, _first_line(exc.orig)) from exc
        for table, rows in found.items():
            for key, entry in rows.items():
                yield self._record(table, entry, shared[table].get(key, set()))

    def _key_of(self, table: str, row: sa.Row[Any]) -> Key:
        return tuple(row._mapping[c] for c in self.mapping.tables[table].primary_key)

    def _find_rows(
        self, conn: Connection, identifiers: Iterable[Identifier]
    ) -> dict[str, dict[Key, _Found]]:
        found: dict[str, dict[Key, _Found]] = defaultdict(dict)
        looked_up: dict[tuple[str, str], set[Any]] = defaultdict(set)
        pending: dict[Edge, list[Any]] = defaultdict(list)
        by_kind: dict[str, list[Identifier]] = defaultdict(list)
        for identifier in identifiers:
            by_kind[identifier.kind].append(identifier)

        def visit(table: str, row: sa.Row[Any], via: str | None, matched: set[str]) -> None:
            key = self._key_of(table, row)
            entry = found[table].get(key)
            if entry is None:
                entry = found[table][key] = _Found(row=dict(row._mapping), reached_via=via)
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
                for chunk in _chunks(candidates, self.batch_size):
                    query = sa.select(self.tables[table]).where(
                        target.in_(self._coerce(column, chunk))
                    )
                    for row in self._stream(conn, query):
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
            table = self.tables[edge.dst_table]
            for chunk in _chunks(values, self.batch_size):
                query = sa.select(table).where(table.c[edge.dst_column].in_(chunk))
                for row in self._stream(conn, query):
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
        self, conn: Connection, found: dict[str, dict[Key, _Found]]
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
                for chunk in _chunks(list(by_value), self.batch_size):
                    query = (
                        sa.select(target, sa.func.count()).where(target.in_(chunk)).group_by(target)
                    )
                    for value, count in conn.execute(query):
                        self.stats.rows += 1
                        if count > owned.get(value, 0):
                            for key in by_value[value]:
                                shared[table].setdefault(key, set()).add(f"{other}.{other_column}")
        return shared

    # -- retention ---------------------------------------------------------------------------

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> list[SweepResult]:
        """Apply the mapping's retention rules (see connectors/sql/retention.py); the rows of
        ``protected`` records stay."""
        retention = SqlRetention(self.engine, self.mapping, self.tables, batch_rows=batch_rows)
        try:
            return retention.sweep(
                now,
                dry_run=dry_run,
                protected=self.keys_of(protected),
                min_group_size=min_group_size,
            )
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(self.name, _first_line(exc.orig)) from exc

    def keys_of(self, records: Iterable[Record]) -> dict[str, set[Key]]:
        """Primary keys (as the database holds them) of discovered records, per table."""
        keys: dict[str, set[Key]] = defaultdict(set)
        for record in records:
            table = self.tables[record.location]
            spec = self.mapping.tables[record.location]
            keys[record.location].add(
                tuple(self._native(table.c[c], record.native_id[c]) for c in spec.primary_key)
            )
        return keys

    # -- erasure ----------------------------------------------------------------------------

    def erase(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        """Delete or redact the planned rows, each by its primary key, idempotently.

        Rows of tables that point at others go first, so foreign keys never block a delete.
        Each action commits on its own: progress is real even if the process dies midway.
        """
        order = {name: i for i, name in enumerate(self._deletion_order())}
        todo = [a for a in actions if a.action in (Action.DELETE, Action.REDACT)]
        todo.sort(key=lambda a: order.get(a.location, len(order)))
        if any(HMAC_STRATEGY in a.fields.values() for a in todo):
            self.masking_key.get()  # a missing key fails the plan before anything is changed
        return self._run(todo)

    def rectify(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        """Set corrected values by primary key, then read them back: DONE only if they stuck."""
        return self._run([a for a in actions if a.action == Action.RECTIFY])

    def restrict(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        """Mark rows restricted where the mapping says how; elsewhere the ledger alone holds it."""
        todo = []
        for action in actions:
            if action.action != Action.RESTRICT:
                continue
            mark = self.mapping.tables[action.location].restriction
            if mark is not None:
                todo.append(action.model_copy(update={"fields": {mark.column: mark.value}}))
        return self._run(todo)

    def _run(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        report = ExecutionReport(source=self.name)
        try:
            for action in actions:
                report.results.append(self._execute(action))
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(self.name, _first_line(exc.orig)) from exc
        return report

    def _deletion_order(self) -> list[str]:
        """Tables ordered so that a table comes before every table it references."""
        referenced: dict[str, set[str]] = {
            name: {r.target_table for r in spec.references if r.target_table != name}
            for name, spec in self.mapping.tables.items()
        }
        ordered: list[str] = []
        while referenced:
            # Tables nobody left references can go now; a cycle is broken by name order.
            free = sorted(t for t in referenced if not any(t in v for v in referenced.values()))
            for table in free or [sorted(referenced)[0]]:
                ordered.append(table)
                referenced.pop(table)
        return ordered

    def _where_key(self, action: PlannedAction) -> sa.ColumnElement[bool]:
        table = self.tables[action.location]
        spec = self.mapping.tables[action.location]
        if set(action.native_id) != set(spec.primary_key):
            raise ValueError(f"{action.record_id}: key does not match the primary key")
        return sa.and_(
            *[table.c[c] == self._native(table.c[c], action.native_id[c]) for c in spec.primary_key]
        )

    @staticmethod
    def _native(column: sa.Column[Any], value: Any) -> Any:
        """The key value as the database holds it (the plan carries portable JSON values)."""
        if isinstance(value, str) and isinstance(column.type, sa.DateTime):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
        if isinstance(value, str) and isinstance(column.type, sa.Date):
            return dt.date.fromisoformat(value)
        return value

    def _execute(self, action: PlannedAction) -> ActionResult:
        table = self.tables[action.location]
        where = self._where_key(action)
        with self.engine.begin() as conn:
            if action.action == Action.DELETE:
                deleted = conn.execute(sa.delete(table).where(where)).rowcount
                if deleted > 1:
                    raise RuntimeError(f"{action.record_id}: key matched {deleted} rows")
                outcome = Outcome.DONE if deleted else Outcome.ALREADY_DONE
                return ActionResult(record_id=action.record_id, outcome=outcome)
            current = conn.execute(sa.select(table).where(where)).mappings().first()
            if current is None:
                return ActionResult(
                    record_id=action.record_id, outcome=Outcome.ALREADY_DONE, detail="row is gone"
                )
            wanted = self._new_values(action, current)
            values = {c: v for c, v in wanted.items() if current[c] != v}
            if not values:
                return ActionResult(record_id=action.record_id, outcome=Outcome.ALREADY_DONE)
            conn.execute(sa.update(table).where(where).values(**values))
            after = conn.execute(sa.select(table).where(where)).mappings().one()
        mismatched = sorted(c for c, v in wanted.items() if after[c] != v)
        if mismatched:  # read back: a trigger or a type may have changed what we wrote
            return ActionResult(
                record_id=action.record_id,
                outcome=Outcome.FAILED,
                detail=f"read back differs in {mismatched}",
            )
        return ActionResult(
            record_id=action.record_id,
            outcome=Outcome.DONE,
            detail=f"{action.action.value} {sorted(values)}",
        )

    def _new_values(self, action: PlannedAction, current: Any) -> dict[str, Any]:
        """The values an action writes: masked (redact) or given (rectify, restrict)."""
        table = self.tables[action.location]
        spec = self.mapping.tables[action.location]
        if action.action != Action.REDACT:
            return {c: self._native(table.c[c], v) for c, v in action.fields.items()}
        values = {}
        for column, strategy in action.fields.items():
            masking = spec.columns[column].erase if column in spec.columns else None
            values[column] = mask(
                str(strategy),
                current[column],
                masking.value if masking else None,
                self.masking_key,
            )
        return values

    def _record(self, table: str, entry: _Found, shared_with: set[str]) -> Record:
        spec = self.mapping.tables[table]
        data = entry.row
        expands = []
        for identity in spec.expands_identity:
            value = normalise_found(identity.kind, data.get(identity.column), self.phone_region)
            if value:
                expands.append(f"{identity.kind}:{value}")
        return Record(
            source=self.name,
            location=table,
            native_id={c: portable_value(data[c], self.tz) for c in spec.primary_key},
            categories={c: spec.category_of(c) for c in data},
            fields={c: portable_value(v, self.tz) for c, v in data.items()},
            matched=tuple(sorted(entry.matched)),
            reached_via=entry.reached_via,
            timestamps={c: to_utc_iso(v, self.tz) for c, v in data.items() if _is_temporal(v)},
            shared=bool(shared_with),
            shared_with=tuple(sorted(shared_with)),
            expands=tuple(expands),
        )

    def _stream(self, conn: Connection, query: sa.Select[Any]) -> Iterator[sa.Row[Any]]:
        result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(
            query
        )
        for row in result:
            self.stats.rows += 1
            yield row

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


def _lower_folds_unicode(conn: Connection) -> bool:
    """Whether this database's lower() folds non-ASCII capitals (PostgreSQL with a UTF-8 or ICU
    locale) or ASCII only (SQLite; PostgreSQL in the C locale)."""
    try:
        folded = conn.execute(sa.select(sa.func.lower(sa.literal(_LOWER_PROBE[0])))).scalar()
    except sa.exc.DBAPIError:
        return False  # then every mix of capitals is asked for: wider, never narrower
    return folded == _LOWER_PROBE[1]


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


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _refuse_missing_sqlite_file(name: str, url: str) -> None:
    """SQLite creates a missing file on connect: a wrong path would look like an empty database
    (every table missing), so it is refused by name instead."""
    parsed = sa.engine.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:") or Path(database).exists():
        return
    raise SourceUnavailable(
        name, f"its SQLite database {database} does not exist (check sources.{name}.url)"
    )
