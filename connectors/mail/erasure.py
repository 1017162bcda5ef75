"""Erasing a subject's mail: every copy of a planned message deleted (``permanentDelete`` or a
move to Deleted Items), 20 per JSON ``$batch``, reading each item's status; a 404
``ErrorItemNotFound`` means already gone. Exchange keeps a permanently deleted item in
Recoverable Items (Purges) for the mailbox's deleted-item retention, indefinitely under a hold:
each result's ``remains`` says so, and what finishes it. Copies in a folder under a legal hold
are kept and reported.

The copies come from the discovery the connector just ran or, for a plan made earlier, from
``$filter`` lookups by internetMessageId in every mailbox (10 ids to a filter, 20 filters to a
``$batch``)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from connectors.base import SourceUnavailable, hold_checked_on
from connectors.mail.client import GraphError, chunks, message_dict
from connectors.mail.mapping import ErasureMode
from connectors.mail.operations import Copy, MailOperations
from dsrflow.plan import ActionResult, Outcome, PlannedAction

LOOKUP_IDS_PER_FILTER = 10
_LOOKUP_SELECT = ["id", "internetMessageId", "parentFolderId", "receivedDateTime", "sentDateTime"]
_COPY_SELECT = ["id", "parentFolderId", "receivedDateTime", "sentDateTime"]


class MailErasure:
    """Deletes the copies of planned messages, holds respected, over the source's operations."""

    def __init__(self, ops: MailOperations) -> None:
        self.ops = ops
        self.mapping = ops.mapping

    def erase(self, actions: Sequence[PlannedAction]) -> list[ActionResult]:
        """The result of each DELETE action, in order."""
        actions = list(actions)
        copies = self._resolve(actions)
        today = dt.datetime.now(dt.UTC).date()
        to_delete: list[tuple[str, Copy]] = []  # (record id, copy)
        held: dict[str, list[str]] = defaultdict(list)
        for action in actions:
            for copy in copies.get(action.record_id, []):
                hold = self.mapping.hold_for(copy.folder)
                start = copy.received if hold and hold.counts_from == "receivedDateTime" else None
                start = start or copy.sent
                if hold and start:
                    until = hold.held_until(dt.date.fromisoformat(start[:10]))
                    if until > hold_checked_on(action, today):
                        held[action.record_id].append(
                            f"{copy.mailbox}/{copy.folder}: {hold.reason}, until {until}"
                        )
                        continue
                to_delete.append((action.record_id, copy))
        statuses = self.ops.delete(to_delete)
        statuses_of: dict[str, list[int]] = defaultdict(list)
        deleted: dict[str, list[Copy]] = defaultdict(list)
        for (record_id, copy), status in zip(to_delete, statuses, strict=True):
            statuses_of[record_id].append(status)
            if status in (200, 204):
                deleted[record_id].append(copy)
        results = []
        for action in actions:
            mine = statuses_of[action.record_id]
            failed = [s for s in mine if s not in (200, 204, 404)]
            if failed:
                outcome, detail = Outcome.FAILED, f"{len(failed)} copy/copies failed: {failed}"
            elif held[action.record_id]:
                outcome = Outcome.SKIPPED
                detail = "kept under legal hold: " + "; ".join(held[action.record_id])
                if deleted[action.record_id]:
                    detail += f" ({len(deleted[action.record_id])} other copy/copies deleted)"
            elif deleted[action.record_id]:
                outcome, detail = Outcome.DONE, f"{len(mine)} copy/copies {self._verb()}"
            else:
                outcome, detail = Outcome.ALREADY_DONE, "no copy left in any searchable mailbox"
            remains = [self._remains(deleted[action.record_id]), self.ops.unsearchable_note()]
            results.append(
                ActionResult(
                    record_id=action.record_id,
                    outcome=outcome,
                    detail=detail,
                    remains="; ".join(r for r in remains if r) or None,
                )
            )
        for action in actions:
            # Ids change when a message moves, and deleted ones are gone: forget them.
            self.ops.copies.pop(str(action.native_id.get("internetMessageId")), None)
        return results

    # -- what Exchange still keeps ----------------------------------------------------------------

    def _remains(self, deleted: list[Copy]) -> str | None:
        """What Exchange still keeps of the copies just deleted, and what finishes it."""
        if not deleted:
            return None
        if self.mapping.erasure.mode == ErasureMode.PERMANENT_DELETE:
            mailboxes = ", ".join(sorted({c.mailbox for c in deleted}))
            # https://learn.microsoft.com/graph/api/message-permanentdelete: into the Purges
            # folder of Recoverable Items, removed after a set period unless a hold is set.
            return (
                f"{len(deleted)} copy/copies in Recoverable Items (Purges) of {mailboxes}, out "
                "of reach of mail clients and of this search; Exchange removes them when the "
                "mailbox's deleted-item retention ends (14 days by default, at most 30), or a "
                "compliance administrator purges them sooner; kept indefinitely while the "
                "mailbox is under a hold"
            )
        # A DELETE moves to Deleted Items; from Deleted Items, into Recoverable Items
        # (https://learn.microsoft.com/graph/api/message-delete).
        moved = [c for c in deleted if c.folder != "Deleted Items"]
        said = []
        if moved:
            where = ", ".join(sorted({c.mailbox for c in moved}))
            said.append(
                f"{len(moved)} copy/copies in Deleted Items of {where}: they leave it when "
                "Deleted Items is emptied (by the user, a retention policy or the retention "
                "sweep), then stay in Recoverable Items for the deleted-item retention"
            )
        if len(moved) < len(deleted):
            where = ", ".join(sorted({c.mailbox for c in deleted if c not in moved}))
            said.append(
                f"{len(deleted) - len(moved)} copy/copies in Recoverable Items of {where} "
                "until the deleted-item retention ends (14 days by default, at most 30)"
            )
        return "; ".join(said) + " (indefinitely while the mailbox is under a hold)"

    def _verb(self) -> str:
        if self.mapping.erasure.mode == ErasureMode.PERMANENT_DELETE:
            return "permanently deleted"
        return "moved to Deleted Items"

    # -- finding the copies -----------------------------------------------------------------------

    def _resolve(self, actions: list[PlannedAction]) -> dict[str, list[Copy]]:
        """Every copy of each planned message, by record id: from discovery if this connector
        just saw them, otherwise looked up by internetMessageId in every mailbox."""
        found: dict[str, list[Copy]] = {}
        unknown: dict[str, str] = {}  # internetMessageId -> record id
        for action in actions:
            internet_id = action.native_id.get("internetMessageId")
            if internet_id and internet_id in self.ops.copies:
                found[action.record_id] = list(self.ops.copies[internet_id].values())
            elif internet_id:
                unknown[str(internet_id)] = action.record_id
            elif action.native_id.get("mailbox") and action.native_id.get("id"):
                # A message without an internetMessageId (a draft): one copy, read for its
                # folder so that a hold still applies; gone means nothing to do.
                copy = self._read_copy(
                    str(action.native_id["mailbox"]), str(action.native_id["id"])
                )
                found[action.record_id] = [copy] if copy else []
        if unknown:
            mailboxes = list(self.ops.mailboxes())
            wanted = self._where_to_look(actions, unknown, mailboxes)
            for mailbox, data in self._lookup(wanted):
                copy = Copy(
                    mailbox,
                    data["id"],
                    self.ops.folder_name(mailbox, data.get("parentFolderId")),
                    data.get("receivedDateTime"),
                    data.get("sentDateTime"),
                )
                found.setdefault(unknown[data["internetMessageId"]], []).append(copy)
        return found

    def _read_copy(self, mailbox: str, message_id: str) -> Copy | None:
        request = self.ops.requests.message(mailbox, message_id, _COPY_SELECT)
        try:
            raw = self.ops.graph.fetch(mailbox, "lookup", request)
        except GraphError as exc:
            if exc.item_not_found:
                return None
            raise self.ops.unavailable(mailbox, exc) from exc
        data = message_dict(raw)
        folder = self.ops.folder_name(mailbox, data.get("parentFolderId"))
        return Copy(mailbox, message_id, folder, data["receivedDateTime"], data["sentDateTime"])

    @staticmethod
    def _where_to_look(
        actions: list[PlannedAction], unknown: dict[str, str], mailboxes: list[str]
    ) -> dict[str, list[str]]:
        """Mailbox -> internetMessageIds to look up there: the mailboxes the plan saw the
        message in (its ``hints``), or every mailbox when the plan has no hint."""
        configured = set(mailboxes)
        wanted: dict[str, list[str]] = defaultdict(list)
        for action in actions:
            internet_id = str(action.native_id.get("internetMessageId"))
            if internet_id not in unknown:
                continue
            hinted = [m for m in action.hints.get("mailboxes", []) if m in configured]
            for mailbox in hinted or mailboxes:
                wanted[mailbox].append(internet_id)
        return dict(wanted)

    def _lookup(self, wanted: dict[str, list[str]]) -> list[tuple[str, dict[str, Any]]]:
        """(mailbox, message) for every copy of the internetMessageIds wanted in each mailbox.

        One ``$filter`` per 10 ids per mailbox, sent 20 to a ``$batch``. Ordered chunk by chunk
        across the mailboxes, so that a batch holds few requests for any one mailbox (Graph runs
        a batch's requests in parallel, and Exchange allows 4 per mailbox). The folder names of
        the mailboxes not read yet (for the hold check of each copy found) go first in the same
        batches rather than in one of their own: one ``$batch`` fewer where both fit.
        """
        folder_boxes, requests = self.ops.folder_requests(sorted(wanted))
        planned: list[tuple[str, set[str]]] = []
        per_mailbox = {m: list(chunks(ids, LOOKUP_IDS_PER_FILTER)) for m, ids in wanted.items()}
        rounds = max((len(c) for c in per_mailbox.values()), default=0)
        for round_number in range(rounds):
            for mailbox, mailbox_chunks in per_mailbox.items():
                if round_number >= len(mailbox_chunks):
                    continue
                chunk = mailbox_chunks[round_number]
                # OData string literals double their single quotes; nothing else is special.
                clause = " or ".join(
                    "internetMessageId eq '{}'".format(i.replace("'", "''")) for i in chunk
                )
                planned.append((mailbox, set(chunk)))
                requests.append(
                    self.ops.requests.filter_messages(mailbox, clause, _LOOKUP_SELECT, 1000)
                )
        self.ops.stats.lookups += len(planned)
        answers = self.ops.batched(requests, "lookup")
        for mailbox, answer in zip(folder_boxes, answers, strict=False):
            self.ops.take_folders(mailbox, answer)
        found = []
        for (mailbox, ids), answer in zip(planned, answers[len(folder_boxes) :], strict=True):
            if self.ops.note_unsearchable(mailbox, answer.status, answer.error_code):
                continue
            if answer.status != 200:
                raise SourceUnavailable(
                    self.ops.name,
                    f"mailbox {mailbox}: looking up messages to erase failed with HTTP "
                    f"{answer.status} {answer.error_code or ''}".rstrip(),
                )
            for data in (answer.body or {}).get("value") or []:
                if data.get("internetMessageId") in ids:
                    found.append((mailbox, data))
        return found
