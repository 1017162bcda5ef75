"""The retention sweep of Office 365 mail: the mapping's ``retention`` rules, applied folder by
folder in every mailbox the mapping covers.

For each folder (at any depth, walked with ``childFolders``) whose display name a rule names, or
every other folder when a rule names none, the messages older than the rule's cutoff are listed
with a server-side ``$filter`` (``receivedDateTime lt 2023-05-22T12:00:00Z``), a page at a time,
and deleted the way erasure deletes (``permanentDelete`` or a move to Deleted Items), 20 to a
``$batch``. A folder under a legal hold keeps its messages until the hold has ended as well.

Paging while deleting: Outlook's message lists page by position (``$skip``), so deleting a page
would shift the next one under a followed ``@odata.nextLink``. Each page is therefore asked for
afresh with ``$skip`` = the messages left standing ahead of it (those of restricted subjects),
which stay in front because the order (newest first) does not change. A dry run deletes
nothing and simply skips past every page. Memory stays at one page; a rerun after a crash finds
only what is left, so it continues where the crash stopped.

In ``delete`` mode Deleted Items is swept first: what the sweep moves there waits for the next
sweep (or Exchange's own policy for that folder), so no message is counted twice in one run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import SourceUnavailable, SweepResult
from connectors.mail.mapping import ErasureMode, MailMapping, MailRetentionRule
from connectors.mail.operations import Copy, MailOperations
from dsrflow.records import Record

_FOLDER_SELECT = ["id", "displayName", "childFolderCount"]
_MESSAGE_SELECT = ["id", "internetMessageId"]
_GONE = 404  # with ErrorItemNotFound: deleted meanwhile, nothing to count


@dataclass(frozen=True)
class MailFolder:
    mailbox: str
    id: str
    name: str


@dataclass(frozen=True)
class FolderPlan:
    """What a sweep does in one folder: the rule, and the $filter that finds what goes."""

    rule_index: int
    rule: MailRetentionRule
    cutoff: dt.datetime
    filter: str
    held_note: str | None


def graph_instant(moment: dt.datetime) -> str:
    """A DateTimeOffset literal for ``$filter``: UTC, whole seconds, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Protected:
    """Messages of restricted subjects, by the native ids their records carry."""

    def __init__(self, source: str, records: Sequence[Record]) -> None:
        self.internet_ids: set[str] = set()
        self.copies: set[tuple[str, str]] = set()  # (mailbox, message id) for drafts
        for record in records:
            if record.source != source:
                continue
            if record.native_id.get("internetMessageId"):
                self.internet_ids.add(str(record.native_id["internetMessageId"]))
            elif record.native_id.get("mailbox") and record.native_id.get("id"):
                mailbox = str(record.native_id["mailbox"]).lower()
                self.copies.add((mailbox, str(record.native_id["id"])))

    def holds(self, mailbox: str, message: dict[str, Any]) -> bool:
        internet_id = message.get("internetMessageId")
        if internet_id and internet_id in self.internet_ids:
            return True
        return (mailbox.lower(), str(message.get("id"))) in self.copies


class MailRetention:
    """One sweep of a mail mapping's retention rules, over the source's operations (its
    mailboxes, listings and deletes)."""

    def __init__(self, ops: MailOperations, mapping: MailMapping) -> None:
        self.ops = ops
        self.mapping = mapping

    def sweep(
        self, now: dt.datetime, *, dry_run: bool = False, protected: Sequence[Record] = ()
    ) -> list[SweepResult]:
        if not self.mapping.retention:
            return []
        keep = Protected(self.ops.name, protected)
        results: dict[tuple[int, str], SweepResult] = {}
        for mailbox in self.ops.mailboxes():
            for folder in self._ordered(mailbox, list(self._folders(mailbox))):
                plan = self._plan(folder.name, now)
                if plan is None:
                    continue
                result = results.setdefault(
                    (plan.rule_index, folder.name.lower()),
                    SweepResult(
                        table=folder.name,
                        rule=self._rule_label(plan.rule),
                        cutoff=graph_instant(plan.cutoff),
                        dry_run=dry_run,
                    ),
                )
                if plan.held_note and plan.held_note not in result.notes:
                    result.notes.append(plan.held_note)
                self._sweep_folder(folder, plan, keep, result, dry_run)
        return list(results.values())

    # -- what applies where -------------------------------------------------------------------

    def _plan(self, folder: str, now: dt.datetime) -> FolderPlan | None:
        rule = self.mapping.retention_rule_for(folder)
        if rule is None:
            return None
        index = self.mapping.retention.index(rule)
        cutoff = now - rule.max_age.as_delta()
        clauses = []
        note = None
        hold = self.mapping.hold_for(folder)
        if hold is not None:
            # A law keeps these messages: they go only once both the hold and the rule allow it.
            hold_cutoff = now - hold.duration.as_delta()
            note = f"legal hold: {hold.reason}"
            if hold.counts_from == rule.counts_from:
                cutoff = min(cutoff, hold_cutoff)
            else:
                clauses.append(f"{hold.counts_from} lt {graph_instant(hold_cutoff)}")
        clauses.insert(0, f"{rule.counts_from} lt {graph_instant(cutoff)}")
        return FolderPlan(index, rule, cutoff, " and ".join(clauses), note)

    def _rule_label(self, rule: MailRetentionRule) -> str:
        return (
            f"{self.mapping.erasure.mode.value} after {rule.max_age.short()} ({rule.counts_from})"
        )

    # -- folders ------------------------------------------------------------------------------

    def _folders(self, mailbox: str) -> Iterator[MailFolder]:
        """Every folder of the mailbox, children after their parent."""
        requests = self.ops.requests
        top = requests.folders(mailbox, _FOLDER_SELECT, 250)
        pending = list(self.ops.items(mailbox, "folders", top))
        while pending:
            raw = pending.pop(0)
            yield MailFolder(mailbox, raw["id"], raw.get("displayName") or "")
            if raw.get("childFolderCount"):
                children = requests.child_folders(mailbox, raw["id"], _FOLDER_SELECT, 250)
                pending[0:0] = list(self.ops.items(mailbox, "folders", children))

    def _ordered(self, mailbox: str, folders: list[MailFolder]) -> list[MailFolder]:
        """Deleted Items first in delete mode: what this sweep moves there waits for the next."""
        if self.mapping.erasure.mode != ErasureMode.DELETE:
            return folders
        deleted = self.ops.requests.folder(mailbox, "deleteditems")
        found = self.ops.get(mailbox, "folders", deleted)
        return sorted(folders, key=lambda f: f.id != found.get("id"))

    # -- messages -----------------------------------------------------------------------------

    def _sweep_folder(
        self,
        folder: MailFolder,
        plan: FolderPlan,
        keep: Protected,
        result: SweepResult,
        dry_run: bool,
    ) -> None:
        skip = 0  # messages left standing ahead of the next page
        while True:
            page = self._page(folder, plan.filter, skip)
            messages = page.get("value") or []
            doomed = []
            for message in messages:
                if keep.holds(folder.mailbox, message):
                    result.protected += 1
                    skip += 1
                else:
                    doomed.append(message)
            if dry_run:
                result.rows += len(doomed)
                skip += len(doomed)
            elif doomed:
                result.rows += self._delete(folder, doomed)
                result.batches += 1
            if not page.get("@odata.nextLink") or not messages:
                return

    def _page(self, folder: MailFolder, clause: str, skip: int) -> dict[str, Any]:
        request = self.ops.requests.folder_messages(
            folder.mailbox,
            folder.id,
            clause,
            _MESSAGE_SELECT,
            self.ops.settings.page_size,
            skip or None,
        )
        self.ops.stats.pages += 1
        return self.ops.get(folder.mailbox, "retention", request)

    def _delete(self, folder: MailFolder, messages: list[dict[str, Any]]) -> int:
        """Delete one page's messages as erasure does; how many went. Anything refused for
        good (after the connector's retries) makes the source unavailable: a sweep that
        silently leaves expired mail behind must not pass as done."""
        copies = [
            ("retention", Copy(folder.mailbox, m["id"], folder.name, None, None)) for m in messages
        ]
        gone = 0
        for status in self.ops.delete(copies):
            if status in (200, 204):
                gone += 1
            elif status != _GONE:
                raise SourceUnavailable(
                    self.ops.name,
                    f"mailbox {folder.mailbox}: deleting expired messages in {folder.name} "
                    f"failed with HTTP {status}",
                )
        return gone
