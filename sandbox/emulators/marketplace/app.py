"""The Atlassian Marketplace vendor API emulator (REST v2, reporting), a Starlette app.

Written from the Marketplace REST API v2 reference
(developer.atlassian.com/platform/marketplace/rest/v2/, groups "Reporting", and the sections
"Authentication", "Pagination", "Errors"):
- ``GET /rest/2/vendors/{vendorId}/reporting/licenses`` and ``…/reporting/sales/transactions``
  with ``text`` (free text over the licence's identifiers, company and contacts' e-mails and
  names: a case-insensitive substring here, so look-alikes are returned too), ``offset`` and
  ``limit``. A page is ``{"_links": {"self", "next"?, "prev"?}, "<report>": [...]}``; the next
  link carries the query. ``limit`` is capped at ``MAX_LIMIT`` (50: the largest page vendors'
  clients ask the reporting routes for; the reference read here gives no figure). Above it
  the page is silently shorter rather than refused (the emulator's reading, the harder one
  for a client: it must follow ``next``, never count).
- Basic auth with an Atlassian account's e-mail and API token; anything else is 401. A vendor
  the account is no contact of: 403 (the emulator knows one vendor).
- Throttling: 429 with ``Retry-After`` (seconds) through ``FaultGate``, as the Marketplace's
  rate limiting answers; injected 5xx likewise.
- Errors: ``{"errors": [{"message": ...}]}`` (the emulator's reading of the reference's
  "Errors" section, not checked against a published schema: none ships in a package here).
- Licences carry ``contactDetails`` (``company``, ``country``, ``region``,
  ``technicalContact``, ``billingContact``: ``email``, ``name``, ``phone``, ``address1``,
  ``address2``, ``city``, ``state``, ``postcode``) and ``partnerDetails`` (``partnerName``,
  ``partnerType``, ``billingContact``: ``email``, ``name``); transactions carry the same under
  ``customerDetails`` plus ``purchaseDetails``. The emulator serves them as seeded.
Read only: the API has no route to change a licence or transaction (it has none here either).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.emulators.faults import FaultGate, Faults
from sandbox.emulators.marketplace.store import MarketplaceStore

MAX_LIMIT = 50
DEFAULT_LIMIT = 10
REPORTS = {"licenses": "reporting/licenses", "transactions": "reporting/sales/transactions"}


def error(
    status: int, message: str, retry_after: float | None = None, _code: str | None = None
) -> Response:
    # Retry-After in whole seconds (RFC 9110); a fraction rounds up so clients never come early.
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else {}
    return JSONResponse({"errors": [{"message": message}]}, status, headers=headers)


def _searchable(value: Any) -> str:
    """Every string in an item, lower-cased, for the ``text`` search."""
    if isinstance(value, dict):
        return " ".join(_searchable(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_searchable(v) for v in value)
    return str(value).lower() if isinstance(value, str) else ""


class MarketplaceEmulator:
    def __init__(self, store: MarketplaceStore, faults: Faults | None = None) -> None:
        self.store = store
        self.faults = faults or Faults()
        self.app = self._build()

    def _build(self) -> Starlette:
        base = "/rest/2/vendors/{vendor}"
        routes = [
            Route(f"{base}/{path}", self._report(name), methods=["GET"])
            for name, path in REPORTS.items()
        ]
        app = Starlette(routes=[*routes, *self.faults.control_routes()])
        app.add_exception_handler(404, self._not_found)
        app.add_exception_handler(405, self._not_allowed)
        app.add_middleware(FaultGate, faults=self.faults, route_of=_route_of, error=error)
        return app

    async def _not_found(self, request: Request, _: Exception) -> Response:
        return error(404, "Not found")

    async def _not_allowed(self, request: Request, _: Exception) -> Response:
        return error(405, "Method not allowed")

    def _refused(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        email = token = ""
        if header.startswith("Basic "):
            try:
                email, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                email, token = "", ""
        expected = self.store.credentials
        if not (email and token) or (expected is not None and (email, token) != expected):
            return JSONResponse(
                {"errors": [{"message": "Authentication required"}]},
                401,
                headers={"WWW-Authenticate": 'Basic realm="Atlassian Marketplace"'},
            )
        return None

    def _report(self, name: str) -> Any:
        async def serve(request: Request) -> Response:
            refused = self._refused(request)
            if refused is not None:
                return refused
            vendor = request.path_params["vendor"]
            if not vendor.isdigit():
                return error(400, f"Invalid vendorId: {vendor}")
            if int(vendor) != self.store.vendor_id:
                return error(403, "You do not have permission to view this vendor's reporting")
            params = request.query_params
            try:
                offset = int(params.get("offset", "0"))
                limit = int(params.get("limit", str(DEFAULT_LIMIT)))
            except ValueError:
                return error(400, "offset and limit must be integers")
            if offset < 0 or limit < 1:
                return error(400, "offset must be 0 or more and limit 1 or more")
            limit = min(limit, MAX_LIMIT)
            text = (params.get("text") or "").lower()
            items = [i for i in self.store.report(name) if not text or text in _searchable(i)]
            page = items[offset : offset + limit]
            return JSONResponse(
                {"_links": self._links(request, offset, limit, len(items)), name: page}
            )

        return serve

    @staticmethod
    def _links(request: Request, offset: int, limit: int, total: int) -> dict[str, Any]:
        query = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit")}

        def href(at: int) -> dict[str, str]:
            return {
                "href": f"{request.url.path}?{urlencode({**query, 'offset': at, 'limit': limit})}"
            }

        links: dict[str, Any] = {"self": href(offset)}
        if offset + limit < total:
            links["next"] = href(offset + limit)
        if offset > 0:
            links["prev"] = href(max(0, offset - limit))
        return links


_ROUTE = re.compile(r"^/rest/2/vendors/[^/]+/(?P<rest>.*)$")


def _route_of(request: Request) -> str:
    """The counter label: method and route, never the vendor id or the query."""
    match = _ROUTE.match(request.url.path)
    rest = match.group("rest") if match else request.url.path
    return f"{request.method} {rest}"
