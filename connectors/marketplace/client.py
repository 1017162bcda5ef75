"""The only module speaking to the Marketplace API (httpx; Atlassian publishes no SDK).

Paging follows ``_links.next`` until a page has none: the API caps ``limit`` (50 for the
reporting collections) and a page may hold fewer items than asked, so neither the count nor a
short page says "last". A 429 or 503 waits ``Retry-After`` seconds (at most
``max_retry_wait_s``; Atlassian's REST APIs throttle with 429 and Retry-After, DESIGN.md; the
Marketplace reference read here does not say whether its 429 carries the header, so without
one the client backs off on its own), other 5xx and
connection failures back off briefly; after ``max_retries`` further attempts the source is
``SourceUnavailable``. 401/403 and other 4xx fail at once. Messages name the report and the
status only: URLs carry the search text, i.e. the subject's address.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

import httpx

from connectors.base import SourceUnavailable
from connectors.marketplace.settings import MarketplaceSource
from connectors.tls import verifying_context

RETRY_AFTER = {429, 503}
RETRYABLE = {429, 500, 502, 503, 504}
REPORTS = {"licenses": "reporting/licenses", "transactions": "reporting/sales/transactions"}


class MarketplaceRequestError(SourceUnavailable):
    """An answer retrying cannot fix (401, 403, 400, 404...): the source fails loudly."""

    def __init__(self, source: str, what: str, status: int) -> None:
        self.status = status
        super().__init__(source, f"the Marketplace refused {what}: HTTP {status}")


class MarketplaceClient:
    """One authenticated httpx client plus the retry policy; counts the requests made."""

    def __init__(
        self,
        source_name: str,
        source: MarketplaceSource,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source_name = source_name
        self.source = source
        self.sleep = sleep
        self.requests = 0
        try:
            token = source.api_token.resolve()
        except LookupError as exc:
            raise SourceUnavailable(source_name, f"no credentials: {exc}") from exc
        self.base = source.url.rstrip("/") + "/"
        self.http = httpx.Client(
            base_url=self.base,
            auth=(source.email, token),
            timeout=source.timeout_s,
            headers={"Accept": "application/json"},
            transport=transport,
            verify=verifying_context(),
        )

    def close(self) -> None:
        self.http.close()

    def report(self, report: str, text: str) -> Iterator[dict[str, Any]]:
        """Every item of ``report`` (licenses, transactions) the API's ``text`` search finds."""
        path = f"rest/2/vendors/{self.source.vendor_id}/{REPORTS[report]}"
        params: dict[str, Any] | None = {
            "text": text,
            "offset": 0,
            "limit": self.source.page_size,
        }
        url: str | None = path
        while url is not None:
            page = self.get_json(url, params, what=report)
            items = page.get(report)
            if not isinstance(items, list):
                raise SourceUnavailable(self.source_name, f"a {report} page without {report}")
            yield from items
            following = ((page.get("_links") or {}).get("next") or {}).get("href")
            # The next link carries the query (text, offset, limit) itself.
            url, params = (urljoin(self.base, following), None) if following else (None, None)

    def get_json(self, url: str, params: dict[str, Any] | None, *, what: str) -> dict[str, Any]:
        attempt = 0
        while True:
            self.requests += 1
            try:
                response = self.http.get(url, params=params)
            except httpx.HTTPError as exc:
                if attempt >= self.source.max_retries:
                    raise SourceUnavailable(
                        self.source_name, f"reading {what}: {type(exc).__name__}"
                    ) from None
                attempt += 1
                self.sleep(min(2.0**attempt, self.source.max_retry_wait_s))
                continue
            status = response.status_code
            if status == 200:
                body = response.json()
                if not isinstance(body, dict):
                    raise SourceUnavailable(self.source_name, f"reading {what}: not an object")
                return body
            if status not in RETRYABLE:
                raise MarketplaceRequestError(self.source_name, f"reading {what}", status)
            wait = self._wait(response, attempt + 1)
            if attempt >= self.source.max_retries or wait > self.source.max_retry_wait_s:
                raise SourceUnavailable(
                    self.source_name,
                    f"reading {what}: HTTP {status} after {attempt + 1} attempt(s)",
                )
            attempt += 1
            self.sleep(wait)

    @staticmethod
    def _wait(response: httpx.Response, attempt: int) -> float:
        header = response.headers.get("Retry-After")
        if response.status_code in RETRY_AFTER and header is not None:
            try:
                return max(0.0, float(header))
            except ValueError:
                pass  # an HTTP date: back off as for any other failure
        return min(2.0**attempt, 30.0)
