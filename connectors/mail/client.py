"""msgraph-sdk on a private event loop, for a synchronous, streaming connector.

The SDK is async only; the connector protocol is synchronous and streams. ``GraphSession`` owns
one event loop and runs one step at a time on it (a page of search results, a batch), so the
caller can yield between steps and memory stays at one page. Requests to one mailbox go through
a semaphore of 4 (Exchange's concurrency limit per mailbox and app); 429/503/504 are retried by
the SDK's retry handler honouring ``Retry-After``; other 5xx are retried here with backoff.
Writes (``write=True``: the erasure's ``$batch`` of DELETE/permanentDelete) are sent once, the
SDK's retry handler switched off for them: a 429 is sent again after its Retry-After (refused
before it ran), a lost answer (connection failure, 5xx) raises ``AmbiguousWrite`` so that the
connector reads the messages again (``connectors/writes.py``).

Requests are built by the SDK's request builders and sent through its request adapter (auth,
middleware, errors as ``ODataError``); responses are read as Graph JSON (``get_json``, ``batch``)
rather than as SDK models, whose parsing costs ~10 ms per message and whose batch responses lose
their bodies.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.mail_folders.item.child_folders.child_folders_request_builder import (  # noqa: E501
    ChildFoldersRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.item.mail_folder_item_request_builder import (
    MailFolderItemRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder as FolderMessagesRequestBuilder,
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
from msgraph_core import GraphClientFactory

from connectors.base import SourceUnavailable
from connectors.mail.settings import MailSource
from connectors.tls import verifying_context
from connectors.writes import AmbiguousWrite

T = TypeVar("T")
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MAILBOX_CONCURRENCY = 4
RETRIED_HERE = {500, 502}  # the SDK retries 429, 503 and 504 itself
Request = RequestInformation  # a request built here, sent by ``GraphSession``: opaque elsewhere

# The SDK's query-parameter classes, by shorter names.
_UsersQuery = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters
_FoldersQuery = MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters
_FolderQuery = MailFolderItemRequestBuilder.MailFolderItemRequestBuilderGetQueryParameters
_ChildrenQuery = ChildFoldersRequestBuilder.ChildFoldersRequestBuilderGetQueryParameters
_MessagesQuery = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters
_FolderMessagesQuery = FolderMessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters
_MessageQuery = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters
_AttachmentsQuery = AttachmentsRequestBuilder.AttachmentsRequestBuilderGetQueryParameters
_DeltaQuery = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters


class GraphError(Exception):
    """A request Graph answered with an error: its status and Graph error code (the SDK's
    ``APIError``, read here so that no caller handles SDK exceptions)."""

    def __init__(self, status: int | None, code: str | None) -> None:
        self.status = status
        self.code = code
        super().__init__(self.describe())

    @classmethod
    def of(cls, exc: APIError) -> GraphError:
        return cls(exc.response_status_code, error_code_of(exc))

    def describe(self) -> str:
        """Status and Graph error code; never the request's query."""
        return f"HTTP {self.status}" + (f" {self.code}" if self.code else "")

    @property
    def item_not_found(self) -> bool:
        """Exchange's own not-found for the exact item: a confirmed absence (a 404 such as
        MailboxNotEnabledForRESTAPI or ErrorInvalidUser says nothing about the message)."""
        return self.status == 404 and self.code == "ErrorItemNotFound"


class NoToken(Exception):
    """The identity platform gave the app no token; the first line of why."""


def _jwt_part(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# The sandbox's token: shaped as Entra ID's app-only tokens are (a JWT whose ``roles`` are the
# app's application permissions), unsigned: the emulator reads the roles and checks them per
# route as Graph does, and preflight reads them too. Not a secret.
SANDBOX_ROLES = ("Mail.ReadWrite", "User.Read.All", "Mail.Send")  # Mail.Send: identity codes
SANDBOX_TOKEN = ".".join(
    [
        _jwt_part({"alg": "none", "typ": "JWT"}),
        _jwt_part({"aud": "https://graph.microsoft.com", "roles": list(SANDBOX_ROLES)}),
        "sandbox",
    ]
)


class StaticTokenCredential:
    """A fixed bearer token for the sandbox emulator; no identity platform is involved."""

    def __init__(self, token: str = SANDBOX_TOKEN) -> None:
        self._token = token

    async def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class BatchAnswer:
    status: int
    headers: dict[str, Any]
    body: Any

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


@dataclass
class GraphStats:
    """Requests as the connector sent them (a ``$batch`` counts once)."""

    requests: int = 0
    searches: int = 0
    index_changes: int = 0  # changes a participant-index delta round applied
    search_splits: int = 0  # searches cut in two by date received (Graph's 1,000-result cap)
    pages: int = 0
    attachment_requests: int = 0
    lookups: int = 0
    batches: int = 0  # every $batch
    erase_batches: int = 0
    retries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class GraphSession:
    """One GraphServiceClient on one private event loop; ``close()`` ends both."""

    def __init__(
        self,
        source_name: str,
        settings: MailSource,
        *,
        retry_delay_s: float = 3.0,
        credential: Any | None = None,
    ) -> None:
        self.source_name = source_name
        self.settings = settings
        self.retry_delay_s = retry_delay_s
        self.stats = GraphStats()
        self.loop = asyncio.new_event_loop()
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self.credential = credential or self._credential(settings)
        self.client = self.loop.run_until_complete(self._build_client())
        self.requests = GraphRequests(self.client)

    @staticmethod
    def _credential(settings: MailSource) -> Any:
        if settings.client_secret is None:
            return StaticTokenCredential()
        from azure.identity.aio import ClientSecretCredential

        return ClientSecretCredential(
            tenant_id=str(settings.tenant_id),
            client_id=str(settings.client_id),
            client_secret=settings.client_secret.resolve(),
        )

    async def _build_client(self) -> GraphServiceClient:
        # Built on the loop that will use it: httpx binds its pool to the running loop.
        scopes = [GRAPH_SCOPE]
        auth = AzureIdentityAuthenticationProvider(self.credential, scopes=scopes)
        options = {
            RetryHandlerOption.get_key(): RetryHandlerOption(
                delay=self.retry_delay_s, max_retries=self.settings.max_retries
            )
        }
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(
                timeout=self.settings.timeout_s, http2=False, verify=verifying_context()
            ),
            options=options,
        )
        adapter = GraphRequestAdapter(auth, client=http)
        if self.settings.base_url:
            # Before the client is built: its request builders copy the base URL.
            adapter.base_url = self.settings.base_url.rstrip("/")
        return GraphServiceClient(request_adapter=adapter)

    # -- running steps ----------------------------------------------------------------------------

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        """Run one step to completion on the private loop."""
        return self.loop.run_until_complete(step)

    def semaphore(self, mailbox: str) -> asyncio.Semaphore:
        key = mailbox.lower()
        if key not in self._semaphores:
            self._semaphores[key] = asyncio.Semaphore(MAILBOX_CONCURRENCY)
        return self._semaphores[key]

    async def call(
        self,
        mailbox: str | None,
        kind: str,
        request: Callable[[], Awaitable[T]],
        *,
        write: bool = False,
    ) -> T:
        """One Graph request (with this connector's retries for 500/502), counted by kind; a
        ``write`` is sent again only after a 429, and a lost answer raises AmbiguousWrite."""
        attempt = 0
        while True:
            self.stats.requests += 1
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            try:
                if mailbox is None:
                    return await request()
                async with self.semaphore(mailbox):
                    return await request()
            except APIError as exc:
                status = exc.response_status_code or 0
                wait = retry_after_of(exc.response_headers)
                if (
                    write
                    and status == 429
                    and attempt < self.settings.max_retries
                    and wait <= self.settings.max_retry_wait_s
                ):
                    attempt += 1
                    self.stats.retries += 1
                    await asyncio.sleep(wait)  # refused before it ran: it may go again
                    continue
                if write and status >= 500:
                    raise AmbiguousWrite(f"HTTP {status}") from None
                if status in RETRIED_HERE and attempt < self.settings.max_retries:
                    attempt += 1
                    self.stats.retries += 1
                    await asyncio.sleep(self.retry_delay_s * 2 ** (attempt - 1))
                    continue
                raise
            except httpx.HTTPError as exc:
                if write:
                    raise AmbiguousWrite(f"connection failed: {type(exc).__name__}") from None
                if attempt < self.settings.max_retries:
                    attempt += 1
                    self.stats.retries += 1
                    await asyncio.sleep(self.retry_delay_s * 2 ** (attempt - 1))
                    continue
                raise SourceUnavailable(
                    self.source_name, f"Microsoft Graph cannot be reached ({type(exc).__name__})"
                ) from exc

    async def get_json(
        self, mailbox: str | None, kind: str, request: RequestInformation
    ) -> dict[str, Any]:
        """A GET built by the SDK's request builders and sent through its adapter (auth, retry
        handler, error mapping to ``ODataError``), read as JSON.

        The SDK's own model parsing costs about 10 ms per message (``Entity``'s deserializer map
        is rebuilt for every object), which would dominate discovery; the JSON is already in
        Graph's documented shape.
        """
        raw = await self.call(mailbox, kind, lambda: self._send(request))
        return json.loads(raw) if raw else {}

    async def _send(self, request: RequestInformation) -> bytes | None:
        """One request through the SDK's adapter, its answer as bytes (errors as ODataError)."""
        adapter: Any = self.client.request_adapter  # typed by kiota as answering nothing
        raw: bytes | None = await adapter.send_primitive_async(
            request, "bytes", {"XXX": ODataError}
        )
        return raw

    async def batch(
        self, requests: list[RequestInformation], kind: str, *, write: bool = False
    ) -> list[BatchAnswer]:
        """Up to 20 requests in one JSON ``$batch``; each answer with status, headers, body.

        Sent through the SDK's own adapter (auth, retry middleware) but read as raw JSON:
        msgraph-core's ``BatchResponseContent`` keeps statuses and drops the bodies, and the
        error code in a body tells ErrorItemNotFound from other 404s.
        """
        post = RequestInformation(Method.POST, self.client.batch.url_template)
        post.headers.try_add("Content-Type", "application/json")
        body = batch_body(requests, self.client.request_adapter.base_url)
        post.content = json.dumps(body).encode()
        if write:
            # The SDK would send a $batch again on 503/504, which may follow an applied write.
            post.add_request_options([RetryHandlerOption(should_retry=False)])
        self.stats.batches += 1
        raw = await self.call(None, kind, lambda: self._send(post), write=write)
        payload = json.loads(raw or b"{}")
        by_id = {str(r.get("id")): r for r in payload.get("responses") or []}
        answers = []
        for number in range(1, len(requests) + 1):
            item = by_id.get(str(number)) or {}
            answers.append(
                BatchAnswer(
                    int(item.get("status") or 0), item.get("headers") or {}, item.get("body")
                )
            )
        return answers

    # -- synchronous steps, the SDK's errors read as GraphError ------------------------------------

    def fetch(self, mailbox: str | None, kind: str, request: Request) -> dict[str, Any]:
        """``get_json`` run to completion."""
        try:
            return self.run(self.get_json(mailbox, kind, request))
        except APIError as exc:
            raise GraphError.of(exc) from exc

    async def fetch_async(self, mailbox: str | None, kind: str, request: Request) -> dict[str, Any]:
        """``get_json`` for steps that run several requests at once (``asyncio.gather``)."""
        try:
            return await self.get_json(mailbox, kind, request)
        except APIError as exc:
            raise GraphError.of(exc) from exc

    def send_batch(
        self, requests: list[Request], kind: str, *, write: bool = False
    ) -> list[BatchAnswer]:
        """``batch`` run to completion; a refusal of the ``$batch`` itself is a GraphError."""
        try:
            return self.run(self.batch(requests, kind, write=write))
        except APIError as exc:
            raise GraphError.of(exc) from exc

    def sleep(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds))

    def app_token(self) -> str:
        """The app's access token for Graph (its ``roles`` are its application permissions)."""
        try:
            return self.run(self.credential.get_token(GRAPH_SCOPE)).token
        except AzureError as exc:
            text = str(exc).strip()
            raise NoToken(text.splitlines()[0] if text else type(exc).__name__) from exc

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            adapter = self.client.request_adapter
            http = getattr(adapter, "_http_client", None)
            if http is not None:
                self.loop.run_until_complete(http.aclose())
            closer = getattr(self.credential, "close", None)
            if closer is not None:
                self.loop.run_until_complete(closer())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


class GraphRequests:
    """Every request the connector sends, built by msgraph-sdk's request builders (the URLs,
    query parameters and headers Graph documents); ``GraphSession`` sends them."""

    def __init__(self, client: GraphServiceClient) -> None:
        self.users = client.users

    def url(self, link: str) -> Request:
        """A GET of a link Graph gave (``@odata.nextLink``, ``@odata.deltaLink``)."""
        return self.users.with_url(link).to_get_request_information()

    def list_users(self, select: list[str], top: int) -> Request:
        config = RequestConfiguration(query_parameters=_UsersQuery(select=select, top=top))
        return self.users.to_get_request_information(config)

    def folders(self, mailbox: str, select: list[str], top: int) -> Request:
        """The mailbox's top-level folders."""
        config = RequestConfiguration(query_parameters=_FoldersQuery(select=select, top=top))
        return self.users.by_user_id(mailbox).mail_folders.to_get_request_information(config)

    def child_folders(self, mailbox: str, folder_id: str, select: list[str], top: int) -> Request:
        folder = self.users.by_user_id(mailbox).mail_folders.by_mail_folder_id(folder_id)
        config = RequestConfiguration(query_parameters=_ChildrenQuery(select=select, top=top))
        return folder.child_folders.to_get_request_information(config)

    def folder(self, mailbox: str, folder_id: str, select: list[str] | None = None) -> Request:
        """One folder, by id or well-known name (``deleteditems``)."""
        folder = self.users.by_user_id(mailbox).mail_folders.by_mail_folder_id(folder_id)
        if select is None:
            return folder.to_get_request_information()
        config = RequestConfiguration(query_parameters=_FolderQuery(select=select))
        return folder.to_get_request_information(config)

    def search(self, mailbox: str, search: str, select: list[str], top: int) -> Request:
        """A ``$search`` over the mailbox's messages (``search`` as Graph wants it)."""
        query = _MessagesQuery(search=search, select=select, top=top)
        messages = self.users.by_user_id(mailbox).messages
        return messages.to_get_request_information(RequestConfiguration(query_parameters=query))

    def filter_messages(self, mailbox: str, clause: str, select: list[str], top: int) -> Request:
        """A ``$filter`` over all of the mailbox's messages."""
        query = _MessagesQuery(filter=clause, select=select, top=top)
        messages = self.users.by_user_id(mailbox).messages
        return messages.to_get_request_information(RequestConfiguration(query_parameters=query))

    def folder_messages(
        self,
        mailbox: str,
        folder_id: str,
        clause: str,
        select: list[str],
        top: int,
        skip: int | None,
    ) -> Request:
        """A ``$filter`` over one folder's messages, from position ``skip``."""
        folder = self.users.by_user_id(mailbox).mail_folders.by_mail_folder_id(folder_id)
        query = _FolderMessagesQuery(filter=clause, select=select, top=top, skip=skip)
        config = RequestConfiguration(query_parameters=query)
        return folder.messages.to_get_request_information(config)

    def message(self, mailbox: str, message_id: str, select: list[str]) -> Request:
        item = self.users.by_user_id(mailbox).messages.by_message_id(message_id)
        config = RequestConfiguration(query_parameters=_MessageQuery(select=select))
        return item.to_get_request_information(config)

    def attachments(self, mailbox: str, message_id: str, select: list[str] | None) -> Request:
        """A message's attachments (``select`` None: with their content)."""
        item = self.users.by_user_id(mailbox).messages.by_message_id(message_id)
        config = RequestConfiguration(query_parameters=_AttachmentsQuery(select=select))
        return item.attachments.to_get_request_information(config)

    def delete(self, mailbox: str, message_id: str, *, permanent: bool) -> Request:
        """``permanentDelete`` (into Recoverable Items' Purges) or a DELETE (to Deleted Items)."""
        item = self.users.by_user_id(mailbox).messages.by_message_id(message_id)
        if permanent:
            return item.permanent_delete.to_post_request_information()
        return item.to_delete_request_information()

    def delta(self, mailbox: str, folder_id: str, select: list[str]) -> Request:
        """The first page of a folder's first delta round (later rounds follow its links)."""
        folder = self.users.by_user_id(mailbox).mail_folders.by_mail_folder_id(folder_id)
        config = RequestConfiguration(query_parameters=_DeltaQuery(select=select))
        return folder.messages.delta.to_get_request_information(config)


def error_code_of(exc: APIError) -> str | None:
    """Graph's error code (``ErrorItemNotFound``, ...) of a failed request, if it sent one."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else None
    return str(code) if code else None


def describe_error(exc: APIError) -> str:
    """Status and Graph error code of a failed request; never the request's query."""
    code = error_code_of(exc)
    return f"HTTP {exc.response_status_code}" + (f" {code}" if code else "")


def retry_after_of(headers: dict[str, Any] | None) -> float:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            text = next(iter(value)) if isinstance(value, list | tuple | set) else value
            try:
                return max(0.0, float(str(text)))
            except ValueError:
                return 1.0
    return 1.0


def batch_body(requests: list[RequestInformation], base_url: str) -> dict[str, Any]:
    """The JSON ``$batch`` body for ``requests``, numbered from 1, each URL relative to the version
    root (``/users/…``) as Graph requires.

    Built here rather than by msgraph-core's ``BatchRequestContent``: that keeps each item's
    absolute URL (``https://graph.microsoft.com/v1.0/users/…``) and writes ``depends_on`` for
    ``dependsOn``, and Graph answers such items 400 (msgraph-sdk-python#1015,
    msgraph-sdk-python-core#1116; https://learn.microsoft.com/graph/json-batching).
    """
    root = urlsplit(base_url).path.rstrip("/")  # "/v1.0"
    items = []
    for number, info in enumerate(requests, start=1):
        # Built by the SDK's request builders: "/users/…" before the adapter fills in its base
        # URL, the absolute URL once it has (a builder made from an @odata.nextLink).
        parts = urlsplit(info.url)
        path = parts.path
        if parts.netloc or path.startswith(f"{root}/"):
            if not path.startswith(f"{root}/"):
                raise ValueError("a batch item outside Graph's version root")
            path = path.removeprefix(root)
        url = path + (f"?{parts.query}" if parts.query else "")
        if info.http_method is None:
            raise ValueError("a batch item without an HTTP method")
        item: dict[str, Any] = {"id": str(number), "method": info.http_method.value, "url": url}
        headers = {k: ", ".join(sorted(v)) for k, v in info.headers.get_all().items()}
        if info.content:
            item["body"] = json.loads(info.content)
            headers.setdefault("content-type", "application/json")
        if headers:
            item["headers"] = headers
        items.append(item)
    return {"requests": items}


# -- Graph JSON -------------------------------------------------------------------------------


def _iso(value: object) -> str | None:
    """A Graph DateTimeOffset as UTC ISO 8601 with ``Z``."""
    if not isinstance(value, str) or not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def message_dict(raw: dict[str, Any]) -> dict[str, Any]:
    """A message as Graph returns it, with its timestamps normalised to UTC."""
    message = dict(raw)
    for name in ("receivedDateTime", "sentDateTime"):
        message[name] = _iso(raw.get(name))
    return message


def host_of(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter), from any iterable."""
    group: list[T] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group
