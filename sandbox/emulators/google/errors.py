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
        errors: bool = True,
    ) -> None:
        super().__init__(message)
        self.domain = domain
        self.details = details
        self.detail_message = detail_message or message
        self.errors = errors  # False: the newer shape, ``details`` without ``errors``
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
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.errors:
            error["errors"] = [detail]
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


SHEETS = "sheets.googleapis.com"
CONSUMER = "project_number:0"  # the emulator is one Cloud project


def quota_exceeded(
    service: str = SHEETS, *, write: bool = False, per_user: bool = True, limit: int = 60
) -> GoogleError:
    """Sheets' answer to a request over a per-minute quota: 429 RESOURCE_EXHAUSTED
    (https://developers.google.com/sheets/api/limits), in the shape Google's front end sends:
    the message naming the metric and the limit, an ``ErrorInfo`` and a ``Help`` link, no
    ``errors`` list (bodies quoted in r-lib/gargle#160, asweigart/ezsheets#8 and
    AutomaApp/automa#1844; the ``metadata`` keys are Google's ErrorInfo for quota failures, the
    values this emulator's)."""
    metric = "Write requests" if write else "Read requests"
    limit_name = f"{metric[:-1]}s per minute" + (" per user" if per_user else "")
    quota_limit = (
        ("Write" if write else "Read") + "RequestsPerMinute" + ("PerUser" if per_user else "")
    )
    return GoogleError(
        429,
        f"Quota exceeded for quota metric '{metric}' and limit '{limit_name}' of service "
        f"'{service}' for consumer '{CONSUMER}'.",
        errors=False,
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": service,
                    "consumer": "projects/0",
                    "quota_metric": f"{service}/{'write' if write else 'read'}_requests",
                    "quota_limit": quota_limit,
                    "quota_limit_value": str(limit),
                    "quota_location": "global",
                },
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Request a higher quota limit.",
                        "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                    }
                ],
            },
        ],
    )


def export_too_large() -> GoogleError:
    """``files.export`` of a document whose export passes 10 MB ("Note that the exported
    content is limited to 10 MB", https://developers.google.com/drive/api/reference/rest/v3/files/export):
    403 ``exportSizeLimitExceeded``, the body quoted in googleapis/google-api-dotnet-client#990
    and met in rclone/rclone#2357."""
    return GoogleError(
        403, "This file is too large to be exported.", reason="exportSizeLimitExceeded", status=""
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
