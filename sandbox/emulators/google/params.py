"""Query parameters as Google's front end reads them: known names only, typed values."""

from __future__ import annotations

from starlette.requests import Request

from sandbox.emulators.google.errors import invalid_value, unknown_parameter

# System parameters every method takes (the discovery documents' top-level "parameters").
SYSTEM = frozenset(
    {
        "$.xgafv",
        "alt",
        "access_token",
        "callback",
        "fields",
        "key",
        "oauth_token",
        "prettyPrint",
        "quotaUser",
        "upload_protocol",
        "uploadType",
    }
)


def check_params(
    request: Request, allowed: frozenset[str], alts: tuple[str, ...] = ("json",)
) -> None:
    """Refuse unknown parameters; ``alts``: the ``alt`` values the method takes (``media`` too
    for a method with ``supportsMediaDownload``)."""
    for name in request.query_params:
        if name not in allowed and name not in SYSTEM:
            raise unknown_parameter(name)
    alt = request.query_params.get("alt", "json")
    if alt not in alts:
        raise invalid_value("alt")


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise invalid_value(name)
    return value.lower() == "true"


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid_value(name) from None
    if not low <= number <= high:
        raise invalid_value(
            name, f"Invalid value '{value}'. Values must be within the range: [{low}, {high}]"
        )
    return number


def enum_param(request: Request, name: str, default: str, choices: set[str]) -> str:
    value = request.query_params.get(name, default)
    if value not in choices:
        raise invalid_value(name, f"Invalid value at '{name}' ({value})")
    return value
