"""Google's JSON error shape, shared by Drive v3 and Sheets v4.

Every API error is ``{"error": {"code", "message", "errors": [{"message", "domain", "reason",
"location"?, "locationType"?}], "status"}}``: googleapiclient turns it into ``HttpError`` with
``status_code``, ``reason`` and ``error_details``. The token endpoint speaks OAuth 2 instead
(``{"error": "invalid_grant", "error_description": …}``), see ``auth.py``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

try:  # orjson comes with Prefect; it serialises the big value ranges ~3x faster
    import orjson
except ImportError:  # pragma: no cover - the standard library does the same, slower
    orjson = None


class GoogleJSON(JSONResponse):
    """A JSON response, as Google sends it (``application/json; charset=UTF-8``)."""

    media_type = "application/json; charset=UTF-8"

    def render(self, content: Any) -> bytes:
        if orjson is not None:
            return orjson.dumps(content)
        return super().render(content)


# HTTP status -> the google.rpc status name the APIs send with it.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_REASONS = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


class GoogleError(Exception):
    """Raised by a handler; the app turns it into the JSON error response."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        location: str | None = None,
        location_type: str = "parameter",
        status: str | None = None,
        domain: str = "global",
        details: list[dict[str, object]] | None = None,
        detail_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.domain = domain
        self.details = details
        self.detail_message = detail_message or message
        self.code = code
        self.message = message
        self.reason = reason or DEFAULT_REASONS.get(code, "error")
        self.location = location
        self.location_type = location_type
        self.status = STATUS_NAMES.get(code, "UNKNOWN") if status is None else status

    def body(self) -> dict[str, object]:
        detail: dict[str, str] = {
            "message": self.detail_message,
            "domain": self.domain,
            "reason": self.reason,
        }
        if self.location:
            detail["location"] = self.location
            detail["locationType"] = self.location_type
        error: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "errors": [detail],
        }
        if self.status:  # Drive's usageLimits errors come without one
            error["status"] = self.status
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def response(self) -> JSONResponse:
        # Google sends no Retry-After, not even with 429: clients must back off on their own.
        return GoogleJSON(self.body(), status_code=self.code)


def invalid_value(parameter: str, message: str = "Invalid Value") -> GoogleError:
    return GoogleError(400, message, reason="invalid", location=parameter)


def unknown_parameter(name: str) -> GoogleError:
    # What Google's front end answers for a query parameter the method does not have.
    return GoogleError(
        400,
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{name}' could not be found in request message.",
        reason="invalid",
        location=name,
    )


def quota_exceeded(service: str) -> GoogleError:
    """Sheets' answer to a request over the per-user read quota: 429 RESOURCE_EXHAUSTED
    (https://developers.google.com/sheets/api/limits)."""
    return GoogleError(
        429,
        f"Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute "
        f"per user' of service '{service}' for consumer 'project_number:0'.",
        reason="rateLimitExceeded",
    )


# Drive's quota refusals are 403s in the ``usageLimits`` domain ("Resolve errors",
# https://developers.google.com/drive/api/guides/handle-errors#resolve_a_403_error_user_rate_limit_exceeded
# and #rate-limit-exceeded; as met in tidyverse/googledrive#380); "If you exceed a quota, you'll
# receive a 403: User rate limit exceeded" (https://developers.google.com/drive/api/guides/limits).
DRIVE_QUOTA_MESSAGES = {
    "userRateLimitExceeded": "User Rate Limit Exceeded. Rate of requests for user exceed "
    "configured project quota. You may consider re-evaluating expected per-user traffic to the "
    "API and adjust project quota limits accordingly.",
    "rateLimitExceeded": "Rate Limit Exceeded",
}


def drive_quota_exceeded(reason: str = "userRateLimitExceeded") -> GoogleError:
    return GoogleError(
        403, DRIVE_QUOTA_MESSAGES[reason], reason=reason, domain="usageLimits", status=""
    )
