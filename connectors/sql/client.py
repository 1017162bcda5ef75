"""The one place that holds the database: SQLAlchemy's engine, its connections and its errors.

Everything else in this package builds SQLAlchemy Core statements and runs them through here,
so that opening, reflecting, counting and an unreachable database are handled once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.base import SourceUnavailable

# Expression indexes (lower(email), phone digits) cannot be reflected and are not needed. Set
# once for the process: ``warnings.catch_warnings`` around reflection is not thread-safe, and
# discovery reflects in several threads at once.
warnings.filterwarnings(
    "ignore",
    message="Skipped unsupported reflection of expression-based index",
    category=sa.exc.SAWarning,
)
# Whether the database's lower() folds non-ASCII letters: asked once, with this text.
_LOWER_PROBE = ("\u00c5\u03a3", "\u00e5\u03c3")


@dataclass
class QueryStats:
    queries: int = 0
    rows: int = 0


class SqlClient:
    """One database of one source, by its SQLAlchemy URL."""

    def __init__(self, source: str, url: str, *, shared: sa.Engine | None = None) -> None:
        """``shared``: an engine someone else owns and disposes (one kept for the request's
        run, connectors/sql/connector.py); otherwise this client builds and disposes its own."""
        self.source = source
        self._owned = shared is None
        if shared is None:
            _refuse_missing_sqlite_file(source, url)
            shared = sa.create_engine(url)
        self.pool_engine = shared
        # A view over the same pool with listeners of its own, so that each client counts its
        # own statements on an engine that several openings share.
        self.engine = shared.execution_options()
        self.stats = QueryStats()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def count_queries(self) -> None:
        """Count every statement from here on (the benchmark reports those of discovery, not
        of reflection)."""
        sa.event.listen(self.engine, "before_cursor_execute", self._count_query)

    def _count_query(self, *_: Any) -> None:
        self.stats.queries += 1

    @contextmanager
    def reachable(self) -> Iterator[None]:
        """A database that cannot be reached (or drops the connection) is an unavailable source:
        the request must not pass as complete."""
        try:
            yield
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(self.source, _first_line(exc.orig)) from exc

    def connect(self) -> Connection:
        return self.engine.connect()

    def reading(self) -> Connection:
        """A connection for lookups only, each statement on its own (autocommit): no BEGIN
        and ROLLBACK round trips around them. Under READ COMMITTED, PostgreSQL's default, a
        transaction would not give them one snapshot anyway."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def begin(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction that commits when the block ends (rolls back on error)."""
        return self.engine.begin()

    def rows(
        self, conn: Connection, query: sa.Executable, params: dict[str, Any] | None = None
    ) -> Iterator[sa.Row[Any]]:
        """The rows of a lookup whose result follows the subject's footprint, read in one go:
        a server-side cursor (``stream_results``) would cost extra round trips per statement."""
        for row in conn.execute(query, params or {}):
            self.stats.rows += 1
            yield row

    def reflect(self, schema: str | None, names: Iterable[str]) -> dict[str, sa.Table]:
        """Those of the tables (or views) ``names`` that exist, as the database describes them."""
        metadata = sa.MetaData(schema=schema)
        with self.reachable(), self.engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names(schema=schema))
            wanted = [t for t in names if t in present]
            metadata.reflect(conn, only=wanted, views=True)
        return {t: metadata.tables[f"{schema}.{t}" if schema else t] for t in wanted}

    def load_table(self, name: str, schema: str | None) -> sa.Table:
        """One table reflected on its own (an aggregate the mapping names, not maps)."""
        return sa.Table(name, sa.MetaData(), autoload_with=self.engine, schema=schema)

    def create_missing(self, table: sa.Table) -> None:
        table.create(self.engine, checkfirst=True)

    def lower_folds_unicode(self) -> bool:
        """Whether this database's lower() folds non-ASCII capitals (PostgreSQL with a UTF-8 or
        ICU locale) or ASCII only (SQLite; PostgreSQL in the C locale)."""
        with self.reachable(), self.engine.connect() as conn:
            try:
                probe = sa.select(sa.func.lower(sa.literal(_LOWER_PROBE[0])))
                folded = conn.execute(probe).scalar()
            except sa.exc.DBAPIError:
                return False  # then every mix of capitals is asked for: wider, never narrower
        return folded == _LOWER_PROBE[1]

    def lacking_privileges(
        self, wanted: dict[str, tuple[sa.Table, set[str]]]
    ) -> dict[str, list[str]]:
        """PostgreSQL: per name, which of the privileges on its table the user does not hold."""
        preparer = self.engine.dialect.identifier_preparer
        query = sa.text("SELECT has_table_privilege(:table, :privilege)")
        lacking = {}
        with self.reachable(), self.engine.connect() as conn:
            for name, (table, privileges) in wanted.items():
                qualified = preparer.format_table(table)
                lacking[name] = sorted(
                    p
                    for p in privileges
                    if not conn.execute(query, {"table": qualified, "privilege": p}).scalar()
                )
        return lacking

    def close(self) -> None:
        if self._owned:
            self.pool_engine.dispose()


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
