"""On-prem SQL databases through SQLAlchemy Core: any database URL, driven by a mapping.

The connector is a facade over one client (connectors/sql/client.py) and the mapped tables
(operations.py); each right is its own module: discovery.py, row_changes.py (erase, rectify,
restrict), retention.py (sweep), preflight.py.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from connectors.base import Closing, Finding, SweepResult
from connectors.masking import MaskingKey
from connectors.run_scope import scoped
from connectors.sql.client import QueryStats, SqlClient
from connectors.sql.coverage import SqlSurvey
from connectors.sql.discovery import Discovery
from connectors.sql.mapping import SqlMapping
from connectors.sql.operations import MappedTables
from connectors.sql.preflight import preflight_problems
from connectors.sql.retention import DEFAULT_BATCH_ROWS, SqlRetention
from connectors.sql.row_changes import RowChanges
from connectors.third_parties import SourceContext
from dsrflow.plan import ExecutionReport, PlannedAction
from dsrflow.records import Record
from dsrflow.request import RequestType, Subject


@dataclass(frozen=True)
class _Opened:
    """What opening a source builds that a request's run may reuse: the engine (its pool), the
    mapped tables as reflected and checked against the mapping, whether lower() folds Unicode.
    Read only once built; a write flow uses the schema its own preflight checked."""

    client: SqlClient
    tables: MappedTables
    lower_folds_unicode: bool

    @classmethod
    def build(cls, name: str, url: str, mapping: SqlMapping, mapping_path: Path) -> _Opened:
        client = SqlClient(name, url)
        try:
            tables = MappedTables.bind(client, mapping, mapping_path)
            return cls(client, tables, client.lower_folds_unicode())
        except BaseException:
            client.close()
            raise

    def close(self) -> None:
        self.client.close()


class SqlConnector(Closing):
    """Finds and changes a subject's rows in one SQL database, as its mapping describes it."""

    def __init__(
        self,
        name: str,
        mapping: SqlMapping,
        url: str,
        *,
        batch_size: int = 500,
        timezone: str = "UTC",
        context: SourceContext | None = None,
        mapping_path: Path | None = None,
        masking_key: MaskingKey | None = None,
        sweep_batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.masking_key = masking_key or MaskingKey()
        path = mapping_path or Path(f"(mapping of source {name!r})")
        zone = zoneinfo.ZoneInfo(timezone)
        # Within a request's run, the engine and the reflected tables of the first opening
        # with this URL and mapping (connectors/run_scope.py); elsewhere built here, as before.
        self._opened = scoped(
            ("sql", url, mapping.model_dump_json()),
            lambda: _Opened.build(name, url, mapping, path),
            _Opened.close,
        )
        opened = self._opened.value
        self.tables = opened.tables
        self.lower_folds_unicode = opened.lower_folds_unicode
        self.client = SqlClient(name, url, shared=opened.client.pool_engine)
        self.client.count_queries()  # discovery's queries, not reflection's
        self.discovery = Discovery(
            name,
            self.client,
            self.tables,
            batch_size=batch_size,
            timezone=zone,
            context=context or SourceContext(),
            lower_folds_unicode=self.lower_folds_unicode,
        )
        self.changes = RowChanges(name, self.client, self.tables, self.masking_key)
        self.retention = SqlRetention(self.client, self.tables, batch_rows=sweep_batch_rows)

    @property
    def engine(self) -> sa.Engine:
        return self.client.engine

    @property
    def stats(self) -> QueryStats:
        return self.client.stats

    def close(self) -> None:
        self.client.close()
        self._opened.release()

    def preflight(self, right: RequestType) -> list[str]:
        """What would stop ``right`` here, beyond what opening checked (see preflight.py)."""
        return preflight_problems(self.client, self.tables, self.masking_key, right)

    def discover(self, subject: Subject) -> Iterator[Record]:
        return self.discovery.records(subject)

    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Delete or redact the planned rows, each by its primary key, idempotently."""
        return self.changes.erase(actions)

    def rectify(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Set corrected values by primary key, then read them back: DONE only if they stuck."""
        return self.changes.rectify(actions)

    def restrict(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Mark rows restricted where the mapping says how; elsewhere the ledger alone holds it."""
        return self.changes.restrict(actions)

    def survey(self) -> list[Finding]:
        """Text columns outside the mapping's identities that hold identifier-like values."""
        return SqlSurvey(
            self.name, self.client, self.mapping, phone_region=self.discovery.phone_region
        ).findings()

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """Apply the mapping's retention rules (connectors/sql/retention.py); the rows of
        ``protected`` records stay."""
        return self.retention.sweep(
            now, dry_run=dry_run, protected=protected, min_group_size=min_group_size
        )
