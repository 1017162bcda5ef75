"""On-prem SQL databases through SQLAlchemy Core: any database URL, driven by a mapping.

The connector is a facade over one client (connectors/sql/client.py) and the mapped tables
(operations.py); each right is its own module: discovery.py, row_changes.py (erase, rectify,
restrict), retention.py (sweep), preflight.py.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa

from connectors.base import Closing, Finding, SweepResult
from connectors.masking import MaskingKey
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
        self.client = SqlClient(name, url)
        self.tables = MappedTables.bind(
            self.client, mapping, mapping_path or Path(f"(mapping of source {name!r})")
        )
        self.lower_folds_unicode = self.client.lower_folds_unicode()
        self.client.count_queries()  # from here on: discovery's queries, not reflection's
        self.discovery = Discovery(
            name,
            self.client,
            self.tables,
            batch_size=batch_size,
            timezone=zoneinfo.ZoneInfo(timezone),
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
