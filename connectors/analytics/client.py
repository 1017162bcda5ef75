"""The only module touching google-api-python-client for Analytics: the static ``analytics``
v3 discovery document (shipped with the library), a service account with the
``analytics.user.deletion`` scope, and a bounded retry.

The upsert is idempotent (filing the same id again only moves ``deletionRequestTime``), so a
throttled, failed or lost answer may be sent again (connectors/writes.py: a write is resent only
when sending it twice does no harm). 403 ``dailyLimitExceeded`` (the 500-a-day quota) is not
retried: it lasts until the next day. Errors name the status and Google's reason only."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

import httplib2
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from connectors.analytics.settings import AnalyticsSource
from connectors.base import SourceUnavailable
from connectors.google_auth import service_account_credentials

SCOPES = ["https://www.googleapis.com/auth/analytics.user.deletion"]
RETRY_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "backendError", "internalError"}


class AnalyticsRefused(Exception):
    """An answer retrying cannot change (400, 401, 403, the daily quota)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"HTTP {status} {reason}")


def reason_of(error: HttpError) -> str:
    try:
        body = json.loads(error.content or b"{}")
        return str(body["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "unknown"


class _NoCredentials(httplib2.Http):
    """The shared resource's own connection, which nothing may use: a request sent without
    the client's authorised ``execute(http=...)`` would leave without credentials."""

    def request(self, *_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("an Analytics request was sent without execute(http=...)")


@functools.cache
def _deletion_requests(base: str) -> Any:
    """The ``userDeletionRequest`` resource for the API at ``base`` ("" for Google's), built
    once per process (~0.1 s from the discovery document; a command opens the source up to
    three times). Credentials come with each ``execute(http=...)``."""
    service = build(
        "analytics",
        "v3",
        http=_NoCredentials(),
        client_options={"api_endpoint": f"{base}/analytics/v3/"} if base else None,
        static_discovery=True,
        cache_discovery=False,
    )
    # The discovery document names the resource userDeletionRequest (singular).
    return service.userDeletion().userDeletionRequest()


class AnalyticsClient:
    def __init__(
        self,
        name: str,
        source: AnalyticsSource,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.source = source
        self.sleep = sleep
        try:
            credentials = service_account_credentials(
                source.credentials_file, source.credentials, SCOPES
            )
        except (OSError, ValueError, LookupError) as exc:
            raise SourceUnavailable(name, f"service-account key unusable: {exc}") from exc
        self.http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=source.timeout_s))
        self.requests = _deletion_requests((source.api_url or "").rstrip("/"))

    def upsert(self, property_id: str, id_type: str, user_id: str) -> dict[str, Any]:
        """File a deletion request; the resource Google answers, with deletionRequestTime."""
        body = {
            "kind": "analytics#userDeletionRequest",
            "id": {"type": id_type, "userId": user_id},
            "propertyId": property_id,
        }
        attempt = 0
        while True:
            try:
                answer: dict[str, Any] = self.requests.upsert(body=body).execute(
                    http=self.http, num_retries=0
                )
                return answer
            except HttpError as exc:
                status, reason = exc.status_code, reason_of(exc)
                retry = status in (429, 500, 502, 503, 504) or (
                    status == 403 and reason in RETRY_REASONS
                )
                if not retry:
                    raise AnalyticsRefused(status, reason) from None
                failure = f"HTTP {status} {reason}"
            except (OSError, httplib2.HttpLib2Error) as exc:
                failure = type(exc).__name__  # an answer lost: the upsert may go again
            if attempt >= self.source.max_retries:
                raise SourceUnavailable(
                    self.name, f"filing a user deletion: {failure} after {attempt + 1} attempt(s)"
                )
            attempt += 1
            self.sleep(self.source.backoff_s * 2 ** (attempt - 1))
