"""What discovery, erasure, the retention sweep and the participant index share, over one
``GraphSession``: the mailboxes to cover, folder names, paged listings, the mailboxes Graph
cannot search, and deleting messages 20 to a ``$batch`` without blindly resending a write."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from connectors.base import SourceUnavailable
from connectors.mail.client import (
    BatchAnswer,
    GraphError,
    GraphSession,
    Request,
    chunks,
    retry_after_of,
)
from connectors.mail.mapping import ErasureMode, MailMapping
from connectors.mail.settings import MailSource
from connectors.writes import AmbiguousWrite
from dsrflow.identifiers import mask_email

BATCH_SIZE = 20  # JSON batching's limit
MAILBOX_NOT_ENABLED = "MailboxNotEnabledForRESTAPI"
_RETRYABLE_ITEM = {429, 500, 502, 503, 504}
_FOLDER_SELECT = ["id", "displayName"]

# Confirms the writes of one ``delete`` after a lost answer: indexes -> the answer that
# stands, or None when the write was not applied (it may be sent again).
Confirm = Callable[[list[int]], dict[int, BatchAnswer | None]]


@dataclass(frozen=True)
class Copy:
    """One copy of a message: where it is and its Graph id there."""

    mailbox: str
    message_id: str
    folder: str
    received: str | None
    sent: str | None


class MailOperations:
    """One source's Graph session with what every right builds on. Holds per-connector state:
    folder names, the copies discovery saw, and the mailboxes found unsearchable."""

    def __init__(
        self, name: str, mapping: MailMapping, settings: MailSource, graph: GraphSession
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.settings = settings
        self.graph = graph
        self.requests = graph.requests
        self.stats = graph.stats
        self._folders: dict[str, dict[str, str]] = {}  # mailbox -> folder id -> display name
        # internetMessageId -> copies seen by discovery: lets an erasure right after discovery
        # skip the lookups. Holds ids of the subject's messages only.
        self.copies: dict[str, dict[tuple[str, str], Copy]] = defaultdict(dict)
        # Mailboxes Graph cannot search (guests, hybrid users on premises: 404
        # MailboxNotEnabledForRESTAPI) -> why; skipped, and said on every answer.
        self.unsearchable: dict[str, str] = {}

    # -- reading ----------------------------------------------------------------------------------

    def get(self, mailbox: str | None, kind: str, request: Request) -> dict[str, Any]:
        """A GET whose refusal makes the source unavailable."""
        try:
            return self.graph.fetch(mailbox, kind, request)
        except GraphError as exc:
            raise self.unavailable(mailbox, exc) from exc

    def unavailable(self, mailbox: str | None, exc: GraphError) -> SourceUnavailable:
        where = f"mailbox {mailbox}" if mailbox else "the tenant"
        return SourceUnavailable(self.name, f"{where}: Microsoft Graph answered {exc.describe()}")

    def items(self, mailbox: str | None, kind: str, request: Request) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following ``@odata.nextLink`` a page at a time."""
        return self.pages_of(mailbox, kind, self.get(mailbox, kind, request))

    def pages_of(
        self, mailbox: str | None, kind: str, page: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The items of ``page`` and of every page after it."""
        while True:
            yield from page.get("value") or []
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self.get(mailbox, kind, self.requests.url(link))

    def mailboxes(self) -> Iterator[str]:
        """The mapping's mailboxes, or every user of the tenant with a mail address."""
        if not self.mapping.mailboxes.all_users:
            yield from self.mapping.mailboxes.addresses
            return
        request = self.requests.list_users(["id", "mail", "userPrincipalName"], 999)
        for user in self.items(None, "users", request):
            # A user without a mail address has no Exchange mailbox to search. The mailbox is
            # addressed by userPrincipalName (/users/{id | userPrincipalName}): a guest's
            # ``mail`` is their address elsewhere, which Graph does not resolve.
            if user.get("mail"):
                yield user.get("userPrincipalName") or user["mail"]

    # -- folders ----------------------------------------------------------------------------------

    def folder_names(self, mailbox: str) -> dict[str, str]:
        """Folder id -> display name of the mailbox's top-level folders (read once)."""
        if mailbox not in self._folders:
            listing = self.items(
                mailbox, "folders", self.requests.folders(mailbox, _FOLDER_SELECT, 250)
            )
            self._folders[mailbox] = {f["id"]: f.get("displayName") or "" for f in listing}
        return self._folders[mailbox]

    def prefetch_folders(self, mailboxes: list[str]) -> None:
        """Folder names of up to 20 mailboxes in one ``$batch`` instead of a request each.

        A mailbox whose answer is not a complete first page is left to ``folder_names``.
        """
        wanted, requests = self.folder_requests(mailboxes)
        if not wanted:
            return
        try:
            answers = self.graph.send_batch(requests, "folders")
        except GraphError as exc:  # the $batch itself refused: no mailbox's folders known
            raise self.unavailable(None, exc) from exc
        for mailbox, answer in zip(wanted, answers, strict=True):
            self.take_folders(mailbox, answer)

    def folder_requests(self, mailboxes: list[str]) -> tuple[list[str], list[Request]]:
        """The mailboxes whose folder names are not known yet, and for each the request of
        its first page of top-level folders, to be sent in a ``$batch`` (``take_folders``)."""
        wanted = [m for m in dict.fromkeys(mailboxes) if m not in self._folders]
        return wanted, [self.requests.folders(m, _FOLDER_SELECT, 250) for m in wanted]

    def take_folders(self, mailbox: str, answer: BatchAnswer) -> None:
        """Keep the folder names a ``$batch`` item answered; an answer that is not a complete
        first page is left to ``folder_names``, which reads (and fails) on its own."""
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 200 and "@odata.nextLink" not in body:
            self._folders[mailbox] = {
                f["id"]: f.get("displayName") or "" for f in body.get("value") or []
            }

    def folder_name(self, mailbox: str, folder_id: str | None) -> str:
        """The display name of a message's folder. The listing holds top-level folders only;
        a child folder (``Inbox/Contracts``) is read by id once, so that holds on it apply."""
        names = self.folder_names(mailbox)
        if not folder_id:
            return "(unknown folder)"
        if folder_id not in names:
            request = self.requests.folder(mailbox, folder_id, _FOLDER_SELECT)
            found = self.get(mailbox, "folders", request)
            names[folder_id] = str(found.get("displayName") or "(unknown folder)")
        return names[folder_id]

    # -- mailboxes Graph cannot search ------------------------------------------------------------

    def note_unsearchable(self, mailbox: str, status: int | None, code: str | None) -> bool:
        """Whether Graph's answer says the user has no Exchange Online mailbox to search (a
        guest, or a hybrid user whose mailbox is on premises); if so it is noted, to be said."""
        if status != 404 or code != MAILBOX_NOT_ENABLED:
            return False
        self.unsearchable[mailbox] = (
            "no Exchange Online mailbox (a guest, or a mailbox on premises): Microsoft Graph "
            f"answered 404 {MAILBOX_NOT_ENABLED}"
        )
        return True

    def unsearchable_note(self) -> str | None:
        """One sentence on the mailboxes that could not be searched, for answers (the subject
        reads them: other people's addresses masked; the officer finds them in Exchange)."""
        if not self.unsearchable:
            return None
        names = ", ".join(sorted(mask_email(m.lower()) for m in self.unsearchable))
        return (
            f"{len(self.unsearchable)} mailbox(es) could not be searched through Microsoft "
            f"Graph ({names}: {MAILBOX_NOT_ENABLED}, a guest or a mailbox on premises); any "
            "copy there is not covered: search them in Exchange on premises or by eDiscovery"
        )

    # -- deleting ---------------------------------------------------------------------------------

    def delete(self, copies: list[tuple[str, Copy]]) -> list[int]:
        """Delete the copies ((record id, copy) pairs) the way the mapping's erasure mode says,
        in $batch requests of 20; the final status of each copy."""
        permanent = self.mapping.erasure.mode == ErasureMode.PERMANENT_DELETE
        requests = [
            self.requests.delete(copy.mailbox, copy.message_id, permanent=permanent)
            for _, copy in copies
        ]

        def confirm(indexes: list[int]) -> dict[int, BatchAnswer | None]:
            """After a lost answer, each copy read again by its id: a 404 ErrorItemNotFound for
            the exact item (found moments ago) is a confirmed absence, i.e. done (a move gives
            the message a new id); still there means not done: None, to send again."""
            reads = [
                self.requests.message(copies[i][1].mailbox, copies[i][1].message_id, ["id"])
                for i in indexes
            ]
            seen: dict[int, BatchAnswer | None] = {}
            for index, answer in zip(indexes, self.batched(reads, "lookup"), strict=True):
                if answer.status == 404 and answer.error_code == "ErrorItemNotFound":
                    seen[index] = BatchAnswer(204, {}, None)
                elif answer.status == 200:
                    seen[index] = None
                else:
                    seen[index] = answer
            return seen

        statuses = []
        for answer in self.batched(requests, "erase", confirm=confirm):
            status = answer.status
            if status == 404 and answer.error_code not in (None, "ErrorItemNotFound"):
                # Not "already gone" (e.g. ErrorInvalidUser): must not pass as done.
                status = 400
            statuses.append(status)
        return statuses

    def batched(
        self, requests: list[Request], kind: str, confirm: Confirm | None = None
    ) -> list[BatchAnswer]:
        """Send requests 20 to a ``$batch``; items throttled or failing with 5xx are sent again
        after their Retry-After, up to ``max_retries`` rounds (none when the Retry-After is
        longer than ``max_retry_wait_s``). The last answer of each: the caller decides what a
        429 or 5xx left standing means, never "nothing there".

        With ``confirm`` the requests are writes: a ``$batch`` whose answer is lost, and items
        answered 5xx, are not sent again blindly but looked at by ``confirm`` (indexes ->
        the answer that stands, or None if not applied, to send again); 429s are sent again.
        """
        answers: list[BatchAnswer | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        for round_number in range(self.settings.max_retries + 1):
            if round_number:
                self.stats.retries += 1
            retry: list[int] = []
            unsure: list[int] = []
            wait = 0.0
            for chunk in chunks(pending, BATCH_SIZE):
                if kind == "erase":
                    self.stats.erase_batches += 1
                try:
                    results = self.graph.send_batch(
                        [requests[i] for i in chunk], kind, write=confirm is not None
                    )
                except AmbiguousWrite as lost:
                    unsure += chunk
                    for index in chunk:
                        answers[index] = BatchAnswer(0, {}, {"error": {"code": lost.problem}})
                    continue
                except GraphError as exc:
                    raise self.unavailable(None, exc) from exc
                for index, answer in zip(chunk, results, strict=True):
                    answers[index] = answer
                    if confirm is not None and answer.status in _RETRYABLE_ITEM - {429}:
                        unsure.append(index)
                    elif answer.status in _RETRYABLE_ITEM:
                        retry.append(index)
                        wait = max(wait, retry_after_of(answer.headers))
            if unsure and confirm is not None:
                for index, seen in confirm(unsure).items():
                    if seen is None:
                        retry.append(index)  # not applied: it may go again
                    else:
                        answers[index] = seen
            pending = sorted(retry)
            if not pending or wait > self.settings.max_retry_wait_s:
                break  # done, or throttled for longer than is worth waiting: the caller says so
            self.graph.sleep(wait)
        return [a if a is not None else BatchAnswer(0, {}, None) for a in answers]
