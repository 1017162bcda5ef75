"""The Graph v1.0 routes the mail connector uses, as the Graph reference documents them.

``GraphApi.handle`` is transport-free (method, path, query, body -> status, headers, body), so the
same code serves a plain HTTP request and each request inside a JSON ``$batch``.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from sandbox.emulators.graph.permissions import allowed
from sandbox.emulators.graph.query import (
    QueryError,
    parse_filter,
    parse_search,
    parse_select,
    project,
    search_matches,
)
from sandbox.emulators.graph.send import send_mail
from sandbox.emulators.graph.store import GraphStore, Mailbox, Stored

SEARCH_RESULT_LIMIT = 1000  # "A $search request returns up to 1,000 results."
MAX_TOP = 1000
DEFAULT_TOP = 10
MAX_BATCH = 20
USER_PROPERTIES = frozenset({"id", "displayName", "mail", "userPrincipalName", "userType"})
ATTACHMENT_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "contentType",
        "size",
        "isInline",
        "lastModifiedDateTime",
        "contentBytes",
        "contentId",
        "contentLocation",
    }
)
FOLDER_PROPERTIES = frozenset(
    {
        "id",
        "displayName",
        "parentFolderId",
        "childFolderCount",
        "unreadItemCount",
        "totalItemCount",
        "isHidden",
    }
)

# Listing messages pages with $skip (the number of items to leave out) as well as $skiptoken.
_MESSAGE_LIST_OPTIONS = frozenset(
    {"$search", "$filter", "$select", "$top", "$skip", "$skiptoken", "$expand"}
)


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def graph_error(
    status: int, code: str, message: str, retry_after: float | None = None
) -> GraphResponse:
    """Graph's error shape: ``{"error": {"code", "message", "innerError"}}``."""
    headers = {"Retry-After": str(max(0, round(retry_after)))} if retry_after is not None else {}
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2026-01-01T00:00:00", "request-id": "emulator"},
        }
    }
    return GraphResponse(status, body, headers)


def _denied(handler: str) -> GraphResponse:
    """403 for an app without the permission: Exchange's ErrorAccessDenied on mail routes,
    the directory's Authorization_RequestDenied on users (the codes Graph returns there)."""
    if handler in ("list_users", "get_user"):
        return graph_error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    return graph_error(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


class _NotFound(Exception):
    def __init__(self, response: GraphResponse) -> None:
        self.response = response


Query = Mapping[str, str]
Handler = Callable[..., GraphResponse]


class GraphApi:
    """Routing and the handlers; state lives in ``GraphStore``."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.batch_items: Counter[str] = Counter()
        self.routes: list[tuple[str, re.Pattern[str], Handler, frozenset[str]]] = [
            (
                "GET",
                re.compile(r"/users"),
                self.list_users,
                frozenset({"$top", "$select", "$skiptoken"}),
            ),
            ("GET", re.compile(r"/users/(?P<user>[^/]+)"), self.get_user, frozenset({"$select"})),
            (
                "GET",
                re.compile(r"/users/(?P<user>[^/]+)/mailFolders"),
                self.list_folders,
                frozenset({"$top", "$select", "$skiptoken"}),
            ),
            (
                "GET",
                re.compile(r"/users/(?P<user>[^/]+)/mailFolders/(?P<folder>[^/]+)"),
                self.get_folder,
                frozenset({"$select"}),
            ),
            (
                "GET",
                re.compile(r"/users/(?P<user>[^/]+)/mailFolders/(?P<folder>[^/]+)/childFolders"),
                self.list_child_folders,
                frozenset({"$top", "$select", "$skiptoken"}),
            ),
            (
                "GET",
                re.compile(r"/users/(?P<user>[^/]+)/messages"),
                self.list_messages,
                _MESSAGE_LIST_OPTIONS,
            ),
            (
                "GET",
                re.compile(r"/users/(?P<user>[^/]+)/mailFolders/(?P<folder>[^/]+)/messages"),
                self.list_messages,
                _MESSAGE_LIST_OPTIONS,
            ),
            (
                "GET",
                re.compile(
                    r"/users/(?P<user>[^/]+)/mailFolders/(?P<folder>[^/]+)/messages/delta\(?\)?"
                ),
                self.message_delta,
                frozenset({"$select", "$deltatoken", "$skiptoken"}),
            ),
            (
                "GET",
                re.compile(r"/users/(?P<user>[^/]+)/messages/(?P<message>[^/]+)"),
                self.get_message,
                frozenset({"$select", "$expand"}),
            ),
            (
                "GET",
                re.compile(r"/users/(?P<user>[^/]+)/messages/(?P<message>[^/]+)/attachments"),
                self.list_attachments,
                frozenset({"$select", "$top"}),
            ),
            (
                "DELETE",
                re.compile(r"/users/(?P<user>[^/]+)/messages/(?P<message>[^/]+)"),
                self.delete_message,
                frozenset(),
            ),
            (
                "POST",
                re.compile(r"/users/(?P<user>[^/]+)/messages/(?P<message>[^/]+)/permanentDelete"),
                self.permanent_delete,
                frozenset(),
            ),
            ("POST", re.compile(r"/users/(?P<user>[^/]+)/sendMail"), self.send_mail, frozenset()),
        ]

    # -- dispatch ---------------------------------------------------------------------------------

    def route_of(self, method: str, path: str) -> str:
        """A label for request counting: the route's pattern, not the ids in it."""
        for verb, pattern, _, _ in self.routes:
            if verb == method and pattern.fullmatch(path):
                return f"{method} {pattern.pattern}"
        return f"{method} (unknown)"

    def handle(
        self,
        method: str,
        path: str,
        query: Query,
        body: Any,
        base_url: str,
        roles: frozenset[str] | None = None,
    ) -> GraphResponse:
        """Serve one request; ``path`` is what follows ``/v1.0``; ``roles``: the application
        permissions of the caller's token (None: a token with none to check)."""
        known_path = False
        for verb, pattern, handler, options in self.routes:
            match = pattern.fullmatch(path)
            if not match:
                continue
            known_path = True
            if verb != method:
                continue
            unknown = sorted(k for k in query if k.startswith("$") and k not in options)
            if unknown:
                return graph_error(
                    400, "BadRequest", f"Query option '{unknown[0]}' is not allowed here."
                )
            if not allowed(handler.__name__, roles):
                return _denied(handler.__name__)
            try:
                return handler(
                    query=query, body=body, base_url=base_url, path=path, **match.groupdict()
                )
            except QueryError as exc:
                return graph_error(400, exc.code, exc.message)
            except _NotFound as exc:
                return exc.response
        if known_path:
            return graph_error(405, "Request_BadRequest", f"The method {method} is not allowed.")
        segment = path.rstrip("/").rsplit("/", 1)[-1] or "/"
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def _user(self, user: str) -> Mailbox:
        box = self.store.mailbox(user)
        if box is None:
            raise _NotFound(
                graph_error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
            )
        return box

    def _mailbox(self, user: str) -> Mailbox:
        box = self._user(user)
        if not box.mail_enabled:
            # Guests and users whose mailbox is on premises (hybrid) have no Exchange Online
            # mailbox for the REST API (microsoft-graph-docs-contrib#405; the error's text as
            # Graph sends it, e.g. iyear/E5SubBot#39).
            raise _NotFound(
                graph_error(
                    404,
                    "MailboxNotEnabledForRESTAPI",
                    "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                )
            )
        return box

    def _message(self, box: Mailbox, message_id: str) -> Stored:
        stored = box.messages.get(message_id)
        if stored is None:
            raise _NotFound(
                graph_error(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            )
        return stored

    # -- paging -----------------------------------------------------------------------------------

    @staticmethod
    def _top(query: Query) -> int:
        raw = query.get("$top", str(DEFAULT_TOP))
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
            raise QueryError(
                "ErrorInvalidRequest", f"The value of $top must be between 1 and {MAX_TOP}."
            )
        return int(raw)

    @staticmethod
    def _offset(query: Query) -> int:
        token = query.get("$skiptoken")
        if token is None:
            skip = query.get("$skip", "0")
            if not skip.isdigit():
                raise QueryError("ErrorInvalidRequest", "The value of $skip must be a number.")
            return int(skip)
        try:
            return int(base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise QueryError("ErrorInvalidRequest", "The $skiptoken is not valid.") from exc

    def _page(
        self,
        items: list[dict[str, Any]],
        query: Query,
        base_url: str,
        path: str,
        context: str,
    ) -> GraphResponse:
        top = self._top(query)
        offset = self._offset(query)
        page = items[offset : offset + top]
        body: dict[str, Any] = {"@odata.context": f"{base_url}/v1.0/$metadata#{context}"}
        body["value"] = page
        if offset + top < len(items):
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            if "$skip" in query:
                # Outlook's message lists page with $skip: the next link skips one page more.
                params["$skip"] = str(offset + top)
            else:
                token = base64.urlsafe_b64encode(str(offset + top).encode()).decode()
                params["$skiptoken"] = token
            # Absolute, as Graph's are: clients follow it as it is.
            body["@odata.nextLink"] = f"{base_url}/v1.0{path}?{urlencode(params)}"
        return GraphResponse(200, body)

    # -- handlers ---------------------------------------------------------------------------------

    def list_users(self, *, query: Query, base_url: str, path: str, **_: Any) -> GraphResponse:
        select = parse_select(query.get("$select"), USER_PROPERTIES)
        users = [project(u, select) for u in self.store.users()]
        return self._page(users, query, base_url, path, "users")

    def get_user(self, *, user: str, query: Query, **_: Any) -> GraphResponse:
        box = self._user(user)
        select = parse_select(query.get("$select"), USER_PROPERTIES)
        found = next(u for u in self.store.users() if u["id"] == box.user_id)
        return GraphResponse(200, project(found, select))

    def list_folders(
        self, *, user: str, query: Query, base_url: str, path: str, **_: Any
    ) -> GraphResponse:
        """The top-level folders only, as Graph lists them (children: ``childFolders``)."""
        box = self._mailbox(user)
        select = parse_select(query.get("$select"), FOLDER_PROPERTIES)
        with self.store.lock:
            folders = [
                project(self._folder_resource(box, f.id), select)
                for f in box.folders.values()
                if f.parent_id is None
            ]
        return self._page(folders, query, base_url, path, f"users('{user}')/mailFolders")

    def list_child_folders(
        self, *, user: str, folder: str, query: Query, base_url: str, path: str, **_: Any
    ) -> GraphResponse:
        """The folders directly under one folder (``GET …/mailFolders/{id}/childFolders``)."""
        box = self._mailbox(user)
        select = parse_select(query.get("$select"), FOLDER_PROPERTIES)
        with self.store.lock:
            parent = box.folder(folder)
            if parent is None:
                return graph_error(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            children = [
                project(self._folder_resource(box, f.id), select)
                for f in box.folders.values()
                if f.parent_id == parent.id
            ]
        return self._page(
            children, query, base_url, path, f"users('{user}')/mailFolders('{folder}')/childFolders"
        )

    def get_folder(self, *, user: str, folder: str, query: Query, **_: Any) -> GraphResponse:
        """Any folder, by id or well-known name, wherever it sits in the tree."""
        box = self._mailbox(user)
        select = parse_select(query.get("$select"), FOLDER_PROPERTIES)
        with self.store.lock:
            found = box.folder(folder)
            if found is None:
                return graph_error(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            return GraphResponse(200, project(self._folder_resource(box, found.id), select))

    @staticmethod
    def _folder_resource(box: Mailbox, folder_id: str) -> dict[str, Any]:
        total = sum(1 for s in box.messages.values() if s.resource["parentFolderId"] == folder_id)
        children = sum(1 for f in box.folders.values() if f.parent_id == folder_id)
        return box.folders[folder_id].resource(total, box.root_id, children)

    def list_messages(
        self,
        *,
        user: str,
        query: Query,
        base_url: str,
        path: str,
        folder: str | None = None,
        **_: Any,
    ) -> GraphResponse:
        box = self._mailbox(user)
        select = parse_select(query.get("$select"))
        expand = self._expand(query)
        search = query.get("$search")
        predicate = parse_filter(query["$filter"]) if "$filter" in query else None
        if search is not None and predicate is not None:
            raise QueryError(
                "ErrorInvalidRequest",
                "The query parameters $search and $filter cannot be combined.",
            )
        if search is not None and "$skip" in query:
            # A search is not paged by $skip (Graph's "Use the $search query parameter":
            # results come sorted by sent date, up to 1,000, paged by nextLink only).
            raise QueryError(
                "ErrorInvalidRequest", "The query parameter $skip is not supported with $search."
            )
        folder_id = None
        if folder is not None:
            found = box.folder(folder)
            if found is None:
                raise _NotFound(
                    graph_error(404, "ErrorItemNotFound", "The specified folder was not found.")
                )
            folder_id = found.id
        with self.store.lock:
            pool: Iterable[Stored] = box.messages.values()
            if predicate is not None and predicate.internet_ids is not None:
                # Exchange answers internetMessageId filters from an index; so does this.
                pool = [
                    box.messages[i]
                    for key in predicate.internet_ids
                    for i in box.by_internet_id.get(key, ())
                ]
            candidates = [
                s for s in pool if folder_id is None or s.resource["parentFolderId"] == folder_id
            ]
            if search is not None:
                node = parse_search(search)
                hits = [s for s in candidates if search_matches(node, s)]
                # Sorted by the date the message was sent; at most 1,000 results.
                hits.sort(key=lambda s: s.resource.get("sentDateTime") or "", reverse=True)
                hits = hits[:SEARCH_RESULT_LIMIT]
            else:
                hits = [s for s in candidates if predicate is None or predicate(s.resource)]
                hits.sort(key=lambda s: s.resource.get("receivedDateTime") or "", reverse=True)
            items = [self._render(s, select, expand) for s in hits]
        return self._page(items, query, base_url, path, f"users('{user}')/messages")

    def message_delta(
        self, *, user: str, folder: str, query: Query, base_url: str, path: str, **_: Any
    ) -> GraphResponse:
        """Messages added, changed or removed in one folder since the state a ``$deltatoken``
        carries; the first round lists every message (message: delta,
        https://learn.microsoft.com/graph/api/message-delta; the rounds:
        https://learn.microsoft.com/graph/delta-query-messages). A moved message is removed from
        its old folder and new (with a new id) in the other; removed ones come as
        ``{"id", "@removed": {"reason": "deleted"}}``. The last page carries
        ``@odata.deltaLink`` for the next round; the ``$select`` of the first round holds."""
        box = self._mailbox(user)
        since, select_text = 0, query.get("$select")
        token = query.get("$deltatoken")
        if token is not None:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                since, select_text = int(state["seq"]), state.get("select")
            except (ValueError, KeyError, TypeError) as exc:
                raise QueryError("SyncStateNotFound", "The sync state is not valid.") from exc
        select = parse_select(select_text)
        with self.store.lock:
            found = box.folder(folder)
            if found is None:
                return graph_error(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            changed = [
                self._render(s, select, False) | {"id": s.resource["id"]}
                for s in box.messages.values()
                if s.resource["parentFolderId"] == found.id and s.seq > since
            ]
            gone = [
                {
                    "@odata.type": "#microsoft.graph.message",
                    "id": message_id,
                    "@removed": {"reason": "deleted"},
                }
                for seq, folder_id, message_id in box.removed
                if folder_id == found.id and seq > since and token is not None
            ]
            now = self.store.seq
        state = json.dumps({"seq": now, "select": select_text})
        next_token = base64.urlsafe_b64encode(state.encode()).decode()
        link = f"{base_url}/v1.0{path}?" + urlencode({"$deltatoken": next_token})
        body = {
            "@odata.context": f"{base_url}/v1.0/$metadata#Collection(message)",
            "value": changed + gone,
            "@odata.deltaLink": link,
        }
        return GraphResponse(200, body)

    @staticmethod
    def _expand(query: Query) -> bool:
        raw = query.get("$expand")
        if raw is None:
            return False
        if raw.strip() != "attachments":
            raise QueryError("BadRequest", f"Could not find a navigation property named '{raw}'.")
        return True

    @staticmethod
    def _render(stored: Stored, select: list[str] | None, expand: bool) -> dict[str, Any]:
        item = project(stored.resource, select)
        if expand:
            item["attachments"] = [dict(a) for a in stored.attachments]
        return item

    def get_message(self, *, user: str, message: str, query: Query, **_: Any) -> GraphResponse:
        box = self._mailbox(user)
        select = parse_select(query.get("$select"))
        expand = self._expand(query)
        with self.store.lock:
            return GraphResponse(200, self._render(self._message(box, message), select, expand))

    def list_attachments(
        self, *, user: str, message: str, query: Query, base_url: str, path: str, **_: Any
    ) -> GraphResponse:
        box = self._mailbox(user)
        select = parse_select(query.get("$select"), ATTACHMENT_PROPERTIES)
        with self.store.lock:
            attachments = [project(a, select) for a in self._message(box, message).attachments]
        for item in attachments:
            # The derived type stays visible, as Graph keeps @odata.type under $select.
            item["@odata.type"] = "#microsoft.graph.fileAttachment"
            item.pop("@odata.etag", None)
        params = dict(query)
        params.setdefault("$top", str(MAX_TOP))
        return self._page(attachments, params, base_url, path, "attachments")

    def delete_message(self, *, user: str, message: str, **_: Any) -> GraphResponse:
        """DELETE moves to Deleted Items; deleting from Deleted Items removes it from view
        into Recoverable Items (Deletions), which no message list shows."""
        box = self._mailbox(user)
        with self.store.lock:
            stored = self._message(box, message)
            deleted = box.folder("deleteditems")
            assert deleted is not None
            if stored.resource["parentFolderId"] == deleted.id:
                self.store.remove(box, message, to="Deletions")
            else:
                self.store.move(box, message, deleted)
        return GraphResponse(204)

    def permanent_delete(self, *, user: str, message: str, **_: Any) -> GraphResponse:
        """Into Recoverable Items (Purges): gone from every folder and list, still in the
        mailbox until its deleted-item retention ends, or for as long as a hold lasts."""
        box = self._mailbox(user)
        with self.store.lock:
            self._message(box, message)
            self.store.remove(box, message)
        return GraphResponse(204)

    def send_mail(self, *, user: str, body: Any, **_: Any) -> GraphResponse:
        """202 Accepted, no body (sandbox/emulators/graph/send.py)."""
        box = self._mailbox(user)
        size = len(json.dumps(body).encode()) if body is not None else 0
        status, code, message = send_mail(self.store, box, body, size)
        return GraphResponse(202) if status == 202 else graph_error(status, code, message)

    # -- $batch -----------------------------------------------------------------------------------

    def batch(
        self,
        body: Any,
        base_url: str,
        admit: Callable[[str], GraphResponse | None] = lambda _path: None,
        roles: frozenset[str] | None = None,
        done: Callable[[str], None] = lambda _path: None,
    ) -> GraphResponse:
        """JSON batching: up to 20 requests, answered each with its own status.

        Requests run one after another here (Graph runs independent ones in parallel); one whose
        ``dependsOn`` failed gets 424. ``admit`` may refuse an item (its mailbox's limits,
        injected throttling); ``done`` is told of every item ``admit`` let through, once served.
        """
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return graph_error(400, "BadRequest", "Invalid batch payload: 'requests' is missing.")
        if len(requests) > MAX_BATCH:
            return graph_error(
                400,
                "BadRequest",
                f"The number of requests in the batch exceeds the limit of {MAX_BATCH}.",
            )
        ids = [str(r.get("id")) for r in requests if isinstance(r, dict)]
        if len(ids) != len(requests) or len(set(ids)) != len(ids):
            return graph_error(400, "BadRequest", "Batch request ids must be present and unique.")
        statuses: dict[str, int] = {}
        responses = []
        for item in requests:
            item_id = str(item["id"])
            answer = self._batch_item(item, statuses, base_url, admit, roles, done)
            statuses[item_id] = answer.status
            entry: dict[str, Any] = {"id": item_id, "status": answer.status}
            entry["headers"] = {**answer.headers}
            if answer.body is not None:
                entry["headers"].setdefault("Content-Type", "application/json")
                entry["body"] = answer.body
            responses.append(entry)
        return GraphResponse(200, {"responses": responses})

    def _batch_item(
        self,
        item: dict[str, Any],
        statuses: dict[str, int],
        base_url: str,
        admit: Callable[[str], GraphResponse | None],
        roles: frozenset[str] | None = None,
        done: Callable[[str], None] = lambda _path: None,
    ) -> GraphResponse:
        method = str(item.get("method") or "").upper()
        url = str(item.get("url") or "")
        if not method or not url:
            return graph_error(400, "BadRequest", "A batch request needs a method and a url.")
        depends = item.get("dependsOn") or []
        for dependency in depends:
            if dependency not in statuses:
                return graph_error(400, "BadRequest", f"dependsOn '{dependency}' is not earlier.")
            if statuses[dependency] >= 400:
                return graph_error(424, "FailedDependency", "A request it depends on failed.")
        parts = urlsplit(url)
        # An item's URL is relative to the version root ("/users/…"); Graph reads an absolute
        # or versioned URL as a path from that root and answers the item 400 "Resource not
        # found for the segment" (https://learn.microsoft.com/graph/json-batching;
        # msgraph-sdk-python#1015, msgraph-sdk-python-core#1116).
        first = url.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        if parts.scheme or parts.netloc or first.lower() in ("v1.0", "beta"):
            return graph_error(400, "BadRequest", f"Resource not found for the segment '{first}'.")
        # Batch URLs arrive percent-encoded (users/a%40b.example/...), as on the wire.
        path = unquote(parts.path)
        if not path.startswith("/"):
            path = "/" + path
        if path == "/$batch":
            return graph_error(400, "BadRequest", "A batch cannot contain a batch.")
        self.batch_items[self.route_of(method, path)] += 1
        refused = admit(path)
        if refused is not None:
            return refused
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            return self.handle(method, path, query, item.get("body"), base_url, roles)
        finally:
            done(path)


def decode_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise QueryError("BadRequest", f"The request body is not valid JSON: {exc.msg}") from exc
