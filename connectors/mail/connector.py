"""Office 365 mail through Microsoft Graph (msgraph-sdk), driven by a mail mapping.

Discovery, per mailbox (the mapping's list, or every user of the tenant via ``GET /users``):

1. one ``$search`` for all of the subject's addresses (``participants:"…"``, and the bare address
   for mentions in subject or body when the mapping asks), followed page by page through
   ``@odata.nextLink``: a page at a time in memory (requests built by msgraph-sdk's request
   builders and sent through its adapter, pages read as Graph JSON: ``connectors.mail.client``);
2. every hit confirmed exactly (``connectors.mail.match``): Exchange's search is fuzzy;
3. attachments listed (names, types, sizes; content up to a cap if asked) for confirmed hits only,
   at most 4 requests in flight per mailbox.

A record's ``native_id`` is the message's ``internetMessageId`` and its location is ``messages``:
the same message in several mailboxes gives records with one id, which the merge folds into one;
each copy names its mailbox and folder in ``fields["locations"]``.

Erasure deletes every copy of a planned message (``permanentDelete`` or a move to Deleted
Items), 20 per JSON ``$batch`` (the body built here, item URLs relative to the version root),
reading each item's status; a 404 ``ErrorItemNotFound`` means already gone. Exchange keeps a
permanently deleted item in Recoverable Items (Purges) for the mailbox's deleted-item retention,
indefinitely under a hold: each result's ``remains`` says so, and what finishes it. Copies in
a folder under a legal hold are kept and reported. The copies come from the discovery this
connector just ran or, for a plan made earlier, from ``$filter`` lookups by internetMessageId in
every mailbox (10 ids to a filter, 20 filters to a ``$batch``). Rectifying or redacting a sent
message is not applicable: such actions are reported as skipped, with why.

Throttling: at most 4 requests in flight per mailbox; 429/503/504 retried by the SDK honouring
``Retry-After``, 500/502 retried here; a source that keeps failing raises ``SourceUnavailable``
(never a partial answer reported as complete).

Graph answers one ``$search`` with at most 1,000 results (no ``$skip``, no ``$filter`` beside
it): a search that reaches the cap is cut in two by the date received (KQL ``received>=`` /
``received<=``, whole days, at the median day of its hits) and each part searched again, until
every part is under the cap; a single day that still reaches it fails the source. A user without
an Exchange Online mailbox (404 ``MailboxNotEnabledForRESTAPI``: guests, hybrid users on
premises) is skipped and named in ``unsearchable`` and on every erasure result.

A real tenant: an app registration with the Graph application permissions ``Mail.ReadWrite``
(read and delete mail) and ``User.Read.All`` (list mailboxes, for ``all_users``), admin consent
granted, and a client secret kept in an environment variable or a Prefect Secret block. To keep
the app away from other mailboxes, name them in the mapping and restrict the app in Exchange
Online with an application access policy (``New-ApplicationAccessPolicy -AppId <client id>
-PolicyScopeGroupId <mail-enabled security group holding those mailboxes> -AccessRight
RestrictAccess``; check with ``Test-ApplicationAccessPolicy``).

Mail that names the subject only as ``sender`` or ``replyTo`` (not covered by KQL's
``participants``) is found through the participant index (``connectors.mail.index``) when the
mapping keeps one (``matching.participant_index``).

The retention sweep (``sweep``) applies the mapping's ``retention`` rules: old mail is listed
folder by folder with a date ``$filter`` and deleted as erasure deletes
(``connectors.mail.retention``).

Nothing about contents is logged: counts only, in ``self.stats``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.item.mail_folders.item.mail_folder_item_request_builder import (
    MailFolderItemRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
    MailFoldersRequestBuilder,
)
from msgraph.generated.users.item.messages.item.attachments.attachments_request_builder import (
    AttachmentsRequestBuilder,
)
from msgraph.generated.users.item.messages.item.message_item_request_builder import (
    MessageItemRequestBuilder,
)
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from connectors.base import Capability, Closing, SourceUnavailable, SweepResult
from connectors.mail.client import (
    GRAPH_SCOPE,
    BatchAnswer,
    GraphSession,
    chunks,
    describe_error,
    error_code_of,
    message_dict,
    retry_after_of,
)
from connectors.mail.index import ParticipantIndex
from connectors.mail.mapping import ErasureMode, MailMapping, PlusAddressing, RecordPart
from connectors.mail.match import (
    PARTICIPANT_FIELDS,
    Matcher,
    body_text,
    graph_search_value,
    participants,
    search_expression,
)
from connectors.mail.settings import MailSource
from connectors.writes import AmbiguousWrite
from dsrflow.identifiers import mask_email
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
from dsrflow.records import Record
from dsrflow.request import RequestType, Subject

LOCATION = "messages"
SEARCH_RESULT_LIMIT = 1000  # Graph returns at most 1,000 results for one $search
MAILBOX_NOT_ENABLED = "MailboxNotEnabledForRESTAPI"
MAX_SEARCH_PARTS = 2000  # date ranges for one mailbox before giving up (~5 years of busy days)
BATCH_SIZE = 20  # JSON batching's limit
LOOKUP_IDS_PER_FILTER = 10
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
_RETRYABLE_ITEM = {429, 500, 502, 503, 504}
# Graph application permissions (the ``roles`` of an app-only token), each with the ones that
# include it. Reading mail, listing users (all_users), deleting mail (erasure).
_READ_MAIL = ("Mail.Read", "Mail.ReadWrite")
_WRITE_MAIL = ("Mail.ReadWrite",)
_READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All")
_ID_ONLY = RequestConfiguration(
    query_parameters=MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        select=["id"]
    )
)


# The SDK's query-parameter classes, by shorter names.
_UsersQuery = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters
_FoldersQuery = MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters
_FolderQuery = MailFolderItemRequestBuilder.MailFolderItemRequestBuilderGetQueryParameters
_MessagesQuery = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters
_AttachmentsQuery = AttachmentsRequestBuilder.AttachmentsRequestBuilderGetQueryParameters


def token_roles(token: str) -> set[str] | None:
    """The ``roles`` claim of an app-only access token (a JWT: its application permissions);
    None for a token that is no JWT. Read, not verified: Graph verifies it on every request."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return {str(r) for r in roles} if isinstance(roles, list) else set()


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
    pivot = known[len(known) // 2] if known else (first or last or dt.date.today())
    if last is not None:
        pivot = min(pivot, last - dt.timedelta(days=1))
    if first is not None:
        pivot = max(pivot, first)
    return pivot


@dataclass(frozen=True)
class Copy:
    """One copy of a message: where it is and its Graph id there."""

    mailbox: str
    message_id: str
    folder: str
    received: str | None
    sent: str | None


class MailConnector(Closing):
    """Finds and erases a subject's mail in Exchange Online, as its mapping describes it."""

    capabilities = frozenset({Capability.DISCOVER, Capability.ERASE, Capability.SWEEP})

    def __init__(
        self,
        name: str,
        mapping: MailMapping,
        settings: MailSource,
        *,
        retry_delay_s: float = 3.0,
        credential: Any | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.settings = settings
        self.graph = GraphSession(
            name, settings, retry_delay_s=retry_delay_s, credential=credential
        )
        self.stats = self.graph.stats
        self._folders: dict[str, dict[str, str]] = {}  # mailbox -> folder id -> display name
        # internetMessageId -> copies seen by discovery: lets an erasure right after discovery
        # skip the lookups. Holds ids of the subject's messages only.
        self._copies: dict[str, dict[tuple[str, str], Copy]] = defaultdict(dict)
        self._matcher: Matcher | None = None  # the subject of the discovery under way
        # Mailboxes Graph cannot search (guests, hybrid users on premises: 404
        # MailboxNotEnabledForRESTAPI) -> why; skipped, and said on every answer.
        self.unsearchable: dict[str, str] = {}
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

    # -- preflight ----------------------------------------------------------------------------

    def preflight(self, right: RequestType) -> list[str]:
        """The app's Graph permissions (from its token's roles) against what ``right`` needs,
        and every mapped mailbox reachable (or, for all_users, the tenant's users listable)."""
        problems = self._permission_problems(right)
        folders = self.graph.client.users
        if self.mapping.mailboxes.all_users and not any("User.Read.All" in p for p in problems):
            # (Without the permission the listing is refused: said once, above.)
            try:
                next(iter(self.mailboxes()), None)  # the first page of GET /users
            except SourceUnavailable as exc:
                problems.append(f"the tenant's users cannot be listed: {exc.reason}")
        for index, address in enumerate(self.mapping.mailboxes.addresses):
            builder = folders.by_user_id(address).mail_folders
            config = RequestConfiguration(query_parameters=_FoldersQuery(select=["id"], top=1))
            try:
                self._get(address, "folders", builder.to_get_request_information(config))
            except SourceUnavailable as exc:
                problems.append(
                    f"mapping {self.settings.mapping} mailboxes.addresses.{index}: {exc.reason}"
                )
        return problems

    def _permission_problems(self, right: RequestType) -> list[str]:
        from azure.core.exceptions import AzureError

        try:
            token = self.graph.run(self.graph.credential.get_token(GRAPH_SCOPE)).token
        except AzureError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return [f"no token for the app (tenant_id, client_id, client_secret): {first}"]
        roles = token_roles(token)
        if roles is None:
            return []  # the sandbox's static token carries no roles to check
        needs = [_READ_MAIL] + ([_READ_USERS] if self.mapping.mailboxes.all_users else [])
        if right is RequestType.ERASURE:
            needs.append(_WRITE_MAIL)
        return [
            f"the app lacks the Graph application permission {any_of[0]} (admin consent "
            f"granted), which {right.value} needs"
            for any_of in needs
            if not roles & set(any_of)
        ]

    # -- mailboxes and folders ----------------------------------------------------------------

    def mailboxes(self) -> Iterator[str]:
        if not self.mapping.mailboxes.all_users:
            yield from self.mapping.mailboxes.addresses
            return
        users = self.graph.client.users
        config = RequestConfiguration(
            query_parameters=_UsersQuery(select=["id", "mail", "userPrincipalName"], top=999)
        )
        for user in self.items(None, "users", users, users.to_get_request_information(config)):
            # A user without a mail address has no Exchange mailbox to search. The mailbox is
            # addressed by userPrincipalName (/users/{id | userPrincipalName}): a guest's
            # ``mail`` is their address elsewhere, which Graph does not resolve.
            if user.get("mail"):
                yield user.get("userPrincipalName") or user["mail"]

    def items(
        self, mailbox: str | None, kind: str, builder: Any, request: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following ``@odata.nextLink`` a page at a time."""
        page = self._get(mailbox, kind, request)
        while True:
            yield from page.get("value") or []
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self._get(mailbox, kind, builder.with_url(link).to_get_request_information())

    def _folder_names(self, mailbox: str) -> dict[str, str]:
        if mailbox not in self._folders:
            folders = self.graph.client.users.by_user_id(mailbox).mail_folders
            config = RequestConfiguration(
                query_parameters=_FoldersQuery(select=["id", "displayName"], top=250)
            )
            listing = self.items(
                mailbox, "folders", folders, folders.to_get_request_information(config)
            )
            self._folders[mailbox] = {f["id"]: f.get("displayName") or "" for f in listing}
        return self._folders[mailbox]

    def _prefetch_folders(self, mailboxes: list[str]) -> None:
        """Folder names of up to 20 mailboxes in one ``$batch`` instead of a request each.

        A mailbox whose answer is not a complete first page is left to ``_folder_names``.
        """
        wanted = [m for m in mailboxes if m not in self._folders]
        if not wanted:
            return
        config = RequestConfiguration(
            query_parameters=_FoldersQuery(select=["id", "displayName"], top=250)
        )
        users = self.graph.client.users
        requests = [
            users.by_user_id(m).mail_folders.to_get_request_information(config) for m in wanted
        ]
        try:
            answers = self.graph.run(self.graph.batch(requests, "folders"))
        except APIError as exc:  # the $batch itself refused: no mailbox's folders known
            raise self._unavailable(None, exc) from exc
        for mailbox, answer in zip(wanted, answers, strict=True):
            body = answer.body if isinstance(answer.body, dict) else {}
            if answer.status == 200 and "@odata.nextLink" not in body:
                self._folders[mailbox] = {
                    f["id"]: f.get("displayName") or "" for f in body.get("value") or []
                }

    def _folder_name(self, mailbox: str, folder_id: str | None) -> str:
        """The display name of a message's folder. The listing holds top-level folders only;
        a child folder (``Inbox/Contracts``) is read by id once, so that holds on it apply."""
        names = self._folder_names(mailbox)
        if not folder_id:
            return "(unknown folder)"
        if folder_id not in names:
            folder = self.graph.client.users.by_user_id(mailbox).mail_folders.by_mail_folder_id(
                folder_id
            )
            config = RequestConfiguration(
                query_parameters=_FolderQuery(select=["id", "displayName"])
            )
            found = self._get(mailbox, "folders", folder.to_get_request_information(config))
            names[folder_id] = found.get("displayName") or "(unknown folder)"
        return names[folder_id]

    # -- discovery ------------------------------------------------------------------------------

    def discover(self, subject: Subject) -> Iterator[Record]:
        addresses = list(subject.emails)
        if not addresses:
            return
        matcher = Matcher(
            addresses,
            fold_plus_tags=self.mapping.matching.plus_addressing == PlusAddressing.SAME,
        )
        self._matcher = matcher
        self.unsearchable = {}
        kql = search_expression(
            addresses,
            self.mapping.matching.mentions,
            plus_tags=self.mapping.matching.plus_addressing == PlusAddressing.SAME,
        )
        index_hits: dict[str, set[str]] = {}
        if self.index is not None:
            self.stats.index_changes += self.index.sync(self)  # this round's changes only
            index_hits = self.index.lookup(matcher.wanted)
        for group in chunks(self.mailboxes(), BATCH_SIZE):
            self._prefetch_folders(group)
            for mailbox in group:
                yield from self._discover_mailbox(
                    mailbox, kql, matcher, index_hits.get(mailbox, set())
                )

    def _search_select(self) -> list[str]:
        parts = set(self.mapping.record.parts)
        if self.mapping.matching.mentions or RecordPart.BODY in parts:
            return [*_SEARCH_SELECT, "body"]
        return list(_SEARCH_SELECT)

    def _discover_mailbox(
        self, mailbox: str, kql: str, matcher: Matcher, indexed: set[str]
    ) -> Iterator[Record]:
        """Every confirmed hit in one mailbox. Graph answers a ``$search`` with at most 1,000
        results, so a search that reaches the cap is split by the date received (KQL
        ``received`` ranges, whole days) and each part searched again, until every part is
        under the cap; a single day that still reaches it fails the source."""
        seen: set[str] = set()  # Graph ids of this mailbox's hits already handled
        parts: list[tuple[dt.date | None, dt.date | None]] = [(None, None)]
        while parts:
            first, last = parts.pop()
            hits = yield from self._search_part(mailbox, kql, first, last, matcher, seen)
            if hits is None:
                return  # no mailbox to search: noted in self.unsearchable
            if len(hits) < SEARCH_RESULT_LIMIT:
                continue
            if first is not None and first == last:
                raise SourceUnavailable(
                    self.name,
                    f"mailbox {mailbox}: the search reached Graph's limit of "
                    f"{SEARCH_RESULT_LIMIT} results within one day ({first}), so the subject's "
                    "mail there cannot be listed completely",
                )
            if len(parts) + self.stats.search_splits > MAX_SEARCH_PARTS:
                raise SourceUnavailable(
                    self.name,
                    f"mailbox {mailbox}: the search needs more than {MAX_SEARCH_PARTS} date "
                    "ranges to stay under Graph's limit of 1,000 results",
                )
            pivot = split_day(hits, first, last)
            self.stats.search_splits += 1
            parts += [(pivot + dt.timedelta(days=1), last), (first, pivot)]
        yield from self._indexed(mailbox, sorted(indexed - seen), matcher)

    def _indexed(self, mailbox: str, message_ids: list[str], matcher: Matcher) -> Iterator[Record]:
        """Messages the participant index names for the subject (as sender or replyTo) that the
        search did not return: each read and confirmed exactly, as a search hit is. One the index
        still names but Exchange no longer has (404 ErrorItemNotFound) is gone: the next delta
        round drops it."""
        builder = self.graph.client.users.by_user_id(mailbox).messages
        config = RequestConfiguration(
            query_parameters=MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
                select=self._search_select()
            )
        )
        for group in chunks(message_ids, self.settings.page_size):
            found = []
            for message_id in group:
                info = builder.by_message_id(message_id).to_get_request_information(config)
                try:
                    found.append(message_dict(self._get_raw(mailbox, "index", info)))
                except APIError as exc:
                    if (
                        exc.response_status_code == 404
                        and error_code_of(exc) == "ErrorItemNotFound"
                    ):
                        continue
                    raise self._unavailable(mailbox, exc) from exc
            confirmed = [(m, hit) for m in found if (hit := self._confirm(m, matcher))[0]]
            attachments = self._attachments_of(mailbox, [m for m, _ in confirmed])
            for message, (matched, via) in confirmed:
                via = via or "named as sender or reply-to (participant index)"
                yield self._record(mailbox, message, matched, via, attachments.get(message["id"]))

    def _search_part(
        self,
        mailbox: str,
        kql: str,
        first: dt.date | None,
        last: dt.date | None,
        matcher: Matcher,
        seen: set[str],
    ) -> Iterator[Record]:
        """One ``$search`` (within [first, last] received, where given), followed page by page;
        yields the records of hits not seen before, returns the received days of all hits (None
        when the user has no mailbox to search)."""
        messages = self.graph.client.users.by_user_id(mailbox).messages
        config = RequestConfiguration(
            query_parameters=_MessagesQuery(
                search=graph_search_value(received_within(kql, first, last)),
                select=self._search_select(),
                top=self.settings.page_size,
            )
        )
        self.stats.searches += 1
        try:
            page = self.graph.run(
                self.graph.get_json(mailbox, "search", messages.to_get_request_information(config))
            )
        except APIError as exc:
            if not self._note_unsearchable(mailbox, exc.response_status_code, error_code_of(exc)):
                raise self._unavailable(mailbox, exc) from exc
            return None
        days: list[dt.date | None] = []
        while True:
            self.stats.pages += 1
            batch = [message_dict(m) for m in page.get("value") or []]
            days += [_day(m.get("receivedDateTime")) for m in batch]
            fresh = [m for m in batch if m["id"] not in seen]
            seen.update(m["id"] for m in fresh)
            confirmed = [(m, found) for m in fresh if (found := self._confirm(m, matcher))[0]]
            attachments = self._attachments_of(mailbox, [m for m, _ in confirmed])
            for message, (matched, via) in confirmed:
                yield self._record(mailbox, message, matched, via, attachments.get(message["id"]))
            link = page.get("@odata.nextLink")
            if not link:
                return days
            del page, batch, fresh, confirmed, attachments  # one page at a time
            page = self._get(
                mailbox, "search", messages.with_url(link).to_get_request_information()
            )

    def _note_unsearchable(self, mailbox: str, status: int | None, code: str | None) -> bool:
        """Whether Graph's answer says the user has no Exchange Online mailbox to search (a
        guest, or a hybrid user whose mailbox is on premises); if so it is noted, to be said."""
        if status != 404 or code != MAILBOX_NOT_ENABLED:
            return False
        self.unsearchable[mailbox] = (
            "no Exchange Online mailbox (a guest, or a mailbox on premises): Microsoft Graph "
            f"answered 404 {MAILBOX_NOT_ENABLED}"
        )
        return True

    @property
    def not_searched(self) -> list[str]:
        """What the last discovery could not search, for the answer (``discover_source``)."""
        note = self.unsearchable_note()
        return [note] if note else []

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

    def _confirm(self, message: dict[str, Any], matcher: Matcher) -> tuple[set[str], str | None]:
        """The subject's addresses the message really holds, and how (None: as a participant)."""
        found = matcher.in_participants(message)
        if found:
            return found, None
        if self.mapping.matching.mentions:
            found = matcher.in_text(message.get("subject") or "", body_text(message.get("body")))
            if found:
                return found, "mention in subject or body"
        return set(), None

    def _attachments_of(
        self, mailbox: str, messages: list[dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        if RecordPart.ATTACHMENTS not in self.mapping.record.parts:
            return {}
        wanted = [m["id"] for m in messages if m.get("hasAttachments")]
        if not wanted:
            return {}
        return self.graph.run(self._fetch_attachments(mailbox, wanted))

    async def _fetch_attachments(
        self, mailbox: str, message_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        with_content = self.mapping.record.attachment_content
        cap = self.mapping.record.attachment_max_bytes
        select = None if with_content else ["id", "name", "contentType", "size", "isInline"]
        config = RequestConfiguration(query_parameters=_AttachmentsQuery(select=select))
        builder = self.graph.client.users.by_user_id(mailbox).messages

        async def one(message_id: str) -> tuple[str, list[dict[str, Any]]]:
            self.stats.attachment_requests += 1
            info = builder.by_message_id(message_id).attachments.to_get_request_information(config)
            try:
                page = await self.graph.get_json(mailbox, "attachments", info)
            except APIError as exc:
                raise self._unavailable(mailbox, exc) from exc
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

    def _record(
        self,
        mailbox: str,
        message: dict[str, Any],
        matched: set[str],
        via: str | None,
        attachments: list[dict[str, Any]] | None,
    ) -> Record:
        parts = set(self.mapping.record.parts)
        categories = self.mapping.field_categories
        folder = self._folder_name(mailbox, message.get("parentFolderId"))
        internet_id = message.get("internetMessageId")
        if internet_id:
            self._copies[internet_id][(mailbox, message["id"])] = Copy(
                mailbox,
                message["id"],
                folder,
                message.get("receivedDateTime"),
                message.get("sentDateTime"),
            )
        fields: dict[str, Any] = {"locations": [f"{mailbox}/{folder}"]}
        cats: dict[str, str] = {"locations": categories.folder}
        if RecordPart.FOLDER in parts:
            fields |= {"mailbox": mailbox, "folder": folder}
            cats |= {"mailbox": categories.folder, "folder": categories.folder}
        if RecordPart.SUBJECT in parts:
            fields["subject"] = message.get("subject")
            cats["subject"] = categories.subject
        timestamps = {}
        if RecordPart.DATES in parts:
            for name in ("sentDateTime", "receivedDateTime"):
                fields[name] = message.get(name)
                cats[name] = categories.dates
                if message.get(name):
                    timestamps[name] = message[name]
        others = self._others(message)
        if RecordPart.PARTICIPANTS in parts:
            for name in PARTICIPANT_FIELDS:
                fields[name] = self._people(message.get(name))
                cats[name] = categories.participants
        if RecordPart.BODY in parts:
            fields["body"] = body_text(message.get("body"))
            cats["body"] = categories.body
        if RecordPart.ATTACHMENTS in parts:
            fields["attachments"] = attachments or []
            cats["attachments"] = categories.attachments
        native_id = (
            {"internetMessageId": internet_id}
            if internet_id
            else {"mailbox": mailbox, "id": message["id"]}
        )
        return Record(
            source=self.name,
            location=LOCATION,
            native_id=native_id,
            categories=cats,
            fields=fields,
            matched=tuple(sorted(f"email:{a}" for a in matched)),
            reached_via=via,
            timestamps=timestamps,
            shared=bool(others),
            shared_with=tuple(sorted(others)),
        )

    def _is_subject(self, address: object) -> bool:
        """Whether ``address`` is one of the subject's (any of them, not only those matched)."""
        return self._matcher is not None and self._matcher.subject_address(address) is not None

    def _others(self, message: dict[str, Any]) -> set[str]:
        """The participant fields that name someone other than the subject (Art. 15(4))."""
        others = set()
        for name in PARTICIPANT_FIELDS:
            if name == "sender":
                continue  # the sender is the from address, or a delegate acting for it
            for person in participants({name: message.get(name)}):
                if not self._is_subject(person.get("address")):
                    others.add(name)
        return others

    def _people(self, value: Any) -> Any:
        """Participants as ``{"name", "address"}``; other people masked unless the mapping
        turns that off."""
        people = [
            {"name": e.get("name"), "address": e.get("address")}
            for entry in (value if isinstance(value, list) else [value])
            if isinstance(entry, dict) and (e := entry.get("emailAddress"))
        ]
        mask = self.mapping.record.mask_other_participants
        out = []
        for person in people:
            address = str(person.get("address") or "")
            if mask and not self._is_subject(address):
                name = str(person.get("name") or "")
                person = {
                    "name": f"{name[:1]}***" if name else None,
                    "address": mask_email(address.lower()) if "@" in address else "***",
                }
            out.append(person)
        if isinstance(value, list):
            return out
        return out[0] if out else None

    # -- erasure --------------------------------------------------------------------------------

    def erase(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        report = ExecutionReport(source=self.name)
        deletes: list[PlannedAction] = []
        for action in actions:
            if action.source != self.name:
                continue
            if action.action == Action.DELETE:
                deletes.append(action)
            elif action.action == Action.KEEP:
                report.results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail=f"kept: {action.reason or 'by the plan'}",
                    )
                )
            else:
                report.results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail=f"{action.action.value} is not applicable to mail: a message "
                        "cannot be changed once sent; it can only be kept or deleted",
                    )
                )
        if deletes:
            report.results.extend(self._erase_messages(deletes))
            if self.index is not None:
                self.index.sync(self)  # deleted mail leaves the index with the subject's entries
        return report

    def _erase_messages(self, actions: list[PlannedAction]) -> list[ActionResult]:
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
                    if until > today:
                        held[action.record_id].append(
                            f"{copy.mailbox}/{copy.folder}: {hold.reason}, until {until}"
                        )
                        continue
                to_delete.append((action.record_id, copy))
        statuses_of: dict[str, list[int]] = defaultdict(list)
        statuses = self._delete(to_delete)
        for (record_id, _), status in zip(to_delete, statuses, strict=True):
            statuses_of[record_id].append(status)
        results = []
        for action in actions:
            mine = statuses_of[action.record_id]
            failed = [s for s in mine if s not in (200, 204, 404)]
            if failed:
                outcome, detail = Outcome.FAILED, f"{len(failed)} copy/copies failed: {failed}"
            elif held[action.record_id]:
                done = sum(s in (200, 204) for s in mine)
                outcome = Outcome.SKIPPED
                detail = "kept under legal hold: " + "; ".join(held[action.record_id])
                if done:
                    detail += f" ({done} other copy/copies deleted)"
            elif any(s in (200, 204) for s in mine):
                outcome, detail = Outcome.DONE, f"{len(mine)} copy/copies {self._verb()}"
            else:
                outcome, detail = Outcome.ALREADY_DONE, "no copy left in any searchable mailbox"
            done = [
                c
                for (r, c), st in zip(to_delete, statuses, strict=True)
                if r == action.record_id and st in (200, 204)
            ]
            remains = [self._remains(done), self.unsearchable_note()]
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
            self._copies.pop(str(action.native_id.get("internetMessageId")), None)
        return results

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

    def _resolve(self, actions: list[PlannedAction]) -> dict[str, list[Copy]]:
        """Every copy of each planned message, by record id: from discovery if this connector
        just saw them, otherwise looked up by internetMessageId in every mailbox."""
        found: dict[str, list[Copy]] = {}
        unknown: dict[str, str] = {}  # internetMessageId -> record id
        for action in actions:
            internet_id = action.native_id.get("internetMessageId")
            if internet_id and internet_id in self._copies:
                found[action.record_id] = list(self._copies[internet_id].values())
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
            mailboxes = list(self.mailboxes())
            wanted = self._where_to_look(actions, unknown, mailboxes)
            for group in chunks(sorted(wanted), BATCH_SIZE):
                self._prefetch_folders(group)  # for the hold check of each copy found
            for mailbox, data in self._lookup(wanted):
                copy = Copy(
                    mailbox,
                    data["id"],
                    self._folder_name(mailbox, data.get("parentFolderId")),
                    data.get("receivedDateTime"),
                    data.get("sentDateTime"),
                )
                found.setdefault(unknown[data["internetMessageId"]], []).append(copy)
        return found

    def _read_copy(self, mailbox: str, message_id: str) -> Copy | None:
        item = self.graph.client.users.by_user_id(mailbox).messages.by_message_id(message_id)
        config = RequestConfiguration(
            query_parameters=MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
                select=["id", "parentFolderId", "receivedDateTime", "sentDateTime"]
            )
        )
        try:
            raw = self.graph.run(
                self.graph.get_json(mailbox, "lookup", item.to_get_request_information(config))
            )
        except APIError as exc:
            # Only Exchange's own not-found for this exact item is absence; a 404 such as
            # MailboxNotEnabledForRESTAPI or ErrorInvalidUser says nothing about the message.
            if exc.response_status_code == 404 and error_code_of(exc) == "ErrorItemNotFound":
                return None
            raise self._unavailable(mailbox, exc) from exc
        data = message_dict(raw)
        folder = self._folder_name(mailbox, data.get("parentFolderId"))
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
        a batch's requests in parallel, and Exchange allows 4 per mailbox).
        """
        select = ["id", "internetMessageId", "parentFolderId", "receivedDateTime", "sentDateTime"]
        users = self.graph.client.users
        planned: list[tuple[str, set[str]]] = []
        requests = []
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
                config = RequestConfiguration(
                    query_parameters=_MessagesQuery(filter=clause, select=select, top=1000)
                )
                planned.append((mailbox, set(chunk)))
                requests.append(
                    users.by_user_id(mailbox).messages.to_get_request_information(config)
                )
        self.stats.lookups += len(requests)
        found = []
        for (mailbox, wanted), answer in zip(
            planned, self._batched(requests, "lookup"), strict=True
        ):
            if self._note_unsearchable(mailbox, answer.status, answer.error_code):
                continue
            if answer.status != 200:
                raise SourceUnavailable(
                    self.name,
                    f"mailbox {mailbox}: looking up messages to erase failed with HTTP "
                    f"{answer.status} {answer.error_code or ''}".rstrip(),
                )
            for data in (answer.body or {}).get("value") or []:
                if data.get("internetMessageId") in wanted:
                    found.append((mailbox, data))
        return found

    def _delete(self, copies: list[tuple[str, Copy]]) -> list[int]:
        """Delete the copies in $batch requests of 20; the final status of each copy."""
        users = self.graph.client.users
        requests = []
        for _, copy in copies:
            item = users.by_user_id(copy.mailbox).messages.by_message_id(copy.message_id)
            if self.mapping.erasure.mode == ErasureMode.PERMANENT_DELETE:
                requests.append(item.permanent_delete.to_post_request_information())
            else:
                requests.append(item.to_delete_request_information())

        def confirm(indexes: list[int]) -> dict[int, BatchAnswer | None]:
            """After a lost answer, each copy read again by its id: a 404 ErrorItemNotFound for
            the exact item (found moments ago) is a confirmed absence, i.e. done (a move gives
            the message a new id); still there means not done: None, to send again."""
            reads = [
                users.by_user_id(copies[i][1].mailbox)
                .messages.by_message_id(copies[i][1].message_id)
                .to_get_request_information(_ID_ONLY)
                for i in indexes
            ]
            seen: dict[int, BatchAnswer | None] = {}
            for index, answer in zip(indexes, self._batched(reads, "lookup"), strict=True):
                if answer.status == 404 and answer.error_code == "ErrorItemNotFound":
                    seen[index] = BatchAnswer(204, {}, None)
                elif answer.status == 200:
                    seen[index] = None
                else:
                    seen[index] = answer
            return seen

        statuses = []
        for answer in self._batched(requests, "erase", confirm=confirm):
            status = answer.status
            if status == 404 and answer.error_code not in (None, "ErrorItemNotFound"):
                # Not "already gone" (e.g. ErrorInvalidUser): must not pass as done.
                status = 400
            statuses.append(status)
        return statuses

    def _batched(
        self,
        requests: list[Any],
        kind: str,
        confirm: Callable[[list[int]], dict[int, BatchAnswer | None]] | None = None,
    ) -> list[BatchAnswer]:
        """Send requests 20 to a ``$batch``; items throttled or failing with 5xx are sent again
        after their Retry-After, up to ``max_retries`` rounds. The last answer of each.

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
                    results = self.graph.run(
                        self.graph.batch(
                            [requests[i] for i in chunk], kind, write=confirm is not None
                        )
                    )
                except AmbiguousWrite as lost:
                    unsure += chunk
                    for index in chunk:
                        answers[index] = BatchAnswer(0, {}, {"error": {"code": lost.problem}})
                    continue
                except APIError as exc:
                    raise self._unavailable(None, exc) from exc
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
            if not pending:
                break
            self.graph.run(asyncio.sleep(min(wait, 60.0)))
        return [a if a is not None else BatchAnswer(0, {}, None) for a in answers]

    # -- retention ------------------------------------------------------------------------------

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
        # Imported here: mail_retention builds on this module.
        from connectors.mail.retention import MailRetention

        results = MailRetention(self).sweep(now, dry_run=dry_run, protected=protected)
        if self.index is not None and not dry_run:
            # The scheduled run that keeps the participant index's rounds short.
            self.index.sync(self)
        return results

    # -- running SDK calls ----------------------------------------------------------------------

    def _get_raw(self, mailbox: str | None, kind: str, request: Any) -> dict[str, Any]:
        """A GET whose APIError the caller reads (e.g. a 404 that is a confirmed absence)."""
        return self.graph.run(self.graph.get_json(mailbox, kind, request))

    def _get(self, mailbox: str | None, kind: str, request: Any) -> dict[str, Any]:
        try:
            return self.graph.run(self.graph.get_json(mailbox, kind, request))
        except APIError as exc:
            raise self._unavailable(mailbox, exc) from exc

    def _unavailable(self, mailbox: str | None, exc: APIError) -> SourceUnavailable:
        where = f"mailbox {mailbox}" if mailbox else "the tenant"
        return SourceUnavailable(
            self.name, f"{where}: Microsoft Graph answered {describe_error(exc)}"
        )
