"""Office 365 mail through Microsoft Graph (msgraph-sdk), driven by a mail mapping.

``MailConnector`` is a thin facade over the package's parts, each one responsibility:

- ``client``: the only module that touches the SDK: ``GraphSession`` (msgraph-sdk on a private
  event loop, throttling, retries, writes never blindly resent) and ``GraphRequests`` (every
  request, built by the SDK's request builders);
- ``operations``: what every right shares: the mailboxes, folder names, paged listings, the
  mailboxes Graph cannot search, deleting messages 20 to a ``$batch``;
- ``discovery`` (with ``match`` and ``records``): a subject's mail found, confirmed exactly and
  turned into records; ``index``: the sender/replyTo index KQL cannot replace;
- ``erasure``: every copy of a planned message deleted, legal holds respected;
- ``retention``: the mapping's retention rules, folder by folder;
- ``preflight``: the app's permissions and the mailboxes' reach, before a request runs.

Rectifying or restricting a sent message is not something mail does: the connector implements
neither, and the mapping plans rectification ``not_applicable``.

Throttling (Exchange: 4 requests in flight and 10,000 per 10 minutes per mailbox): at most 4
in flight per mailbox, one item per mailbox in a discovery ``$batch``; 429/503/504 retried by
the SDK honouring ``Retry-After``, 500/502 and throttled ``$batch`` items retried here; a
``Retry-After`` beyond ``max_retry_wait_s`` is not waited for; a source that keeps failing raises
``SourceUnavailable`` (never a partial answer reported as complete).

A real tenant: an app registration with the Graph application permissions ``Mail.ReadWrite``
(read and delete mail) and ``User.Read.All`` (list mailboxes, for ``all_users``), admin consent
granted, and a client secret kept in an environment variable or a Prefect Secret block. To keep
the app away from other mailboxes, name them in the mapping and restrict the app in Exchange
Online with an application access policy (``New-ApplicationAccessPolicy -AppId <client id>
-PolicyScopeGroupId <mail-enabled security group holding those mailboxes> -AccessRight
RestrictAccess``; check with ``Test-ApplicationAccessPolicy``).

Nothing about contents is logged: counts only, in ``self.stats``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from connectors.base import Closing, Finding, SweepResult, not_carried_out
from connectors.mail import preflight
from connectors.mail.client import GraphSession
from connectors.mail.coverage import MailSurvey
from connectors.mail.discovery import MailDiscovery
from connectors.mail.erasure import MailErasure
from connectors.mail.index import ParticipantIndex
from connectors.mail.mapping import MailMapping
from connectors.mail.operations import MailOperations
from connectors.mail.retention import MailRetention
from connectors.mail.settings import MailSource
from connectors.third_parties import SourceContext
from dsrflow.plan import Action, ExecutionReport, PlannedAction
from dsrflow.records import Record
from dsrflow.request import RequestType, Subject


class MailConnector(Closing):
    """Finds and erases a subject's mail in Exchange Online, and sweeps old mail, as its
    mapping describes it (``Discovering``, ``Erasing``, ``Sweeping``)."""

    def __init__(
        self,
        name: str,
        mapping: MailMapping,
        settings: MailSource,
        *,
        retry_delay_s: float = 3.0,
        credential: Any | None = None,
        context: SourceContext | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.settings = settings
        self.context = context or SourceContext()
        self.graph = GraphSession(
            name, settings, retry_delay_s=retry_delay_s, credential=credential
        )
        self.ops = MailOperations(name, mapping, settings, self.graph)
        self.stats = self.graph.stats
        self._index: ParticipantIndex | None = None  # opened on first use

    @property
    def index(self) -> ParticipantIndex | None:
        """The sender/replyTo index, if the mapping keeps one (``connectors.mail.index``)."""
        path = self.mapping.matching.participant_index
        if path and self._index is None:
            self._index = ParticipantIndex(Path(path).expanduser())
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        self.graph.close()

    def preflight(self, right: RequestType) -> list[str]:
        return preflight.preflight(self.ops, right)

    def mailboxes(self) -> Iterator[str]:
        return self.ops.mailboxes()

    # -- what was not searched --------------------------------------------------------------------

    @property
    def unsearchable(self) -> dict[str, str]:
        """Mailboxes Graph cannot search (guests, hybrid users on premises) -> why."""
        return self.ops.unsearchable

    @property
    def not_searched(self) -> list[str]:
        """What the last discovery could not search, for the answer (``discover_source``)."""
        note = self.unsearchable_note()
        return [note] if note else []

    def unsearchable_note(self) -> str | None:
        return self.ops.unsearchable_note()

    # -- the rights -------------------------------------------------------------------------------

    def discover(self, subject: Subject) -> Iterator[Record]:
        yield from MailDiscovery(self.ops, subject, self.index, self.context).run()

    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """Delete every copy of each planned message; a KEEP is skipped with its reason, any
        other action fails: a sent message is kept or deleted, never changed."""
        mine = [a for a in actions if a.source == self.name]
        report = ExecutionReport(source=self.name)
        report.results.extend(not_carried_out(a) for a in mine if a.action != Action.DELETE)
        deletes = [a for a in mine if a.action == Action.DELETE]
        if deletes:
            report.results += MailErasure(self.ops).erase(deletes)
            if self.index is not None:
                self.index.sync(self.ops)  # deleted mail leaves the index with its entries
        return report

    def survey(self) -> list[Finding]:
        """Mailboxes of the tenant that the mapping does not list."""
        return MailSurvey(self.ops).findings()

    def sweep(
        self,
        now: dt.datetime,
        *,
        dry_run: bool = False,
        protected: Sequence[Record] = (),
        min_group_size: int | None = None,
    ) -> list[SweepResult]:
        """The mapping's retention rules as of ``now`` (``connectors.mail.retention``); mail is
        deleted, never aggregated, so ``min_group_size`` has nothing to act on."""
        results = MailRetention(self.ops, self.mapping).sweep(
            now, dry_run=dry_run, protected=protected
        )
        if self.index is not None and not dry_run:
            # The scheduled run that keeps the participant index's rounds short.
            self.index.sync(self.ops)
        return results
