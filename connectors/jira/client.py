"""The ``jira`` package's client, wrapped: authentication, bounded retries honouring
Retry-After, and errors that say what failed without carrying any content.

The client's own retry loop is switched off (``max_retries=0``) so that one place decides how
long to wait: a 429 or 503 waits ``Retry-After`` seconds (at most ``max_retry_wait_s``), other
5xx answers and connection failures back off briefly; after ``max_retries`` further attempts the
source is ``SourceUnavailable``. Messages name the operation and the HTTP status only: Jira's
error texts and URLs can echo a query, i.e. the subject's address.

Writes pass ``confirm`` (a fresh read: has the write taken effect?). They are sent again after
a 429 only, refused before they ran (``connectors/writes.py``); when the answer is lost (a
connection failure, a timeout, a 5xx) the target is read again instead: applied means done,
not applied means the write may go again (bounded like every retry). Never a blind resend.

What the site says about itself (serverInfo, field ids, service desks) is shared by the
connectors of a process for a while, and with ``site_facts_file`` between commands
(``connectors.jira.sitecache``); nothing about people is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from jira import JIRA, JIRAError

from connectors.base import SourceUnavailable
from connectors.jira import sitecache
from connectors.jira.settings import JiraSource

T = TypeVar("T")
RETRYABLE = {429, 500, 502, 503, 504}


class JiraRequestError(SourceUnavailable):
    """A request Jira refused for a reason retrying cannot fix (400, 404, ...): the source
    fails loudly (the CLI says so in one line), never a partial answer."""

    def __init__(self, source: str, what: str, status: int | None) -> None:
        self.status = status
        super().__init__(source, f"Jira refused {what}: HTTP {status}")


class JiraClient:
    """One authenticated ``jira.JIRA`` plus the retry policy; counts the HTTP requests made."""

    def __init__(
        self,
        source_name: str,
        source: JiraSource,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source_name = source_name
        self.max_retries = source.max_retries
        self.max_wait = source.max_retry_wait_s
        self.sleep = sleep
        self.requests = 0
        auth: dict[str, Any] = {}
        try:
            if source.deployment == "cloud":
                assert source.email and source.api_token
                secret = source.api_token.resolve()
                auth["basic_auth"] = (source.email, secret)
            else:
                assert source.personal_access_token
                secret = source.personal_access_token.resolve()
                auth["token_auth"] = secret
        except LookupError as exc:
            raise SourceUnavailable(source_name, f"no credentials: {exc}") from exc
        self.site = sitecache.facts(
            sitecache.site_key(source.url, source.email or "", secret),
            source.metadata_cache_s,
            path=source.site_facts_file,
        )
        # serverInfo (Cloud or Data Center decides the search API) is read here, through the
        # counting hook, or taken from the site's cached facts: not by the constructor.
        self.jira: JIRA = JIRA(
            server=source.url,
            max_retries=0,
            timeout=source.timeout_s,
            options={"check_update": False},
            get_server_info=False,
            **auth,
        )
        self.jira._session.hooks["response"].append(self._count)
        if self.site.server_info is None:
            self.site.keep(server_info=self.call("reading serverInfo", self.jira.server_info))
        info = self.site.server_info or {}
        self.jira._version = tuple(info.get("versionNumbers") or (0, 0, 0))
        self.jira.deploymentType = info.get("deploymentType")

    def _count(self, response: requests.Response, *_: Any, **__: Any) -> requests.Response:
        self.requests += 1
        return response

    @property
    def is_cloud(self) -> bool:
        return bool(self.jira._is_cloud)

    def url(self, path: str) -> str:
        """An absolute URL on the site, for the Service Management API the client lacks."""
        return f"{self.jira.server_url}{path}"

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        missing_ok: bool = False,
        confirm: Callable[[], bool] | None = None,
    ) -> Any:
        """Run one request with the retry policy; ``missing_ok`` (for a request naming one
        item: an issue, a comment, a user): Jira's own 404 gives None, as the item is gone.

        ``confirm`` makes it a write: after a lost answer, ``confirm()`` reads the target
        and says whether the write took effect (then this returns True) or not (sent again)."""
        attempt = 0
        while True:
            try:
                return fn()
            except JIRAError as exc:
                status = exc.status_code
                if status == 404 and missing_ok and _jira_not_found(exc):
                    return None
                if status in (401, 403):
                    raise SourceUnavailable(
                        self.source_name, f"{what}: access refused (HTTP {status})"
                    ) from None
                if status not in RETRYABLE:
                    raise JiraRequestError(self.source_name, what, status) from None
                wait = _retry_after(exc, attempt)
                problem = f"HTTP {status}"
                lost = confirm is not None and status != 429
            except (requests.ConnectionError, requests.Timeout) as exc:
                wait = min(0.5 * 2**attempt, self.max_wait)
                problem = type(exc).__name__
                lost = confirm is not None
            if lost and confirm is not None and confirm():
                return True  # the write was applied; only its answer went missing
            if attempt >= self.max_retries or wait > self.max_wait:
                done = "the write was not applied: " if lost else ""
                raise SourceUnavailable(
                    self.source_name, f"{what}: {done}{problem} after {attempt + 1} attempt(s)"
                ) from None
            attempt += 1
            self.sleep(min(wait, self.max_wait))

    # -- reads ------------------------------------------------------------------------------

    def get(
        self,
        what: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        experimental: bool = False,
    ) -> Any:
        """GET a JSON resource by absolute path (e.g. /rest/servicedeskapi/servicedesk);
        ``experimental`` opts in to Service Management's experimental routes."""
        headers = {"X-ExperimentalApi": "opt-in"} if experimental else {}
        return self.call(
            what,
            lambda: self.jira._session.get(self.url(path), params=params, headers=headers).json(),
        )

    def get_json(
        self,
        what: str,
        api_path: str,
        params: dict[str, Any] | None = None,
        *,
        missing_ok: bool = False,
    ) -> Any:
        """GET a platform resource (e.g. ``issue/SUP-1``); ``missing_ok`` as for ``call``."""
        return self.call(
            what, lambda: self.jira._get_json(api_path, params=params), missing_ok=missing_ok
        )

    def fields_by_name(self, *, fresh: bool = False) -> dict[str, str]:
        """Field ids by their JQL clause name (``/field``, read once per site for a while:
        ``connectors.jira.sitecache``; ``fresh``: read again). The SDK uses the same map for
        its searches."""
        if fresh or self.site.fields is None:
            self.jira._fields_cache_value = {}
            self.site.keep(
                fields=dict(self.call("reading the fields", lambda: self.jira._fields_cache))
            )
        fields = self.site.fields or {}
        self.jira._fields_cache_value = dict(fields)
        return dict(fields)

    def my_permissions(self, project: str | None, keys: str) -> dict[str, Any] | None:
        """Get my permissions (in ``project``, or global); None for a project Jira does not
        know or the account cannot see."""
        answer: dict[str, Any] | None = self.call(
            "reading the account's permissions",
            lambda: self.jira.my_permissions(projectKey=project, permissions=keys),
            missing_ok=True,
        )
        return answer

    def search_page(
        self,
        what: str,
        jql: str,
        fields: list[str],
        *,
        page_size: int,
        token: str | None = None,
        start: int = 0,
    ) -> dict[str, Any]:
        """One page of a JQL search: Cloud's enhanced search (by ``token``), or Data
        Center's (by ``start``)."""
        if self.is_cloud:
            page = self.call(
                what,
                lambda: self.jira.enhanced_search_issues(
                    jql,
                    nextPageToken=token,
                    maxResults=page_size,
                    fields=list(fields),
                    json_result=True,
                ),
            )
        else:
            page = self.call(
                what,
                lambda: self.jira.search_issues(
                    jql, startAt=start, maxResults=page_size, fields=list(fields), json_result=True
                ),
            )
        return dict(page)

    # -- writes (each with its ``confirm``: see the module's docstring) ---------------------

    def put(
        self, what: str, api_path: str, body: dict[str, Any], confirm: Callable[[], bool]
    ) -> None:
        """PUT a JSON body to a platform resource (e.g. ``issue/SUP-1``); Jira answers 204.
        ``confirm``: whether the resource, read again, holds what the PUT sets."""
        url = self.jira._get_url(api_path)
        self.call(what, lambda: self.jira._session.put(url, data=json.dumps(body)), confirm=confirm)

    def delete(
        self, what: str, path: str, body: dict[str, Any], confirm: Callable[[], bool]
    ) -> None:
        """DELETE with a JSON body (Service Management); ``confirm`` as for ``put``."""
        self.call(
            what,
            lambda: self.jira._session.delete(
                self.url(path),
                data=json.dumps(body),
                headers={"X-ExperimentalApi": "opt-in", "Content-Type": "application/json"},
            ),
            confirm=confirm,
        )

    def delete_resource(
        self,
        what: str,
        api_path: str,
        params: dict[str, str] | None,
        confirm: Callable[[], bool],
    ) -> bool:
        """DELETE a platform resource (an issue, a user); whether it was still there (Jira's
        own 404: already gone). ``confirm``: whether it is gone, read again."""
        url = self.jira._get_url(api_path)
        answer = self.call(
            what,
            lambda: self.jira._session.delete(url, params=params),
            missing_ok=True,
            confirm=confirm,
        )
        return answer is not None

    def delete_comment(self, what: str, key: str, cid: str, confirm: Callable[[], bool]) -> None:
        self.call(
            what, lambda: self.jira.comment(key, cid).delete(), missing_ok=True, confirm=confirm
        )

    def update_comment(
        self, what: str, key: str, cid: str, body: str, confirm: Callable[[], bool]
    ) -> None:
        self.call(what, lambda: self.jira.comment(key, cid).update(body=body), confirm=confirm)

    def close(self) -> None:
        self.jira.close()


def _retry_after(exc: JIRAError, attempt: int) -> float:
    """Seconds to wait: Retry-After when Jira sends it (429, 503), else a short backoff."""
    headers = getattr(exc.response, "headers", None) or {}
    raw = headers.get("Retry-After")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    return 0.5 * 2**attempt


def _jira_not_found(exc: JIRAError) -> bool:
    """Whether a 404 is Jira's own answer (its JSON error body with ``errorMessages``), not a
    proxy's or a wrong path's page: only Jira saying so makes the item absent."""
    try:
        body = exc.response.json() if exc.response is not None else None
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("errorMessages"), list)
