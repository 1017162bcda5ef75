"""Google Drive spreadsheets through google-api-python-client (Drive v3 + Sheets v4): the
connector is a facade over the package's parts, one per responsibility.

* ``client``: the SDK (credentials, services, retries; writes sent once);
* ``listing``: which spreadsheets (mapped folders and those below, named ones, full-text
  search as a pre-filter only);
* ``operations``: reading a spreadsheet's sheets (a 404 is absence only once Drive confirms
  it) and sending a change once, deciding from a re-read when its answer is lost;
* ``rows``: from cells to Records (exact matching of normalised identifiers) and the
  batchUpdate requests that change rows;
* ``discovery``: the subject's rows, spreadsheets read by a few threads, a few ahead;
* ``changes``: the guard before any change (re-read, the row still holds the subject's
  identifier and, for a deletion, exactly what the plan saw); ``erasure`` and
  ``rectification``: what each right does to the rows that passed it;
* ``retention``: the sweep of rows past their layout's retention; ``preflight``: what the
  source must grant before a request runs.

Nothing about cell contents is logged; ``stats`` and ``client.stats`` hold counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from connectors.base import Closing, Finding, SweepResult
from connectors.drive.changes import SheetChanges
from connectors.drive.client import GoogleClient
from connectors.drive.coverage import DriveSurvey
from connectors.drive.discovery import Discovery, DriveStats
from connectors.drive.erasure import erase_sheet
from connectors.drive.listing import Listing
from connectors.drive.mapping import DriveMapping
from connectors.drive.operations import Sheets
from connectors.drive.preflight import preflight_problems
from connectors.drive.rectification import rectify_sheet
from connectors.drive.retention import DriveRetention
from connectors.drive.settings import DriveSource
from connectors.third_parties import SourceContext
from dsrflow.plan import Action, ExecutionReport, PlannedAction
from dsrflow.records import Record
from dsrflow.request import RequestType, Subject


class DriveConnector(Closing):
    """Finds, erases and rectifies a subject's rows in Google Sheets, and sweeps out rows past
    their retention, as the mapping says."""

    def __init__(
        self,
        name: str,
        mapping: DriveMapping,
        source: DriveSource,
        *,
        context: SourceContext | None = None,
        client: GoogleClient | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.source = source
        self.context = context or SourceContext()
        self.phone_region = self.context.phone_region
        self.client = client or GoogleClient(name, source)
        self.sheets = Sheets(self.client)
        self.listing = Listing(self.sheets, mapping)
        self.discovery = Discovery(self.listing, self.sheets, mapping, self.context)
        self.changes = SheetChanges(self.sheets, mapping, self.phone_region)

    @property
    def stats(self) -> DriveStats:
        return self.discovery.stats

    def close(self) -> None:
        """Nothing to release: httplib2 connections close with their threads' objects."""

    def preflight(self, right: RequestType) -> list[str]:
        return preflight_problems(self.listing, right)

    def discover(self, subject: Subject) -> Iterator[Record]:
        return self.discovery.records(subject)

    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Delete or clear the planned rows, each sheet behind the guard (the plan's
        fingerprints say whose rows they are: ``subject`` is not needed here)."""
        return self.changes.carry_out(actions, (Action.DELETE, Action.REDACT), erase_sheet)

    def rectify(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Set the named cells (header -> new value) of each row; verified by reading back."""
        return self.changes.carry_out(actions, (Action.RECTIFY,), rectify_sheet)

    def survey(self) -> list[Finding]:
        """Sheets of the mapped spreadsheets that no layout fits (read: a bounded sample)."""
        region = self.phone_region
        return DriveSurvey(self.listing, self.sheets, self.mapping, phone_region=region).findings()

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """Apply the layouts' retention rules as of ``now``; the rows of ``protected``
        records stay. Sheets are not aggregated: no group size."""
        retention = DriveRetention(
            self.mapping,
            self.listing,
            self.sheets,
            now,
            phone_region=self.phone_region,
            dry_run=dry_run,
            protected=protected,
        )
        return retention.sweep()
