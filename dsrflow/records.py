"""What a connector finds: one record of the subject with its provenance."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """One row, message, spreadsheet row or ticket that holds the subject's data.

    ``native_id`` is the source's own key (a table's primary key, a message id); together with
    ``source`` and ``location`` it identifies the record. ``matched`` lists the subject's
    identifiers found in it; ``reached_via`` says how a record without a direct match was found
    (e.g. ``contacts.id -> licenses.technical_contact_id``). ``shared`` marks a record that also
    belongs to someone else (Art. 15(4)): it is never deleted whole.
    """

    model_config = ConfigDict(frozen=True)

    source: str
    location: str
    native_id: dict[str, Any]
    categories: dict[str, str] = Field(description="field name -> data category")
    fields: dict[str, Any]
    matched: tuple[str, ...] = ()
    reached_via: str | None = None
    timestamps: dict[str, str] = Field(
        default_factory=dict, description="field name -> UTC ISO 8601 of that field's value"
    )
    shared: bool = False
    shared_with: tuple[str, ...] = Field(
        default=(), description="where the other owners' links come from, e.g. orders.customer_id"
    )
    expands: tuple[str, ...] = Field(
        default=(), description="identifiers found here that lead to more records, kind:value"
    )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.location, native_id_text(self.native_id))

    @property
    def record_id(self) -> str:
        """``source:location:key=value,...``: the same in the export, plans and receipts."""
        return ":".join(self.key)


def native_id_text(native_id: dict[str, Any]) -> str:
    return ",".join(f"{k}={native_id[k]}" for k in sorted(native_id))


def to_utc_iso(value: dt.datetime | dt.date, assume_tz: dt.tzinfo = dt.UTC) -> str:
    """A timestamp in UTC ISO 8601; naive datetimes are taken to be in ``assume_tz``."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=assume_tz)
        return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def portable_value(value: Any, assume_tz: dt.tzinfo = dt.UTC) -> Any:
    """A value as JSON can carry it without loss: exact decimals as text, times in UTC."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return to_utc_iso(value, assume_tz)
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [portable_value(v, assume_tz) for v in value]
    if isinstance(value, dict):
        return {str(k): portable_value(v, assume_tz) for k, v in value.items()}
    return str(value)
