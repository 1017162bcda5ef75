"""Finding a subject's mail, per mailbox (the mapping's list, or every user of the tenant):

1. one ``$search`` for all of the subject's addresses (``participants:"…"``, and the bare address
   for mentions in subject or body when the mapping asks); the first pages of up to 20
   mailboxes' searches in one JSON ``$batch`` (one item per mailbox), each mailbox's further
   pages followed through ``@odata.nextLink``: at most 20 first pages, then a page at a time,
   in memory; folder names read (one ``$batch``) only for mailboxes with hits;
2. every hit confirmed exactly (``connectors.mail.match``): Exchange's search is fuzzy;
3. attachments listed (names, types, sizes; content up to a cap if asked) for confirmed hits only,
   at most 4 requests in flight per mailbox.

Graph answers one ``$search`` with at most 1,000 results (no ``$skip``, no ``$filter`` beside
it): a search that reaches the cap is cut in two by the date received (KQL ``received>=`` /
``received<=``, whole days, at the median day of its hits) and each part searched again, until
every part is under the cap; a single day that still reaches it fails the source. A user without
an Exchange Online mailbox (404 ``MailboxNotEnabledForRESTAPI``) is skipped and noted.

Mail that names the subject only as ``sender`` or ``replyTo`` (not covered by KQL's
``participants``) is found through the participant index (``connectors.mail.index``) when the
mapping keeps one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from connectors.base import SourceUnavailable
from connectors.mail.client import GraphError, chunks, message_dict
from connectors.mail.index import ParticipantIndex
from connectors.mail.mapping import PlusAddressing, RecordPart
from connectors.mail.match import (
    PARTICIPANT_FIELDS,
    Matcher,
    body_text,
    graph_search_value,
    search_expression,
)
from connectors.mail.operations import BATCH_SIZE, Copy, MailOperations
from connectors.mail.records import MessageRecords
from connectors.third_parties import SourceContext
from dsrflow.records import Record
from dsrflow.request import Subject

SEARCH_RESULT_LIMIT = 1000  # Graph returns at most 1,000 results for one $search
MAX_SEARCH_PARTS = 2000  # date ranges for one mailbox before giving up (~5 years of busy days)
_SEARCH_SELECT = [
    "id",
    "subject",
    "receivedDateTime",
    "sentDateTime",
    "internetMessageId",
    "conversationId",
    "parentFolderId",
    "hasAttachments",
    *PARTICIPANT_FIELDS,
]
_ATTACHMENT_SELECT = ["id", "name", "contentType", "size", "isInline"]

Message = dict[str, Any]


def _day(value: object) -> dt.date | None:
    return dt.date.fromisoformat(value[:10]) if isinstance(value, str) and value else None


def received_within(kql: str, first: dt.date | None, last: dt.date | None) -> str:
    """``kql`` limited to mail received from ``first`` to ``last`` (whole days, either open).

    KQL's ``received`` takes dates and compares whole days (Exchange's searchable properties:
    https://learn.microsoft.com/exchange/security-and-compliance/ediscovery/
    message-properties-and-search-operators); ``$filter`` cannot do it: Graph refuses
    ``$search`` with ``$filter``."""
    limits = []
    if first is not None:
        limits.append(f"received>={first.isoformat()}")
    if last is not None:
        limits.append(f"received<={last.isoformat()}")
    return " AND ".join([f"({kql})", *limits]) if limits else kql


def split_day(
    days: Sequence[dt.date | None], first: dt.date | None, last: dt.date | None
) -> dt.date:
    """Where to cut [first, last] in two: the median day received of the capped search's hits,
    kept so that both halves ([first, day], [day + 1, last]) are smaller than the whole."""
    known = sorted(d for d in days if d is not None)
    today = dt.datetime.now(dt.UTC).date()
    pivot = known[len(known) // 2] if known else (first or last or today)
    if last is not None:
        pivot = min(pivot, last - dt.timedelta(days=1))
    if first is not None:
        pivot = max(pivot, first)
    return pivot


class MailDiscovery:
    """One discovery of a subject's mail over the source's operations."""

    def __init__(
        self,
        ops: MailOperations,
        subject: Subject,
        index: ParticipantIndex | None,
        context: SourceContext | None = None,
    ) -> None:
        self.ops = ops
        self.mapping = ops.mapping
        self.index = index
        self.addresses = list(subject.emails)
        self.plus_tags = self.mapping.matching.plus_addressing == PlusAddressing.SAME
        self.matcher = Matcher(self.addresses, fold_plus_tags=self.plus_tags)
        others = (context or SourceContext()).third_parties(
            subject, comparable=self.matcher.comparable
        )
        self.records = MessageRecords(ops.name, self.mapping, self.matcher, others)

    def run(self) -> Iterator[Record]:
        if not self.addresses:
            return
        self.ops.unsearchable.clear()
        kql = search_expression(
            self.addresses, self.mapping.matching.mentions, plus_tags=self.plus_tags
        )
        index_hits: dict[str, set[str]] = {}
        if self.index is not None:
            self.ops.stats.index_changes += self.index.sync(self.ops)  # this round's changes
            index_hits = self.index.lookup(self.matcher.wanted)
        for group in chunks(self.ops.mailboxes(), BATCH_SIZE):
            firsts = self._first_pages(group, kql)
            # Folder names only where there are hits to name: one $batch for the group.
            self.ops.prefetch_folders([m for m in group if (firsts.get(m) or {}).get("value")])
            for mailbox in group:
                first = firsts.pop(mailbox, None)
                if first is None:
                    continue  # no mailbox to search: noted in ops.unsearchable
                yield from self._mailbox(mailbox, kql, index_hits.get(mailbox, set()), first)

    def _first_pages(self, group: list[str], kql: str) -> dict[str, Message | None]:
        """The first page of each mailbox's search, up to 20 mailboxes in one ``$batch`` (one
        item per mailbox, so no mailbox has more than one of the batch's items in flight).
        Items Graph throttles or fails are sent again after their Retry-After (``batched``);
        one that still fails makes the source unavailable, never "nothing there". None for a
        user without a mailbox to search (noted)."""
        search = graph_search_value(kql)
        requests = [
            self.ops.requests.search(m, search, self._select(), self.ops.settings.page_size)
            for m in group
        ]
        self.ops.stats.searches += len(group)
        if len(group) == 1:
            try:
                return {group[0]: self.ops.graph.fetch(group[0], "search", requests[0])}
            except GraphError as exc:
                if not self.ops.note_unsearchable(group[0], exc.status, exc.code):
                    raise self.ops.unavailable(group[0], exc) from exc
                return {group[0]: None}
        pages: dict[str, Message | None] = {}
        for mailbox, answer in zip(group, self.ops.batched(requests, "search"), strict=True):
            if answer.status == 200 and isinstance(answer.body, dict):
                pages[mailbox] = answer.body
            elif self.ops.note_unsearchable(mailbox, answer.status, answer.error_code):
                pages[mailbox] = None
            else:
                raise self.ops.unavailable(mailbox, GraphError(answer.status, answer.error_code))
        return pages

    def _select(self) -> list[str]:
        parts = set(self.mapping.record.parts)
        if self.mapping.matching.mentions or RecordPart.BODY in parts:
            return [*_SEARCH_SELECT, "body"]
        return list(_SEARCH_SELECT)

    def _mailbox(
        self, mailbox: str, kql: str, indexed: set[str], page: Message
    ) -> Iterator[Record]:
        """Every confirmed hit in one mailbox (``page``: the first page of its whole search),
        the search split by date received until every part is under Graph's cap; a single day
        that still reaches it fails the source."""
        seen: set[str] = set()  # Graph ids of this mailbox's hits already handled
        parts: list[tuple[dt.date | None, dt.date | None]] = [(None, None)]
        first_page: Message | None = page
        while parts:
            first, last = parts.pop()
            hits = yield from self._search_part(mailbox, kql, first, last, seen, first_page)
            first_page = None
            if hits is None:
                return  # no mailbox to search: noted in ops.unsearchable
            if len(hits) < SEARCH_RESULT_LIMIT:
                continue
            if first is not None and first == last:
                raise SourceUnavailable(
                    self.ops.name,
                    f"mailbox {mailbox}: the search reached Graph's limit of "
                    f"{SEARCH_RESULT_LIMIT} results within one day ({first}), so the subject's "
                    "mail there cannot be listed completely",
                )
            if len(parts) + self.ops.stats.search_splits > MAX_SEARCH_PARTS:
                raise SourceUnavailable(
                    self.ops.name,
                    f"mailbox {mailbox}: the search needs more than {MAX_SEARCH_PARTS} date "
                    "ranges to stay under Graph's limit of 1,000 results",
                )
            pivot = split_day(hits, first, last)
            self.ops.stats.search_splits += 1
            parts += [(pivot + dt.timedelta(days=1), last), (first, pivot)]
        yield from self._indexed(mailbox, sorted(indexed - seen))

    def _indexed(self, mailbox: str, message_ids: list[str]) -> Iterator[Record]:
        """Messages the participant index names for the subject (as sender or replyTo) that the
        search did not return: each read and confirmed exactly, as a search hit is. One the index
        still names but Exchange no longer has (404 ErrorItemNotFound) is gone: the next delta
        round drops it."""
        for group in chunks(message_ids, self.ops.settings.page_size):
            found = []
            for message_id in group:
                request = self.ops.requests.message(mailbox, message_id, self._select())
                try:
                    found.append(message_dict(self.ops.graph.fetch(mailbox, "index", request)))
                except GraphError as exc:
                    if exc.item_not_found:
                        continue
                    raise self.ops.unavailable(mailbox, exc) from exc
            via = "named as sender or reply-to (participant index)"
            yield from self._confirmed(mailbox, found, via)

    def _search_part(
        self,
        mailbox: str,
        kql: str,
        first: dt.date | None,
        last: dt.date | None,
        seen: set[str],
        page: Message | None = None,
    ) -> Generator[Record, None, list[dt.date | None] | None]:
        """One ``$search`` (within [first, last] received, where given; ``page``: its first
        page, already read), followed page by page; yields the records of hits not seen before,
        returns the received days of all hits (None when the user has no mailbox to search)."""
        if page is None:
            search = graph_search_value(received_within(kql, first, last))
            request = self.ops.requests.search(
                mailbox, search, self._select(), self.ops.settings.page_size
            )
            self.ops.stats.searches += 1
            try:
                page = self.ops.graph.fetch(mailbox, "search", request)
            except GraphError as exc:
                if not self.ops.note_unsearchable(mailbox, exc.status, exc.code):
                    raise self.ops.unavailable(mailbox, exc) from exc
                return None
        days: list[dt.date | None] = []
        while True:
            self.ops.stats.pages += 1
            batch = [message_dict(m) for m in page.get("value") or []]
            days += [_day(m.get("receivedDateTime")) for m in batch]
            fresh = [m for m in batch if m["id"] not in seen]
            seen.update(m["id"] for m in fresh)
            yield from self._confirmed(mailbox, fresh, None)
            link = page.get("@odata.nextLink")
            if not link:
                return days
            del page, batch, fresh  # one page at a time
            page = self.ops.get(mailbox, "search", self.ops.requests.url(link))

    def _confirmed(
        self, mailbox: str, messages: list[Message], via: str | None
    ) -> Iterator[Record]:
        """The records of the messages that really hold the subject (``via``: how they were
        reached, when not by the search)."""
        confirmed = [(m, hit) for m in messages if (hit := self._confirm(m))[0]]
        attachments = self._attachments_of(mailbox, [m for m, _ in confirmed])
        for message, (matched, how) in confirmed:
            folder = self.ops.folder_name(mailbox, message.get("parentFolderId"))
            internet_id = message.get("internetMessageId")
            if internet_id:
                self.ops.copies[internet_id][(mailbox, message["id"])] = Copy(
                    mailbox,
                    message["id"],
                    folder,
                    message.get("receivedDateTime"),
                    message.get("sentDateTime"),
                )
            yield self.records.record(
                mailbox, folder, message, matched, how or via, attachments.get(message["id"])
            )

    def _confirm(self, message: Message) -> tuple[set[str], str | None]:
        """The subject's addresses the message really holds, and how (None: as a participant)."""
        found = self.matcher.in_participants(message)
        if found:
            return found, None
        if self.mapping.matching.mentions:
            text = body_text(message.get("body"))
            found = self.matcher.in_text(message.get("subject") or "", text)
            if found:
                return found, "mention in subject or body"
        return set(), None

    def _attachments_of(
        self, mailbox: str, messages: list[Message]
    ) -> dict[str, list[dict[str, Any]]]:
        if RecordPart.ATTACHMENTS not in self.mapping.record.parts:
            return {}
        wanted = [m["id"] for m in messages if m.get("hasAttachments")]
        if not wanted:
            return {}
        return self.ops.graph.run(self._fetch_attachments(mailbox, wanted))

    async def _fetch_attachments(
        self, mailbox: str, message_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        with_content = self.mapping.record.attachment_content
        cap = self.mapping.record.attachment_max_bytes
        select = None if with_content else _ATTACHMENT_SELECT

        async def one(message_id: str) -> tuple[str, list[dict[str, Any]]]:
            self.ops.stats.attachment_requests += 1
            request = self.ops.requests.attachments(mailbox, message_id, select)
            try:
                page = await self.ops.graph.fetch_async(mailbox, "attachments", request)
            except GraphError as exc:
                raise self.ops.unavailable(mailbox, exc) from exc
            items = []
            for attachment in page.get("value") or []:
                item: dict[str, Any] = {
                    "name": attachment.get("name"),
                    "contentType": attachment.get("contentType"),
                    "size": attachment.get("size"),
                }
                is_file = attachment.get("@odata.type") == "#microsoft.graph.fileAttachment"
                if with_content and is_file:
                    content = attachment.get("contentBytes")
                    fits = (attachment.get("size") or 0) <= cap and content is not None
                    item["content"] = content if fits else None
                    if not fits:
                        item["contentOmitted"] = f"larger than {cap} bytes"
                items.append(item)
            return message_id, items

        # GraphSession.call holds the mailbox semaphore: at most 4 of these in flight.
        return dict(await asyncio.gather(*(one(i) for i in message_ids)))
