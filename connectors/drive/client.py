"""The Google API plumbing of the Drive connector: credentials, services, retries. The one
module of the package that touches google-api-python-client, google-auth and httplib2: the
others build requests with its methods (``get_file``, ``list_files``, ``batch_update``, ...),
send them with ``call``/``write``/``batch`` and see a refusal as ``Refused``.

* Credentials: a service-account key (a file, or the JSON in a SecretRef) with domain-wide
  delegation to ``delegated_user``. google-auth signs a JWT and trades it at the key's
  ``token_uri`` (the sandbox's key points at the emulator's ``POST /token``).
* Services: ``build(..., static_discovery=True)`` from the discovery documents shipped with
  google-api-python-client (no network fetch); ``client_options.api_endpoint`` points Drive at
  ``{url}/drive/v3/`` and Sheets at ``{url}/``. Batch calls ignore ``api_endpoint``, so
  ``BatchHttpRequest`` gets ``batch_uri`` itself.
* httplib2 is not thread-safe: every thread gets its own ``AuthorizedHttp`` over the shared
  credentials, passed to ``execute(http=...)``.
* Retries: Google sends no Retry-After, so reads that come back 429, 5xx or Drive's 403
  ``userRateLimitExceeded`` / ``rateLimitExceeded`` (or whose connection drops) are retried
  with exponential backoff and full jitter, a bounded number of times; then SourceUnavailable.
* Writes (``write``) are sent once. Sheets has no conditional write and deletes rows by index:
  a ``batchUpdate`` whose answer was lost (a reset, a timeout, a 5xx from a proxy after the
  backend committed) may have run, and sending it again would delete the rows that moved up
  into the deleted rows' places. Such a failure raises ``AmbiguousWrite``; the connector
  re-reads the sheet and decides. Only a 429, a request refused before it ran, is sent again
  (``connectors/writes.py`` has the reference); a write refused with a 403 quota reason fails
  its actions and is not resent.
  httplib2 itself resends a request whose connection closed before the status line (it takes
  that for a stale keep-alive connection, even for a POST): writes go through ``SendOnceHttp``.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from connectors.base import SourceUnavailable
from connectors.drive.settings import DriveSource
from connectors.google_auth import service_account_credentials
from connectors.writes import AmbiguousWrite

# What a real Workspace must grant the service account (Admin console > Security > API
# controls > Domain-wide delegation): reading Drive (listing, full-text search) and reading
# and writing Sheets (erasure, rectification).
SCOPES = (
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/spreadsheets",
)
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
# Drive refuses over-quota requests with 403 as well as 429, told apart from a refusal by the
# reason ("Resolve errors": https://developers.google.com/drive/api/guides/handle-errors).
QUOTA_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})


FOLDER = "application/vnd.google-apps.folder"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# spreadsheets.get with the grid: each sheet's properties and every cell as Sheets shows it.
GRID_FIELDS = (
    "sheets(properties(sheetId,title,gridProperties(rowCount,frozenRowCount)),"
    "data(startRow,rowData(values(formattedValue))))"
)

Request = Any  # a request built by one of GoogleClient's methods, not yet sent


def a1_sheet(title: str) -> str:
    """A sheet title in A1 notation: always quoted, inner quotes doubled."""
    return "'" + title.replace("'", "''") + "'"


class Refused(Exception):
    """Google answered a request with an error: its HTTP status and Google's reason code
    (``notFound``, ``forbidden``, ...); ``line`` says it in one line, never with the message,
    which may quote a range or a query."""

    def __init__(self, status: int, reason: str | None, http_reason: str) -> None:
        self.status = status
        self.reason = reason
        self.line = f"HTTP {status} {reason or http_reason}"
        super().__init__(self.line)

    @classmethod
    def of(cls, error: HttpError) -> Refused:
        details = error.error_details if isinstance(error.error_details, list) else []
        reason = next(
            (str(d["reason"]) for d in details if isinstance(d, dict) and d.get("reason")), None
        )
        return cls(error.status_code, reason, error.reason)


@dataclass(frozen=True)
class TokenProblem:
    """Why no token came: Google refused it (``refused``), or could not be reached."""

    refused: bool
    detail: str


def retried(error: HttpError) -> bool:
    """Whether a read that got ``error`` may be sent again after a pause: 429, 5xx, or
    Drive's 403 over-quota."""
    if error.status_code in RETRIED_STATUSES:
        return True
    details = error.error_details if isinstance(error.error_details, list) else []
    return error.status_code == 403 and any(
        isinstance(d, dict) and d.get("reason") in QUOTA_REASONS for d in details
    )


@dataclass
class CallStats:
    """Requests sent, by kind, and retries: the benchmark and the tests read these."""

    requests: int = 0
    retries: int = 0
    list_pages: int = 0
    values_reads: int = 0
    metadata_reads: int = 0
    exports: int = 0
    writes: int = 0


class SendOnceHttp(httplib2.Http):
    """httplib2 that sends each request once, on a fresh connection.

    ``httplib2.Http._conn_request`` sends a request again when the answer's status line does not
    come (``BadStatusLine``: "the connection just went stale, so retry regardless of the number
    of RETRIES set"); for a write that ran, that is a second write. Here every failure is the
    caller's to judge; a fresh connection keeps a server's idle timeout from causing one.
    """

    def _conn_request(
        self, conn: Any, request_uri: str, method: str, body: Any, headers: Any
    ) -> tuple[httplib2.Response, bytes]:
        try:
            conn.close()
            conn.connect()
            conn.request(method, request_uri, body, headers)
            raw = conn.getresponse()
            content = b"" if method == "HEAD" else raw.read()
        except BaseException:
            conn.close()
            raise
        response = httplib2.Response(raw)
        if method != "HEAD":
            content = httplib2._decompressContent(response, content, self.limit_kwargs)
        return response, content


def load_credentials(source: DriveSource) -> service_account.Credentials:
    return service_account_credentials(
        source.credentials_file, source.credentials, SCOPES, source.delegated_user
    )


class _NoCredentials(httplib2.Http):
    """The shared services' own connection, which nothing may use: every request goes out
    through ``execute(http=...)`` with the calling client's authorised connection, and one
    that did not would leave without credentials. Refuse it loudly instead."""

    def request(self, *_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a Google API request was sent without execute(http=...)")


@dataclass(frozen=True)
class _Services:
    drive: Any
    sheets: Any
    files: Any
    spreadsheets: Any
    values: Any


@functools.cache
def _services(base: str) -> _Services:
    """Drive v3 and Sheets v4 for the API at ``base`` ("" for Google's own), built once per
    process: building Sheets' ``spreadsheets()`` renders every method's docstring from the
    discovery document (~0.3 s), and a command opens the source up to three times (its check,
    the coverage survey, the flow). The resources only make requests; credentials come with
    each ``execute(http=...)``."""
    common: dict[str, Any] = {
        "http": _NoCredentials(),
        "static_discovery": True,
        "cache_discovery": False,
    }
    drive_options = {"api_endpoint": f"{base}/drive/v3/"} if base else None
    sheets_options = {"api_endpoint": f"{base}/"} if base else None
    drive = build("drive", "v3", client_options=drive_options, **common)
    sheets = build("sheets", "v4", client_options=sheets_options, **common)
    spreadsheets = sheets.spreadsheets()
    return _Services(drive, sheets, drive.files(), spreadsheets, spreadsheets.values())


class GoogleClient:
    """Drive v3 and Sheets v4 services plus a retrying ``call``."""

    def __init__(
        self,
        name: str,
        source: DriveSource,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.source = source
        self.stats = CallStats()
        self._sleep = sleep
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        try:
            self.credentials = load_credentials(source)
        except (OSError, ValueError, LookupError) as exc:
            raise SourceUnavailable(name, f"service-account key unusable: {exc}") from exc
        base = (source.api_url or "").rstrip("/")
        self.batch_uri = (
            f"{base}/batch/drive/v3" if base else "https://www.googleapis.com/batch/drive/v3"
        )
        services = _services(base)
        self.drive, self.sheets = services.drive, services.sheets
        self.files, self.spreadsheets, self.values = (
            services.files,
            services.spreadsheets,
            services.values,
        )

    # -- transport ----------------------------------------------------------------------------

    def http(self) -> google_auth_httplib2.AuthorizedHttp:
        """This thread's authorised connection (httplib2 objects must not be shared)."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = google_auth_httplib2.AuthorizedHttp(
                self.credentials, http=httplib2.Http(timeout=self.source.timeout_s)
            )
            self._local.http = http
        return http

    def write_http(self) -> google_auth_httplib2.AuthorizedHttp:
        """This thread's authorised connection for writes: each request sent once."""
        http = getattr(self._local, "write_http", None)
        if http is None:
            http = google_auth_httplib2.AuthorizedHttp(
                self.credentials, http=SendOnceHttp(timeout=self.source.timeout_s)
            )
            self._local.write_http = http
        return http

    def count(self, field: str) -> None:
        with self._stats_lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)
            self.stats.requests += 1

    # -- requests -----------------------------------------------------------------------------

    def get_file(self, file_id: str, fields: str) -> Request:
        return self.files.get(fileId=file_id, fields=fields, supportsAllDrives=True)

    def list_files(self, q: str, page_token: str | None, *, ordered: bool = True) -> Request:
        """One page of the files ``q`` finds, in My Drive and in every shared drive the user is
        a member of; by name unless ``ordered`` is false (Drive refuses ``orderBy`` on a
        ``fullText`` query: its results come by relevance).

        Shared-drive items come only with ``supportsAllDrives``, ``includeItemsFromAllDrives``
        and a ``corpora`` that spans them (https://developers.google.com/drive/api/guides/
        enable-shareddrives)."""
        order = {"orderBy": "name"} if ordered else {}
        return self.files.list(
            q=q,
            pageSize=self.source.page_size,
            pageToken=page_token,
            fields="nextPageToken,incompleteSearch,files(id,name,mimeType)",
            corpora="allDrives",
            supportsAllDrives=True,
            includeItemsFromAllDrives=True,
            **order,
        )

    def sheet_properties(self, spreadsheet_id: str) -> Request:
        return self.spreadsheets.get(
            spreadsheetId=spreadsheet_id,
            fields="sheets.properties(sheetId,title,gridProperties(rowCount,frozenRowCount))",
        )

    def export_xlsx(self, file_id: str) -> Request:
        """Drive ``files.export`` of a spreadsheet as .xlsx: every sheet, counted against
        Drive's quota, not Sheets' (10 MB at most, else 403 ``exportSizeLimitExceeded``)."""
        return self.files.export_media(fileId=file_id, mimeType=XLSX)

    def sheet_grid(self, spreadsheet_id: str) -> Request:
        """Every sheet's properties and every cell's formatted value in one Sheets read
        (``includeGridData``), instead of ``spreadsheets.get`` and then ``values.batchGet``."""
        return self.spreadsheets.get(
            spreadsheetId=spreadsheet_id, includeGridData=True, fields=GRID_FIELDS
        )

    def sheet_values(self, spreadsheet_id: str, titles: list[str]) -> Request:
        """Every value of the sheets ``titles``, as Sheets renders them, in one request."""
        return self.values.batchGet(
            spreadsheetId=spreadsheet_id,
            ranges=[a1_sheet(t) for t in titles],
            majorDimension="ROWS",
            valueRenderOption="FORMATTED_VALUE",
        )

    def row_values(self, spreadsheet_id: str, title: str, row: int) -> Request:
        return self.values.get(spreadsheetId=spreadsheet_id, range=f"{a1_sheet(title)}!{row}:{row}")

    def update_cell(self, spreadsheet_id: str, cell: str, value: Any) -> Request:
        return self.values.update(
            spreadsheetId=spreadsheet_id,
            range=cell,
            valueInputOption="RAW",
            body={"values": [["" if value is None else value]]},
        )

    def batch_update(self, spreadsheet_id: str, requests: list[dict[str, Any]]) -> Request:
        return self.spreadsheets.batchUpdate(
            spreadsheetId=spreadsheet_id, body={"requests": requests}
        )

    def token_problem(self) -> TokenProblem | None:
        """Ask for a token now; None when one came."""
        http = httplib2.Http(timeout=self.source.timeout_s)
        try:
            self.credentials.refresh(google_auth_httplib2.Request(http))
        except RefreshError as exc:
            return TokenProblem(refused=True, detail=str(exc.args[0]))
        except (TransportError, OSError, httplib2.HttpLib2Error) as exc:
            return TokenProblem(refused=False, detail=type(exc).__name__)
        return None

    # -- sending -------------------------------------------------------------------------------

    def call(self, request: Request, kind: str) -> Any:
        """``request.execute()`` with bounded exponential backoff on 429/5xx and drops; any
        other error status raises ``Refused``."""
        attempt = 0
        while True:
            self.count(kind)
            try:
                return request.execute(http=self.http())
            except HttpError as exc:
                if not retried(exc):
                    raise Refused.of(exc) from exc
                problem = f"HTTP {exc.status_code} {exc.reason}"
            except RefreshError as exc:
                raise SourceUnavailable(self.name, f"token refused: {exc.args[0]}") from exc
            except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
                problem = f"connection failed: {type(exc).__name__}"
                self._local.http = None  # a broken connection is not reused
            if attempt >= self.source.max_retries:
                raise SourceUnavailable(
                    self.name, f"{problem}, still after {attempt} retries"
                ) from None
            self.backoff(attempt)
            attempt += 1

    def write(self, request: Request) -> Any:
        """Send a write once (again only after a 429, which means it did not run).

        A lost answer (connection failure, timeout, 5xx) raises ``AmbiguousWrite``: the write
        may have been applied, and only a fresh read of the target can tell.
        """
        attempt = 0
        while True:
            self.count("writes")
            try:
                return request.execute(http=self.write_http())
            except HttpError as exc:
                if exc.status_code in RETRIED_STATUSES - {429}:
                    raise AmbiguousWrite(f"HTTP {exc.status_code} {exc.reason}") from None
                if exc.status_code != 429:
                    raise Refused.of(exc) from exc
                if attempt >= self.source.max_retries:
                    raise SourceUnavailable(
                        self.name, f"writes throttled (HTTP 429), still after {attempt} retries"
                    ) from None
            except RefreshError as exc:
                raise SourceUnavailable(self.name, f"token refused: {exc.args[0]}") from exc
            except (TransportError, httplib2.HttpLib2Error, OSError, HTTPException) as exc:
                raise AmbiguousWrite(f"connection failed: {type(exc).__name__}") from None
            self.backoff(attempt)
            attempt += 1

    def backoff(self, attempt: int) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        ceiling = min(self.source.max_backoff_s, self.source.backoff_s * 2**attempt)
        # Full jitter: many workers throttled together do not come back together.
        self._sleep(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - not cryptographic

    def batch(self, requests: list[Request]) -> list[tuple[Any, Refused | None]]:
        """Drive calls in one multipart request (up to 100); answers in order.

        Calls that come back 429/5xx are sent again in a further batch, with backoff.
        """
        answers: dict[int, tuple[Any, Refused | None]] = {}
        pending = list(range(len(requests)))
        attempt = 0
        while pending:
            results: dict[str, tuple[Any, HttpError | None]] = {}
            batch = BatchHttpRequest(
                callback=functools.partial(_remember, results),
                batch_uri=self.batch_uri,
            )
            for i in pending:
                batch.add(requests[i], request_id=str(i))
            self.call(batch, "metadata_reads")
            retry = []
            for i in pending:
                response, error = results[str(i)]
                if error is not None and retried(error):
                    retry.append(i)
                else:
                    answers[i] = (response, None if error is None else Refused.of(error))
            if retry and attempt >= self.source.max_retries:
                statuses = sorted(
                    {
                        answers_error.status_code
                        for answers_error in (results[str(i)][1] for i in retry)
                        if answers_error is not None
                    }
                )
                raise SourceUnavailable(
                    self.name,
                    f"batch calls still failing (HTTP {statuses}) after {attempt} retries",
                )
            if retry:
                self.backoff(attempt)
                attempt += 1
            pending = retry
        return [answers[i] for i in range(len(requests))]


def _remember(
    into: dict[str, tuple[Any, HttpError | None]], request_id: str, response: Any, error: Any
) -> None:
    into[request_id] = (response, error)
