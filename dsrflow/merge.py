"""Merging what the connectors found into one frame (pandas).

One row per record: duplicates found by several discovery rounds or paths are folded together
(matched identifiers united, shared if any copy says so), timestamps normalised to UTC ISO 8601,
provenance kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd

from dsrflow.records import Record

COLUMNS = [
    "source",
    "location",
    "record_id",
    "native_id",
    "categories",
    "fields",
    "matched",
    "reached_via",
    "timestamps",
    "shared",
    "shared_with",
]


def _utc_iso(values: dict[str, str]) -> dict[str, str]:
    """Normalise every timestamp to UTC ISO 8601; dates stay dates."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if len(value) == 10:  # a bare date: no time zone to speak of
            out[name] = value
            continue
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        out[name] = stamp.isoformat().replace("+00:00", "Z")
    return out


def records_frame(records: Iterable[Record]) -> pd.DataFrame:
    rows = [
        {
            "source": r.source,
            "location": r.location,
            "record_id": r.record_id,
            "native_id": r.native_id,
            "categories": r.categories,
            "fields": r.fields,
            "matched": frozenset(r.matched),
            "reached_via": r.reached_via,
            "timestamps": _utc_iso(r.timestamps),
            "shared": r.shared,
            "shared_with": frozenset(r.shared_with),
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _fold_fields(copies: pd.Series) -> dict[str, object]:
    """The last copy's fields; a ``locations`` list (the same message in several mailboxes)
    becomes the union of every copy's."""
    fields = dict(copies.iloc[-1])
    places = [p for f in copies for p in f.get("locations", [])]
    if places:
        unique = {json.dumps(p, sort_keys=True): p for p in places}
        fields["locations"] = [unique[k] for k in sorted(unique)]
    return fields


def merge(frame: pd.DataFrame) -> pd.DataFrame:
    """Fold duplicates of one record (same source, location, native id) into one row."""
    if frame.empty:
        return frame
    merged = frame.groupby("record_id", sort=True, as_index=False).agg(
        source=("source", "first"),
        location=("location", "first"),
        native_id=("native_id", "first"),
        categories=("categories", "first"),
        fields=("fields", _fold_fields),
        matched=("matched", lambda s: frozenset().union(*s)),
        reached_via=("reached_via", lambda s: next((v for v in s if v), None)),
        timestamps=("timestamps", "last"),
        shared=("shared", "any"),
        shared_with=("shared_with", lambda s: frozenset().union(*s)),
    )
    return merged[COLUMNS].sort_values(["source", "location", "record_id"], ignore_index=True)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts per source and location: what the artifact and the export's summary show."""
    if frame.empty:
        return pd.DataFrame(columns=["source", "location", "records", "shared"])
    return (
        frame.groupby(["source", "location"], as_index=False)
        .agg(records=("record_id", "size"), shared=("shared", "sum"))
        .astype({"records": int, "shared": int})
    )


def rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples. Its columns hold what a Record holds (dicts, tuples):
    pandas' stubs type every cell as a scalar, so the rows are ``Any`` to the type checker."""
    return frame.itertuples()


def fold_records(records: Iterable[Record]) -> list[Record]:
    """The records with duplicates folded (as ``merge`` does), as Records again: what plans are
    built from, so that one message in two mailboxes is one action."""
    frame = merge(records_frame(records))
    return [
        Record(
            source=row.source,
            location=row.location,
            native_id=row.native_id,
            categories=row.categories,
            fields=row.fields,
            matched=tuple(sorted(row.matched)),
            reached_via=row.reached_via,
            timestamps=row.timestamps,
            shared=bool(row.shared),
            shared_with=tuple(sorted(row.shared_with)),
        )
        for row in rows(frame)
    ]
