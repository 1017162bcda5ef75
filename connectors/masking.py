"""The masking strategies erasure applies to a column, by name (the mapping's ``erase``).

Every strategy is idempotent: masking a masked value changes nothing, so a rerun of an erasure
is harmless. Keyed hashes carry a ``hmac:`` prefix for that reason.

The key of ``hmac_sha256`` comes from a ``MaskingKey``: the config's ``masking_key`` (a secret
reference, e.g. an owner-only file) when it is set, else the environment variable
``DSRFLOW_HMAC_KEY``. Each connector gets its own ``MaskingKey``; nothing reads a key from a
process-wide setting behind its back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from dsrflow.errors import DsrflowError
from dsrflow.secrets import SecretRef

HMAC_KEY_ENV = "DSRFLOW_HMAC_KEY"
HMAC_PREFIX = "hmac:"
HMAC_STRATEGY = "hmac_sha256"
HOW_TO_SET = f"set masking_key in the config file, or {HMAC_KEY_ENV}"


class MaskingKeyMissing(DsrflowError, LookupError):
    """No key for ``hmac_sha256`` masking; the message says which settings were looked at."""


class MaskingKey:
    """Where the key of ``hmac_sha256`` masking is: the config's secret, else the environment.

    The key is read once, when first needed, and kept for this connector's lifetime.
    """

    def __init__(self, secret: SecretRef | None = None) -> None:
        self.secret = secret
        self._key: bytes | None = None

    def describe(self) -> str:
        return f"masking_key ({self.secret.describe()})" if self.secret else HMAC_KEY_ENV

    def get(self) -> bytes:
        if self._key is None:
            self._key = self._read()
        return self._key

    def _read(self) -> bytes:
        if self.secret is not None:
            try:
                value = self.secret.resolve()
            except LookupError as exc:
                raise MaskingKeyMissing(f"the key of hmac_sha256 masking: {exc}") from exc
        else:
            value = os.environ.get(HMAC_KEY_ENV, "")
        if not value:
            raise MaskingKeyMissing(
                f"hmac_sha256 masking needs a key and none is configured ({HOW_TO_SET})"
            )
        return value.encode("utf-8")

    def problem(self) -> str | None:
        """Why the key cannot be had, or None when it can."""
        try:
            self.get()
        except MaskingKeyMissing as exc:
            return str(exc)
        return None


Masker = Callable[[Any, str | None, MaskingKey], Any]


def _set_null(_value: Any, _fixed: str | None, _key: MaskingKey) -> None:
    return None


def _fixed_text(_value: Any, fixed: str | None, _key: MaskingKey) -> str | None:
    return fixed


def _hmac_sha256(value: Any, _fixed: str | None, key: MaskingKey) -> Any:
    if value is None or (isinstance(value, str) and value.startswith(HMAC_PREFIX)):
        return value
    digest = hmac.new(key.get(), str(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return HMAC_PREFIX + digest


def _keep(value: Any, _fixed: str | None, _key: MaskingKey) -> Any:
    return value


MASKERS: dict[str, Masker] = {
    "set_null": _set_null,
    "fixed_text": _fixed_text,
    HMAC_STRATEGY: _hmac_sha256,
    "keep": _keep,
}


def mask(strategy: str, value: Any, fixed: str | None, key: MaskingKey) -> Any:
    try:
        masker = MASKERS[strategy]
    except KeyError:
        raise ValueError(
            f"unknown masking strategy {strategy!r}; known: {sorted(MASKERS)}"
        ) from None
    return masker(value, fixed, key)
