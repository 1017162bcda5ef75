"""The Jira Cloud + Service Management emulator: a Starlette app over a ``JiraStore``.

Routes, shapes and error bodies follow Atlassian's published references (Jira Cloud platform
REST API v2, Jira Service Management REST API): platform errors are
``{"errorMessages": [...], "errors": {...}}``, Service Management errors are
``{"errorMessage": ..., "i18nErrorMessage": {...}}``. Every ``self`` link is an absolute URL back
to the emulator, because the ``jira`` client re-reads resources through them.

Choices of the emulator where the references leave room: the ``comment`` field of an issue in
search results carries at most ``INLINE_COMMENTS`` comments (``total`` says how many there are,
so a client knows when to page through ``/issue/{key}/comment``); ``nextPageToken`` is an opaque
offset into the result; unknown query parameters of the served routes are refused with 400 so
that a client's typo shows up in tests.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.emulators.faults import FaultGate, Faults
from sandbox.emulators.jira import jql
from sandbox.emulators.jira.attachments import Attachments
from sandbox.emulators.jira.create_request import CustomerRequestCreation
from sandbox.emulators.jira.ratelimit import JiraRateLimit, RateLimiter, RateLimitGate
from sandbox.emulators.jira.store import (
    PARTICIPANTS_FIELD,
    REQUEST_TYPE_FIELD,
    Comment,
    HistoryItem,
    Issue,
    JiraStore,
    User,
    jira_time,
)

# Get my permissions (GET /rest/api/2/mypermissions, Jira Cloud platform REST API v2, group
# Permissions): the permission keys the emulator knows, with Jira's names and types. The
# reference: ``permissions`` is required (a comma-separated list of keys); an unknown key is 400;
# with ``projectKey``, an unknown project (or one the caller cannot see) is 404; global
# permissions are unaffected by the context.
PERMISSIONS: dict[str, tuple[str, str]] = {
    "BROWSE_PROJECTS": ("Browse Projects", "PROJECT"),
    "SERVICEDESK_AGENT": ("Service Project Agent", "PROJECT"),
    "ADD_COMMENTS": ("Add Comments", "PROJECT"),
    "EDIT_ISSUES": ("Edit Issues", "PROJECT"),
    "DELETE_ISSUES": ("Delete Issues", "PROJECT"),
    "MODIFY_REPORTER": ("Modify Reporter", "PROJECT"),
    "EDIT_ALL_COMMENTS": ("Edit All Comments", "PROJECT"),
    "EDIT_OWN_COMMENTS": ("Edit Own Comments", "PROJECT"),
    "DELETE_ALL_COMMENTS": ("Delete All Comments", "PROJECT"),
    "DELETE_OWN_COMMENTS": ("Delete Own Comments", "PROJECT"),
    "ADMINISTER_PROJECTS": ("Administer Projects", "PROJECT"),
    "USER_PICKER": ("Browse users and groups", "GLOBAL"),
    "ADMINISTER": ("Administer Jira", "GLOBAL"),
    "SYSTEM_ADMIN": ("Jira System Administrators", "GLOBAL"),
}
INLINE_COMMENTS = 20
# ``expand=changelog`` on Get issue carries at most 100 entries in Jira Cloud; the rest through
# Get changelogs (paged). The emulator's cap is that figure, as widely reported for Cloud.
INLINE_HISTORY = 100
MAX_SEARCH_RESULTS = 100  # Jira Cloud caps pages of issues with fields at 100
Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, servicedesk: bool = False) -> None:
        self.status = status
        self.message = message
        self.servicedesk = servicedesk


def platform_error(
    status: int, message: str, retry_after: float | None = None, _code: str | None = None
) -> Response:
    # Jira's platform API has no error codes: ``_code`` is accepted (FaultGate) and not sent.
    # Retry-After is whole seconds (RFC 9110); a fraction rounds up so clients never come early.
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else {}
    return JSONResponse({"errorMessages": [message], "errors": {}}, status, headers=headers)


def servicedesk_error(status: int, message: str) -> Response:
    return JSONResponse(
        {
            "errorMessage": message,
            "i18nErrorMessage": {"i18nKey": f"sd.emulator.error.{status}", "parameters": []},
        },
        status,
    )


# -- rendering ---------------------------------------------------------------------------------


class Renderer:
    """Jira's JSON shapes, with ``self`` links on the emulator's own base URL."""

    def __init__(self, store: JiraStore, base: str) -> None:
        self.store = store
        self.base = base.rstrip("/")

    def user(self, account_id: str | None, *, customer_list: bool = False) -> dict[str, Any] | None:
        """Jira's user shape. ``emailAddress`` follows the user's profile visibility (User:
        "Depending on the user's privacy setting, this may be returned as null"); in a
        service desk's customer list a portal-only customer's address is shown to agents.
        Service Management's UserDTO says the same of a customer's privacy settings; the
        emulator reads them as an Atlassian account's profile visibility, which portal-only
        accounts do not have. That reading is the emulator's: Atlassian does not document
        who sees a portal-only customer's address where."""
        if account_id is None:
            return None
        user = self.store.users.get(account_id) or User(account_id, None, "Former user", False)
        shape: dict[str, Any] = {
            "self": f"{self.base}/rest/api/2/user?accountId={user.account_id}",
            "accountId": user.account_id,
            "displayName": user.display_name,
            "active": user.active,
            "accountType": user.kind,
            "timeZone": "Europe/Oslo",
        }
        shown = user.email_visible or (customer_list and user.kind == "customer")
        if user.email and shown:
            shape["emailAddress"] = user.email
        return shape

    def comment(self, issue: Issue, comment: Comment) -> dict[str, Any]:
        return {
            "self": f"{self.base}/rest/api/2/issue/{issue.id}/comment/{comment.id}",
            "id": comment.id,
            "author": self.user(comment.author),
            "body": comment.body,
            "updateAuthor": self.user(comment.author),
            "created": comment.created,
            "updated": comment.updated,
            "jsdPublic": comment.public,
        }

    def all_fields(self, issue: Issue) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name, value in issue.fields.items():
            if name == "reporter":
                fields["reporter"] = self.user(value)
                fields["creator"] = self.user(value)
            elif name == "status":
                fields["status"] = {
                    "self": f"{self.base}/rest/api/2/status/1",
                    "name": value.get("name", "Open"),
                    "id": "1",
                }
            else:
                fields[name] = value
        fields["project"] = {
            "self": f"{self.base}/rest/api/2/project/{issue.project}",
            "key": issue.project,
            "name": next(
                (
                    d.project_name
                    for d in self.store.servicedesks.values()
                    if d.project_key == issue.project
                ),
                issue.project,
            ),
        }
        fields["issuetype"] = {"name": "Service Request", "id": "10001"}
        fields[PARTICIPANTS_FIELD] = [self.user(p) for p in issue.participants]
        fields.setdefault(REQUEST_TYPE_FIELD, None)
        subtasks = self.store.subtasks(issue)
        # Jira's parent/subtasks shapes: key, id, self and a few fields (IssueLink fields).
        fields["subtasks"] = [self._linked(s) for s in subtasks]
        parent = self.store.issue(issue.parent) if issue.parent else None
        if parent is not None:
            fields["parent"] = self._linked(parent)
        fields["comment"] = {
            "comments": [self.comment(issue, c) for c in issue.comments[:INLINE_COMMENTS]],
            "self": f"{self.base}/rest/api/2/issue/{issue.id}/comment",
            "maxResults": INLINE_COMMENTS,
            "total": len(issue.comments),
            "startAt": 0,
        }
        return fields

    def _linked(self, issue: Issue) -> dict[str, Any]:
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.base}/rest/api/2/issue/{issue.id}",
            "fields": {
                "summary": issue.fields.get("summary"),
                "status": {"name": (issue.fields.get("status") or {}).get("name", "Open")},
                "issuetype": {"name": "Sub-task", "subtask": True, "id": "10003"},
            },
        }

    def history(self, issue: Issue, start: int, size: int) -> list[dict[str, Any]]:
        """Changelog entries in Jira's shape (``histories`` / ``values``)."""
        return [
            {
                "id": h.id,
                "author": self.user(h.author),
                "created": h.created,
                "items": [
                    {
                        "field": i.field,
                        "fieldtype": "custom" if i.field.startswith("customfield_") else "jira",
                        "fieldId": i.field,
                        "from": i.from_value,
                        "fromString": i.from_string,
                        "to": i.to_value,
                        "toString": i.to_string,
                    }
                    for i in h.items
                ],
            }
            for h in issue.history[start : start + size]
        ]

    def issue(self, issue: Issue, wanted: list[str] | None) -> dict[str, Any]:
        """An issue with the ``fields`` the request asked for (Jira's ``*all``, ``-x`` syntax)."""
        shape: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": f"{self.base}/rest/api/2/issue/{issue.id}",
            "key": issue.key,
        }
        everything = self.all_fields(issue)
        if wanted is None:
            shape["fields"] = everything
            return shape
        chosen: set[str] = set()
        for name in wanted:
            if name in ("*all", "*navigable"):
                chosen |= set(everything)
            elif name.startswith("-"):
                chosen.discard(name[1:])
            elif name and name != "id" and name != "key":
                chosen.add(name)
        if chosen:
            shape["fields"] = {k: v for k, v in everything.items() if k in chosen}
        return shape

    def with_changelog(self, issue: Issue, shape: dict[str, Any]) -> dict[str, Any]:
        """``expand=changelog``: the issue's history inline, at most ``INLINE_HISTORY`` entries
        (a client pages the rest through /issue/{key}/changelog)."""
        shape["changelog"] = {
            "startAt": 0,
            "maxResults": INLINE_HISTORY,
            "total": len(issue.history),
            "histories": self.history(issue, 0, INLINE_HISTORY),
        }
        return shape


# -- request helpers ---------------------------------------------------------------------------


def _params(request: Request, allowed: set[str], *, servicedesk: bool = False) -> dict[str, str]:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(400, f"Unrecognized query parameter: {unknown[0]}", servicedesk=servicedesk)
    return dict(request.query_params)


def _int(params: dict[str, str], name: str, default: int, *, servicedesk: bool = False) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400,
            f"The value '{raw}' is invalid for the '{name}' parameter.",
            servicedesk=servicedesk,
        ) from None
    if value < 0:
        raise ApiError(
            400, f"The '{name}' parameter must not be negative.", servicedesk=servicedesk
        )
    return value


def _fields_param(request: Request, default: list[str] | None) -> list[str] | None:
    values = request.query_params.getlist("fields")
    if not values:
        return default
    return [f.strip() for v in values for f in v.split(",") if f.strip()]


async def _json_body(request: Request, *, servicedesk: bool = False) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(
            400, "Unexpected character in the request body: not JSON.", servicedesk=servicedesk
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", servicedesk=servicedesk)
    return body


class JiraEmulator:
    """The app and its state; ``deployment`` is what ``serverInfo`` reports (Cloud or Server);
    ``rate_limit``: Jira Cloud's rate limiting (``ratelimit``; off unless enabled)."""

    def __init__(
        self,
        store: JiraStore,
        faults: Faults | None = None,
        *,
        deployment: str = "Cloud",
        rate_limit: JiraRateLimit | None = None,
    ) -> None:
        self.store = store
        self.faults = faults or Faults()
        self.deployment = deployment
        self.limiter = RateLimiter(rate_limit)
        self.attachments = Attachments(self)
        self.customer_requests_create = CustomerRequestCreation(self)
        self.app = self._build()

    # -- plumbing ---------------------------------------------------------------------------

    def _build(self) -> Starlette:
        api = "/rest/api/2"
        sd = "/rest/servicedeskapi"
        routes = [
            Route(f"{api}/serverInfo", self.server_info, methods=["GET"]),
            Route(f"{api}/field", self.fields, methods=["GET"]),
            Route(f"{api}/mypermissions", self.my_permissions, methods=["GET"]),
            Route(f"{api}/search/jql", self.search_jql, methods=["GET"]),
            Route(f"{api}/search", self.search_classic, methods=["GET"]),
            Route(f"{api}/issue/{{key}}", self.issue, methods=["GET", "PUT", "DELETE"]),
            Route(f"{api}/issue/{{key}}/comment", self.comments, methods=["GET", "POST"]),
            Route(f"{api}/issue/{{key}}/changelog", self.changelog, methods=["GET"]),
            Route(
                f"{api}/issue/{{key}}/comment/{{cid}}",
                self.comment,
                methods=["GET", "PUT", "DELETE"],
            ),
            Route(f"{api}/project", self.all_projects, methods=["GET"]),
            Route(f"{api}/project/search", self.project_search, methods=["GET"]),
            Route(f"{api}/user", self.user, methods=["GET", "DELETE"]),
            Route(f"{api}/user/search", self.user_search, methods=["GET"]),
            Route(f"{sd}/servicedesk", self.servicedesks, methods=["GET"]),
            Route(f"{sd}/servicedesk/{{desk}}/customer", self.customers, methods=["GET", "DELETE"]),
            Route(f"{sd}/servicedesk/{{desk}}/requesttype", self.request_types, methods=["GET"]),
            Route(f"{sd}/request", self.customer_requests, methods=["GET"]),
            Route(
                f"{sd}/request/{{key}}/participant", self.participants, methods=["GET", "DELETE"]
            ),
            *self.attachments.routes(sd),
            *self.customer_requests_create.routes(sd),
            *self.faults.control_routes(),
            Route("/_emulator/rate-limit", self._rate_limit, methods=["GET", "POST"]),
        ]
        app = Starlette(routes=routes)
        app.add_exception_handler(404, self._not_found)
        app.add_exception_handler(405, self._not_allowed)
        app.add_exception_handler(ApiError, self._api_error)
        app.add_exception_handler(jql.JqlError, self._jql_error)
        # The last added runs first: faults (counting, latency, 429), then the rate limits,
        # then authentication.
        app.add_middleware(BaseHTTPMiddleware, dispatch=self._authenticated)
        app.add_middleware(RateLimitGate, limiter=self.limiter, route_of=_route_of)
        app.add_middleware(FaultGate, faults=self.faults, route_of=_route_of, error=platform_error)
        return app

    async def _rate_limit(self, request: Request) -> Response:
        """GET: the rate limits in force and the 429s answered, by RateLimit-Reason; POST (a
        ``JiraRateLimit`` body): new limits, the buckets full again."""
        if request.method == "POST":
            self.limiter.configure(JiraRateLimit.model_validate(await request.json()))
        return JSONResponse(
            {"settings": self.limiter.settings.model_dump(), "refused": self.limiter.refused}
        )

    async def _not_found(self, request: Request, _: Exception) -> Response:
        if request.url.path.startswith("/rest/servicedeskapi/"):
            return servicedesk_error(404, "The requested resource does not exist.")
        return platform_error(404, f"null for uri: {request.url}")

    async def _not_allowed(self, request: Request, _: Exception) -> Response:
        return platform_error(405, f"Method {request.method} is not allowed for {request.url.path}")

    async def _api_error(self, _: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if isinstance(exc, _FieldErrors):
            return JSONResponse({"errorMessages": [], "errors": exc.errors}, exc.status)
        if exc.servicedesk:
            return servicedesk_error(exc.status, exc.message)
        return platform_error(exc.status, exc.message)

    async def _jql_error(self, _: Request, exc: Exception) -> Response:
        return platform_error(400, str(exc))

    async def _authenticated(self, request: Request, call_next: Handler) -> Response:
        if not request.url.path.startswith("/_emulator/"):
            refused = self._authenticate(request)
            if refused is not None:
                return refused
        return await call_next(request)

    def _authenticate(self, request: Request) -> Response | None:
        """Basic e-mail + API token (Cloud) or a bearer personal access token (Data Center)."""
        header = request.headers.get("authorization", "")
        expected = self.store.credentials
        ok = False
        if header.startswith("Basic "):
            try:
                email, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                email, token = "", ""
            ok = bool(email and token) and (
                expected is None
                or (email, token) == expected
                or self.store.api_tokens.get(email.lower()) == token
            )
            request.state.email = email
        elif header.startswith("Bearer "):
            token = header[7:]
            ok = bool(token) and (expected is None or token == expected[1])
            request.state.email = expected[0] if expected else None
        if ok:
            return None
        return JSONResponse(
            {
                "errorMessages": ["Client must be authenticated to access this resource."],
                "errors": {},
            },
            401,
            headers={"WWW-Authenticate": 'Basic realm="protected-area"'},
        )

    def _renderer(self, request: Request) -> Renderer:
        return Renderer(self.store, str(request.base_url))

    def _issue_or_404(self, request: Request) -> Issue:
        issue = self.store.issue(request.path_params["key"])
        if issue is None:
            raise ApiError(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    def _current_account(self, request: Request) -> str | None:
        email = (getattr(request.state, "email", None) or "").lower()
        return next(
            (u.account_id for u in self.store.users.values() if (u.email or "").lower() == email),
            None,
        )

    # -- platform routes --------------------------------------------------------------------

    async def server_info(self, request: Request) -> Response:
        _params(request, {"doHealthCheck"})
        return JSONResponse(
            {
                "baseUrl": str(request.base_url).rstrip("/"),
                "version": "1001.0.0-SNAPSHOT" if self.deployment == "Cloud" else "9.12.2",
                "versionNumbers": [1001, 0, 0] if self.deployment == "Cloud" else [9, 12, 2],
                "deploymentType": self.deployment,
                "buildNumber": 100250,
                "buildDate": "2026-01-01T00:00:00.000+0000",
                "serverTime": jira_time(),
                "scmInfo": "emulator",
                "serverTitle": "Jira (dsrflow sandbox)",
            }
        )

    async def my_permissions(self, request: Request) -> Response:
        """Get my permissions: whether the caller holds each permission asked for."""
        params = _params(
            request,
            {
                "permissions",
                "projectKey",
                "projectId",
                "issueKey",
                "issueId",
                "commentId",
                "projectUuid",
                "projectConfigurationUuid",
            },
        )
        keys = [k.strip() for k in params.get("permissions", "").split(",") if k.strip()]
        if not keys:
            raise ApiError(400, "The 'permissions' query parameter is required.")
        unknown = [k for k in keys if k not in PERMISSIONS]
        if unknown:
            raise ApiError(400, f"Invalid permission key: {unknown[0]}")
        project = params.get("projectKey")
        if project is not None and project not in self.store.project_keys():
            raise ApiError(404, f"No project could be found with key '{project}'.")
        shapes = {}
        for key in keys:
            name, kind = PERMISSIONS[key]
            shapes[key] = {
                "id": str(list(PERMISSIONS).index(key) + 1),
                "key": key,
                "name": name,
                "type": kind,
                "description": name,
                "havePermission": key not in self.store.denied_permissions,
            }
        return JSONResponse({"permissions": shapes})

    async def fields(self, request: Request) -> Response:
        _params(request, set())
        system = [
            ("summary", "Summary", "string"),
            ("description", "Description", "string"),
            ("status", "Status", "status"),
            ("created", "Created", "datetime"),
            ("updated", "Updated", "datetime"),
            ("reporter", "Reporter", "user"),
            ("labels", "Labels", "array"),
            ("resolution", "Resolution", "resolution"),
            ("resolutiondate", "Resolved", "datetime"),
            ("comment", "Comment", "comments-page"),
            ("project", "Project", "project"),
            ("issuetype", "Issue Type", "issuetype"),
        ]
        shapes = [
            {
                "id": fid,
                "key": fid,
                "name": name,
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                # JQL knows the resolution date as resolutiondate and as resolved.
                "clauseNames": [fid, "resolved"] if fid == "resolutiondate" else [fid],
                "schema": {"type": kind, "system": fid},
            }
            for fid, name, kind in system
        ]
        for fid, name in sorted(self.store.custom_fields.items()):
            number = fid.removeprefix("customfield_")
            shapes.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": name,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{number}]", name],
                    "schema": {"type": "any", "custom": "emulator", "customId": int(number)},
                }
            )
        return JSONResponse(shapes)

    async def search_jql(self, request: Request) -> Response:
        """Jira Cloud's enhanced search: ``nextPageToken`` paging, ``isLast``, no total."""
        params = _params(
            request,
            {
                "jql",
                "nextPageToken",
                "maxResults",
                "fields",
                "expand",
                "properties",
                "fieldsByKeys",
                "failFast",
                "reconcileIssues",
            },
        )
        query = self._parse(params.get("jql", ""), bounded=True)
        size = min(_int(params, "maxResults", 50), MAX_SEARCH_RESULTS) or 50
        asked = size
        if self.store.search_page_cap:
            size = min(size, self.store.search_page_cap)
        start = _decode_token(params.get("nextPageToken"))
        hits = self.store.search(query)
        page = hits[start : start + size]
        render = self._renderer(request)
        wanted = _fields_param(request, ["id"])
        body: dict[str, Any] = {"issues": [render.issue(i, wanted) for i in page]}
        # ``isLast`` is optional in the Cloud schema (SearchAndReconcileResults) and the last page
        # has no ``nextPageToken`` at all (JRACLOUD-92184): a client pages on the token alone.
        # The emulator sends ``isLast`` only on full pages, never on the last one or a short one.
        if start + size < len(hits):
            body["nextPageToken"] = _encode_token(start + size)
            if size == asked:
                body["isLast"] = False
        return JSONResponse(body)

    async def search_classic(self, request: Request) -> Response:
        """Data Center's search (deprecated on Cloud): ``startAt``/``maxResults``/``total``."""
        params = _params(
            request,
            {
                "jql",
                "startAt",
                "maxResults",
                "fields",
                "expand",
                "validateQuery",
                "properties",
                "fieldsByKeys",
            },
        )
        query = self._parse(params.get("jql", ""), bounded=False)
        start = _int(params, "startAt", 0)
        size = min(_int(params, "maxResults", 50), MAX_SEARCH_RESULTS)
        hits = self.store.search(query)
        render = self._renderer(request)
        wanted = _fields_param(request, ["*navigable"])
        return JSONResponse(
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(hits),
                "issues": [render.issue(i, wanted) for i in hits[start : start + size]],
            }
        )

    def _parse(self, text: str, *, bounded: bool) -> jql.Query:
        query = jql.parse(text)
        if bounded and query.where is None:
            # Jira Cloud's enhanced search refuses queries without a restriction.
            raise ApiError(
                400,
                "Unbounded JQL queries are not allowed here. "
                "Please add a search restriction to your query.",
            )
        return query

    async def issue(self, request: Request) -> Response:
        issue = self._issue_or_404(request)
        if request.method == "GET":
            params = _params(
                request, {"fields", "expand", "properties", "fieldsByKeys", "updateHistory"}
            )
            render = self._renderer(request)
            shape = render.issue(issue, _fields_param(request, None))
            if "changelog" in params.get("expand", "").split(","):
                shape = render.with_changelog(issue, shape)
            return JSONResponse(shape)
        if request.method == "DELETE":
            params = _params(request, {"deleteSubtasks"})
            flag = params.get("deleteSubtasks", "false").lower()
            if flag not in ("true", "false"):
                raise ApiError(400, "deleteSubtasks must be true or false.")
            # Delete issue: "An issue cannot be deleted if it has one or more subtasks. To delete
            # an issue with subtasks, set deleteSubtasks" (400 otherwise; Cloud platform REST
            # API v2, Issues). The wording of Jira's message is the emulator's.
            if self.store.subtasks(issue) and flag != "true":
                raise ApiError(
                    400,
                    "The issue has subtasks: set deleteSubtasks to true to delete them with it.",
                )
            self.store.delete_issue(issue)
            return Response(status_code=204)
        _params(
            request,
            {
                "notifyUsers",
                "overrideScreenSecurity",
                "overrideEditableFlag",
                "returnIssue",
                "expand",
            },
        )
        body = await _json_body(request)
        self._edit_issue(issue, body, self._current_account(request))
        return Response(status_code=204)

    def _edit_issue(self, issue: Issue, body: dict[str, Any], author: str | None) -> None:
        unknown = set(body) - {"fields", "update", "properties", "historyMetadata", "transition"}
        if unknown:
            raise ApiError(400, f'Unrecognized field "{sorted(unknown)[0]}"')
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        errors: dict[str, str] = {}
        for name in list(fields) + list(update):
            if (
                name not in ("summary", "description", "labels", "reporter", PARTICIPANTS_FIELD)
                and name not in self.store.custom_fields
            ):
                errors[name] = (
                    f"Field '{name}' cannot be set. "
                    "It is not on the appropriate screen, or unknown."
                )
        if "summary" in fields and not (fields["summary"] or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        if "summary" in fields and "\n" in (fields["summary"] or ""):
            errors["summary"] = "The summary is invalid because it contains newline characters."
        reporter = fields.get("reporter", ...)
        if (
            reporter is not ...
            and reporter is not None
            and (
                not isinstance(reporter, dict) or reporter.get("accountId") not in self.store.users
            )
        ):
            errors["reporter"] = "Specify a valid value for reporter"
        if errors:
            raise_errors(errors)
        with self.store.lock:
            before = {n: self._shown(issue, n) for n in list(fields) + list(update)}
            for name, value in fields.items():
                if name == "reporter":
                    issue.fields["reporter"] = value["accountId"] if value else None
                elif name == PARTICIPANTS_FIELD:
                    issue.participants = [u["accountId"] for u in value or []]
                else:
                    issue.fields[name] = value
            for name, operations in update.items():
                current = list(issue.fields.get(name) or [])
                for op in operations:
                    if "add" in op and op["add"] not in current:
                        current.append(op["add"])
                    elif "remove" in op and op["remove"] in current:
                        current.remove(op["remove"])
                    elif "set" in op:
                        current = list(op["set"])
                issue.fields[name] = current
            # An edit keeps the old values in the issue's history (Get changelogs).
            changed = [
                HistoryItem(name, old[0], old[1], new[0], new[1])
                for name, old in before.items()
                if old != (new := self._shown(issue, name))
            ]
            self.store.record_change(issue, author, changed)
            issue.fields["updated"] = jira_time()
            issue.touch()

    def _shown(self, issue: Issue, name: str) -> tuple[str | None, str | None]:
        """(from/to, fromString/toString) of a field as a changelog item shows it."""
        if name == "reporter":
            account = issue.fields.get("reporter")
            user = self.store.accounts.get(account) if account else None
            return account, (user.display_name if user else None)
        if name == PARTICIPANTS_FIELD:
            return (
                ",".join(issue.participants) or None,
                ",".join(
                    u.display_name for p in issue.participants if (u := self.store.accounts.get(p))
                )
                or None,
            )
        value = issue.fields.get(name)
        if isinstance(value, list):
            return None, " ".join(map(str, value)) or None
        if value is None:
            return None, None
        return None, value if isinstance(value, str) else json.dumps(value)

    async def changelog(self, request: Request) -> Response:
        """Get changelogs: a PageBean (``startAt``, ``maxResults`` at most 100, ``total``,
        ``isLast``, ``values``), oldest first (Cloud platform REST API v2, Issues)."""
        issue = self._issue_or_404(request)
        params = _params(request, {"startAt", "maxResults"})
        start = _int(params, "startAt", 0)
        size = min(_int(params, "maxResults", 100), 100) or 100
        total = len(issue.history)
        return JSONResponse(
            {
                "self": str(request.url),
                "startAt": start,
                "maxResults": size,
                "total": total,
                "isLast": start + size >= total,
                "values": self._renderer(request).history(issue, start, size),
            }
        )

    async def comments(self, request: Request) -> Response:
        issue = self._issue_or_404(request)
        render = self._renderer(request)
        if request.method == "POST":
            _params(request, {"expand"})
            body = await _json_body(request)
            if not isinstance(body.get("body"), str) or not body["body"].strip():
                raise_errors({"comment": "Comment body can not be empty!"})
            comment = self.store.add_comment(issue, self._current_account(request), body["body"])
            return JSONResponse(render.comment(issue, comment), 201)
        params = _params(request, {"startAt", "maxResults", "orderBy", "expand"})
        start = _int(params, "startAt", 0)
        size = min(_int(params, "maxResults", 5000), 5000)
        ordered = list(issue.comments)
        if params.get("orderBy") == "-created":
            ordered.reverse()
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": size,
                "total": len(ordered),
                "comments": [render.comment(issue, c) for c in ordered[start : start + size]],
            }
        )

    async def comment(self, request: Request) -> Response:
        issue = self._issue_or_404(request)
        cid = request.path_params["cid"]
        comment = next((c for c in issue.comments if c.id == cid), None)
        if comment is None:
            raise ApiError(404, f"Can not find a comment for the id: {cid}.")
        if request.method == "GET":
            _params(request, {"expand"})
            return JSONResponse(self._renderer(request).comment(issue, comment))
        if request.method == "DELETE":
            _params(request, {"expand"})
            with self.store.lock:
                issue.comments.remove(comment)
                issue.touch()
            return Response(status_code=204)
        _params(request, {"notifyUsers", "overrideEditableFlag", "expand"})
        body = await _json_body(request)
        if not isinstance(body.get("body"), str) or not body["body"].strip():
            raise_errors({"comment": "Comment body can not be empty!"})
        with self.store.lock:
            comment.body = body["body"]
            comment.updated = jira_time()
            issue.touch()
        return JSONResponse(self._renderer(request).comment(issue, comment))

    async def user(self, request: Request) -> Response:
        """Get user / Delete user. Cloud names the user by ``accountId`` (``username`` and
        ``key`` are gone there since the GDPR changes); Data Center by ``username`` or ``key``.
        Delete answers 204 and needs site administration, which the sandbox's account has;
        an unknown user is 404, deleting oneself 400."""
        cloud = self.deployment == "Cloud"
        names = {"accountId"} if cloud else {"username", "key"}
        allowed = names | ({"expand"} if request.method == "GET" else set())
        params = _params(request, allowed)
        given = next((params[n] for n in sorted(names) if params.get(n)), None)
        if given is None:
            wanted = "accountId" if cloud else "username or key"
            raise ApiError(400, f"The query parameter '{wanted}' is required.")
        user = self.store.users.get(given)
        if user is None:
            what = f"account ID '{given}'" if cloud else f"name '{given}'"
            raise ApiError(404, f"The user with {what} does not exist.")
        if request.method == "GET":
            shape = self._renderer(request).user(user.account_id) or {}
            if "applicationRoles" in params.get("expand", ""):
                shape["applicationRoles"] = _application_roles(user)
            return JSONResponse(shape)
        if user.account_id == self._current_account(request):
            raise ApiError(400, "You cannot delete the currently logged in user.")
        self.store.delete_user(user.account_id)
        return Response(status_code=204)

    async def user_search(self, request: Request) -> Response:
        params = _params(
            request,
            {
                "query",
                "username",
                "accountId",
                "startAt",
                "maxResults",
                "property",
                "includeActive",
                "includeInactive",
            },
        )
        query = params.get("query") or params.get("username") or params.get("accountId")
        if not query:
            raise ApiError(400, "The query parameter 'query' is required.")
        # Find users: "Anonymous calls or calls by users without the required permission
        # [Browse users and groups] return empty search results" (Cloud REST API v2).
        if "USER_PICKER" in self.store.denied_permissions:
            return JSONResponse([])
        start = _int(params, "startAt", 0)
        size = min(_int(params, "maxResults", 50), 1000)
        users = self.store.find_users(query)[start : start + size]
        render = self._renderer(request)
        return JSONResponse([render.user(u.account_id) for u in users])

    async def all_projects(self, request: Request) -> Response:
        """Get all projects (GET /rest/api/2/project): every project visible to the caller in
        one unpaged list. Data Center's route; Cloud still serves it, deprecated in favour of
        Get projects paginated. ``recent`` is not emulated (refused), the rest is accepted."""
        _params(request, {"expand", "includeArchived", "browseArchive", "properties"})
        return JSONResponse(self._projects(request))

    def _projects(self, request: Request) -> list[dict[str, Any]]:
        """The site's projects as the project routes render them, by key."""
        base = str(request.base_url).rstrip("/")
        desks = {d.project_key: d for d in self.store.servicedesks.values()}
        keys = sorted(self.store.project_keys())
        projects: list[dict[str, Any]] = []
        for index, key in enumerate(keys):
            desk = desks.get(key)
            if desk:  # the projectId its service desk reports
                pid = str(10000 + int(desk.id)) if desk.id.isdigit() else desk.id
            else:
                pid = str(20000 + index)
            projects.append(
                {
                    "self": f"{base}/rest/api/2/project/{pid}",
                    "id": pid,
                    "key": key,
                    "name": desk.project_name if desk else key,
                    "projectTypeKey": "service_desk" if desk else "software",
                    "simplified": False,
                    "style": "classic",
                    "isPrivate": False,
                }
            )
        return projects

    async def project_search(self, request: Request) -> Response:
        """Get projects paginated (GET /rest/api/2/project/search, Jira Cloud platform REST
        API, group Projects): a ``PageBeanProject`` (``self``, ``nextPage`` while there is more,
        ``maxResults``, ``startAt``, ``total``, ``isLast``, ``values``), ordered by key by
        default. ``maxResults`` defaults to 50 and Atlassian caps it at 50 per call
        (JRACLOUD-84803, "returns maximum of 50 results per call"). Project type: a project with
        a service desk is ``service_desk``, any other ``software`` (the emulator's choice)."""
        if self.deployment != "Cloud":
            # Data Center's REST reference has no project/search: Get all projects only.
            raise ApiError(404, f"null for uri: {request.url}")
        params = _params(request, {"startAt", "maxResults", "orderBy"})
        if params.get("orderBy", "key") not in ("key", "+key"):
            raise ApiError(400, "The emulator orders projects by key only.")
        start = _int(params, "startAt", 0)
        size = min(_int(params, "maxResults", 50), 50) or 50
        projects = self._projects(request)
        page = projects[start : start + size]
        last = start + size >= len(projects)
        path = f"{str(request.base_url).rstrip('/')}/rest/api/2/project/search"
        body: dict[str, Any] = {
            "self": f"{path}?startAt={start}&maxResults={size}",
            "maxResults": size,
            "startAt": start,
            "total": len(projects),
            "isLast": last,
            "values": page,
        }
        if not last:
            body["nextPage"] = f"{path}?startAt={start + size}&maxResults={size}"
        return JSONResponse(body)

    # -- Service Management routes ----------------------------------------------------------

    def _page(self, request: Request, values: list[Any], params: dict[str, str]) -> dict[str, Any]:
        start = _int(params, "start", 0, servicedesk=True)
        limit = min(_int(params, "limit", 50, servicedesk=True), 100) or 50
        page = values[start : start + limit]
        return {
            "size": len(page),
            "start": start,
            "limit": limit,
            "isLastPage": start + limit >= len(values),
            "values": page,
            "_links": {
                "base": str(request.base_url).rstrip("/"),
                "context": "",
                "self": str(request.url),
            },
        }

    async def servicedesks(self, request: Request) -> Response:
        params = _params(request, {"start", "limit", "includeArchived"}, servicedesk=True)
        base = str(request.base_url).rstrip("/")
        desks = [
            {
                "id": d.id,
                "projectId": str(10000 + int(d.id)) if d.id.isdigit() else d.id,
                "projectName": d.project_name,
                "projectKey": d.project_key,
                "_links": {"self": f"{base}/rest/servicedeskapi/servicedesk/{d.id}"},
            }
            for d in self.store.servicedesks.values()
        ]
        return JSONResponse(self._page(request, desks, params))

    async def customers(self, request: Request) -> Response:
        desk = self.store.servicedesks.get(request.path_params["desk"])
        if desk is None:
            raise ApiError(404, "The service desk does not exist.", servicedesk=True)
        if request.method == "DELETE":
            _params(request, set(), servicedesk=True)
            body = await _json_body(request, servicedesk=True)
            ids = body.get("accountIds") or []
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ApiError(400, "accountIds must be a list of account ids.", servicedesk=True)
            with self.store.lock:
                desk.customers = [c for c in desk.customers if c not in ids]
            return Response(status_code=204)
        params = _params(request, {"query", "start", "limit", "accountIds"}, servicedesk=True)
        render = self._renderer(request)
        query = (params.get("query") or "").lower()
        with self.store.lock:
            members = [
                render.user(a, customer_list=True)
                for a in desk.customers
                if not query or _customer_matches(self.store.users.get(a), a, query)
            ]
        return JSONResponse(self._page(request, members, params))

    async def request_types(self, request: Request) -> Response:
        """Get request types (GET /rest/servicedeskapi/servicedesk/{serviceDeskId}/requesttype,
        https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/):
        the desk's customer request types, paged; ``searchQuery`` matches the name or
        description. The emulator has no request type groups, so ``groupId`` finds nothing,
        and no hidden types. Pages hold at most 100 (``_page``), as the emulator's other
        Service Management lists."""
        params = _params(
            request,
            {
                "start",
                "limit",
                "searchQuery",
                "groupId",
                "expand",
                "includeHiddenRequestTypesInSearch",
                "restrictionStatus",
            },
            servicedesk=True,
        )
        desk = self.store.servicedesks.get(request.path_params["desk"])
        if desk is None:
            raise ApiError(404, "The service desk does not exist.", servicedesk=True)
        base = str(request.base_url).rstrip("/")
        query = (params.get("searchQuery") or "").lower()
        with self.store.lock:
            kinds = [
                {
                    "id": type_id,
                    "_links": {
                        "self": f"{base}/rest/servicedeskapi/servicedesk/{desk.id}"
                        f"/requesttype/{type_id}"
                    },
                    "name": name,
                    "description": "",
                    "helpText": "",
                    "issueTypeId": "10001",
                    "serviceDeskId": desk.id,
                    "portalId": desk.id,
                    "groupIds": [],
                }
                for type_id, name in desk.request_types.items()
                if query in name.lower() and "groupId" not in params
            ]
        return JSONResponse(self._page(request, kinds, params))

    async def customer_requests(self, request: Request) -> Response:
        """Get customer requests (GET /rest/servicedeskapi/request,
        https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-request/):
        "ordered chronologically by the latest activity on each request", paged by
        ``start``/``limit`` (at most 100 a page here). "For customers, the list returned will
        include request they created (or were created on their behalf) or are participating in
        only":
        an agent's list holds every request of the desks, narrowed by ``serviceDeskId``,
        ``requestTypeId`` (which needs ``serviceDeskId``), ``requestStatus``
        (``OPEN_REQUESTS`` | ``CLOSED_REQUESTS`` | ``ALL_REQUESTS``) and ``requestOwnership``
        (``OWNED_REQUESTS``, ``PARTICIPATED_REQUESTS``: the caller's own)."""
        params = _params(
            request,
            {
                "searchTerm",
                "requestOwnership",
                "requestStatus",
                "approvalStatus",
                "organizationId",
                "serviceDeskId",
                "requestTypeId",
                "expand",
                "start",
                "limit",
            },
            servicedesk=True,
        )
        desk_id = params.get("serviceDeskId")
        desk = self.store.servicedesks.get(desk_id) if desk_id else None
        if desk_id and desk is None:
            raise ApiError(404, "The service desk does not exist.", servicedesk=True)
        type_id = params.get("requestTypeId")
        if type_id and desk is None:
            raise ApiError(
                400, "requestTypeId can only be used together with serviceDeskId.", servicedesk=True
            )
        status = params.get("requestStatus") or "ALL_REQUESTS"
        if status not in ("OPEN_REQUESTS", "CLOSED_REQUESTS", "ALL_REQUESTS"):
            raise ApiError(400, f"Invalid requestStatus: {status}", servicedesk=True)
        caller = self._current_account(request)
        ownership = set(filter(None, (params.get("requestOwnership") or "").split(",")))
        user = self.store.users.get(caller) if caller else None
        if user is None or user.kind == "customer":
            # A customer's list holds their own requests and those they take part in only.
            ownership = {"OWNED_REQUESTS", "PARTICIPATED_REQUESTS"}
        term = (params.get("searchTerm") or "").lower()
        projects = {d.project_key for d in self.store.servicedesks.values()}
        with self.store.lock:
            hits = [
                i
                for i in self.store.issues.values()
                if i.project in projects
                and (desk is None or i.project == desk.project_key)
                and (not type_id or _request_type_of(i)[0] == type_id)
                and (status != "OPEN_REQUESTS" or not i.fields.get("resolutiondate"))
                and (status != "CLOSED_REQUESTS" or i.fields.get("resolutiondate"))
                and (term in str(i.fields.get("summary") or "").lower())
                and _owned(i, caller, ownership)
            ]
        hits.sort(key=lambda i: str(i.fields.get("updated") or ""), reverse=True)
        render = self._renderer(request)
        return JSONResponse(
            self._page(request, [self._customer_request(render, i) for i in hits], params)
        )

    def _customer_request(self, render: Renderer, issue: Issue) -> dict[str, Any]:
        """Service Management's CustomerRequest shape."""
        desk = next(
            (d for d in self.store.servicedesks.values() if d.project_key == issue.project), None
        )
        created = str(issue.fields["created"])
        moment = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%f%z")
        status = str((issue.fields.get("status") or {}).get("name", "Open"))
        return {
            "issueId": issue.id,
            "issueKey": issue.key,
            "requestTypeId": _request_type_of(issue)[0],
            "serviceDeskId": desk.id if desk else None,
            "createdDate": {
                "iso8601": created,
                "jira": created,
                "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
                "epochMillis": int(moment.timestamp() * 1000),
            },
            "reporter": render.user(issue.reporter, customer_list=True),
            "requestFieldValues": [
                {"fieldId": "summary", "label": "Summary", "value": issue.fields.get("summary")},
                {
                    "fieldId": "description",
                    "label": "Description",
                    "value": issue.fields.get("description"),
                },
            ],
            "currentStatus": {
                "status": status,
                "statusCategory": "DONE" if issue.fields.get("resolutiondate") else "INDETERMINATE",
            },
            "_links": {
                "jiraRest": f"{render.base}/rest/api/2/issue/{issue.id}",
                "self": f"{render.base}/rest/servicedeskapi/request/{issue.id}",
            },
        }

    async def participants(self, request: Request) -> Response:
        issue = self.store.issue(request.path_params["key"])
        if issue is None:
            raise ApiError(404, "The request does not exist.", servicedesk=True)
        render = self._renderer(request)
        if request.method == "DELETE":
            _params(request, set(), servicedesk=True)
            body = await _json_body(request, servicedesk=True)
            ids = body.get("accountIds") or []
            if not isinstance(ids, list):
                raise ApiError(400, "accountIds must be a list of account ids.", servicedesk=True)
            with self.store.lock:
                old = self._shown(issue, PARTICIPANTS_FIELD)
                issue.participants = [p for p in issue.participants if p not in ids]
                new = self._shown(issue, PARTICIPANTS_FIELD)
                if old != new:
                    self.store.record_change(
                        issue,
                        self._current_account(request),
                        [HistoryItem("Request participants", *old, *new)],
                    )
            return JSONResponse(
                self._page(request, [render.user(p) for p in issue.participants], {})
            )
        params = _params(request, {"start", "limit"}, servicedesk=True)
        return JSONResponse(
            self._page(request, [render.user(p) for p in issue.participants], params)
        )


def _application_roles(user: User) -> dict[str, Any]:
    """The ``applicationRoles`` expansion: portal-only customers have none, agents hold Jira
    Service Management (what Data Center tells them apart by)."""
    items = (
        []
        if user.kind == "customer"
        else [{"key": "jira-servicedesk", "name": "Jira Service Management"}]
    )
    return {"size": len(items), "items": items}


def _customer_matches(user: User | None, account_id: str, query: str) -> bool:
    """The customer list's ``query`` filter: a substring of the id, the name or a shown
    address; an address the list hides only by an exact match, as in Find users."""
    if user is None:
        return query in account_id.lower()
    shown = user.email_visible or user.kind == "customer"
    text = " ".join([account_id, (user.email or "") if shown else "", user.display_name])
    return query in text.lower() or (user.email or "").lower() == query


def _request_type_of(issue: Issue) -> tuple[str | None, str | None]:
    """The issue's request type (id, name), from its Customer Request Type field."""
    value = issue.fields.get(REQUEST_TYPE_FIELD)
    kind = value.get("requestType") if isinstance(value, dict) else None
    if not isinstance(kind, dict):
        return None, None
    return kind.get("id"), kind.get("name")


def _owned(issue: Issue, caller: str | None, ownership: set[str]) -> bool:
    """``requestOwnership``: none (or ALL_REQUESTS, ORGANIZATION...) leaves an agent's list
    whole; OWNED_REQUESTS / PARTICIPATED_REQUESTS narrow it to the caller's own."""
    narrowing = ownership & {"OWNED_REQUESTS", "PARTICIPATED_REQUESTS"}
    if not narrowing or "ALL_REQUESTS" in ownership:
        return True
    return ("OWNED_REQUESTS" in narrowing and issue.reporter == caller) or (
        "PARTICIPATED_REQUESTS" in narrowing and caller in issue.participants
    )


def raise_errors(errors: dict[str, str]) -> None:
    raise _FieldErrors(errors)


class _FieldErrors(ApiError):
    """Jira's 400 with per-field ``errors``."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(400, "; ".join(errors.values()))
        self.errors = errors


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        return int(json.loads(base64.urlsafe_b64decode(padded))["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "The provided next page token is invalid or expired.") from None


_ROUTES = [
    (re.compile(r"^/rest/api/2/issue/[^/]+/comment/[^/]+$"), "issue/{key}/comment/{id}"),
    (re.compile(r"^/rest/api/2/issue/[^/]+/comment$"), "issue/{key}/comment"),
    (re.compile(r"^/rest/api/2/issue/[^/]+$"), "issue/{key}"),
    (re.compile(r"^/rest/servicedeskapi/servicedesk/[^/]+/customer$"), "servicedesk/{id}/customer"),
    (re.compile(r"^/rest/servicedeskapi/request/[^/]+/participant$"), "request/{key}/participant"),
    (
        re.compile(r"^/rest/servicedeskapi/servicedesk/[^/]+/requesttype$"),
        "servicedesk/{id}/requesttype",
    ),
]


def _route_of(request: Request) -> str:
    """The counter label of a request: method and route template, never the ids in it."""
    path = request.url.path
    for pattern, label in _ROUTES:
        if pattern.match(path):
            return f"{request.method} {label}"
    for prefix in ("/rest/api/2/", "/rest/servicedeskapi/"):
        if path.startswith(prefix):
            return f"{request.method} {path.removeprefix(prefix)}"
    return f"{request.method} {path}"
