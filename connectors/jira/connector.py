"""A Jira service desk (Cloud or Data Center) through the ``jira`` package: the connector, a
thin facade over the modules that do each part.

- who the subject is (their accounts, each confirmed): ``connectors.jira.subject``
- discovery (one JQL search, confirmed exactly, texts masked): ``connectors.jira.discovery``
- erasure (anonymise or delete, customers and their accounts last): ``connectors.jira.erasure``
- rectification and restriction (a label): ``connectors.jira.rectification``
- the retention sweep of resolved requests: ``connectors.jira.retention``
- what these share (reading, searching, anonymising issues): ``connectors.jira.operations``
- the permissions each right needs (preflight): ``connectors.jira.permissions``

Every request goes through ``connectors.jira.client``, the one place that touches the SDK.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from connectors.base import Closing, Finding, SweepResult
from connectors.jira import permissions, rectification
from connectors.jira.client import JiraClient
from connectors.jira.coverage import JiraSurvey
from connectors.jira.discovery import Discovery
from connectors.jira.erasure import Eraser
from connectors.jira.mapping import JiraMapping
from connectors.jira.operations import Issues, JiraStats
from connectors.jira.retention import JiraRetention
from connectors.jira.settings import JiraSource
from connectors.jira.subject import Known, Resolver
from connectors.third_parties import SourceContext
from dsrflow.plan import ExecutionReport, PlannedAction
from dsrflow.records import Record
from dsrflow.request import RequestType, Subject


class JiraConnector(Closing):
    """Finds, erases, rectifies and restricts a subject's data in a Jira service desk, and
    sweeps its expired requests."""

    def __init__(
        self,
        name: str,
        mapping: JiraMapping,
        source: JiraSource,
        *,
        client: JiraClient | None = None,
        context: SourceContext | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.source = source
        self.context = context or SourceContext()
        self.client = client or JiraClient(name, source)
        self.issues = Issues(
            self.client, mapping, mapping_path=source.mapping, page_size=source.page_size
        )
        self.resolver = Resolver(name, self.client, mapping.projects)

    @property
    def stats(self) -> JiraStats:
        return self.issues.stats

    def close(self) -> None:
        self.client.close()

    def preflight(self, right: RequestType) -> list[str]:
        return permissions.preflight(self.client, self.mapping, self.source.mapping, right)

    def resolve(self, subject: Subject) -> Known:
        return self.resolver.resolve(subject)

    def discover(self, subject: Subject) -> Iterator[Record]:
        known = self.resolve(subject)
        yield from Discovery(self.name, self.mapping, self.issues, self.context).records(
            known, frozenset(subject.phones)
        )

    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Carry out DELETE/REDACT actions (the subject says what to pseudonymise); a KEEP is
        skipped with its reason, any other action fails. Idempotent."""
        known = self.resolve(subject)
        return Eraser(self.name, self.mapping, self.issues).erase(actions, known)

    def rectify(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        return rectification.rectify(self.name, self.issues, actions)

    def restrict(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        return rectification.restrict(self.name, self.issues, actions)

    def survey(self) -> list[Finding]:
        """Projects and service desks of the site that the mapping does not list."""
        return JiraSurvey(self.name, self.client, self.mapping).findings()

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """The mapping's retention rules as of ``now``; requests are deleted or anonymised,
        never aggregated, so ``min_group_size`` does not apply."""
        retention = JiraRetention(self.name, self.issues, self.mapping)
        return retention.sweep(now, dry_run=dry_run, protected=protected)
