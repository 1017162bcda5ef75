"""The masking strategies erasure applies to a column, by name (the mapping's ``erase``).

Every strategy is idempotent: masking a masked value changes nothing, so a rerun of an erasure
is harmless. Keyed hashes carry a ``hmac:`` prefix for that reason.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

HMAC_KEY_ENV = "DSRFLOW_HMAC_KEY"
HMAC_PREFIX = "hmac:"

Masker = Callable[[Any, str | None], Any]


def _set_null(_value: Any, _fixed: str | None) -> None:
    return None


def _fixed_text(_value: Any, fixed: str | None) -> str | None:
    return fixed


def hmac_key() -> bytes:
    key = os.environ.get(HMAC_KEY_ENV)
    if not key:
        raise LookupError(
            f"the environment variable {HMAC_KEY_ENV} (the key of hmac_sha256 masking) is not set"
        )
    return key.encode("utf-8")


def _hmac_sha256(value: Any, _fixed: str | None) -> Any:
    if value is None or (isinstance(value, str) and value.startswith(HMAC_PREFIX)):
        return value
    digest = hmac.new(hmac_key(), str(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return HMAC_PREFIX + digest


def _keep(value: Any, _fixed: str | None) -> Any:
    return value


MASKERS: dict[str, Masker] = {
    "set_null": _set_null,
    "fixed_text": _fixed_text,
    "hmac_sha256": _hmac_sha256,
    "keep": _keep,
}


def mask(strategy: str, value: Any, fixed: str | None = None) -> Any:
    try:
        masker = MASKERS[strategy]
    except KeyError:
        raise ValueError(
            f"unknown masking strategy {strategy!r}; known: {sorted(MASKERS)}"
        ) from None
    return masker(value, fixed)
