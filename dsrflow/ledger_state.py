"""The ledger's tables as its audit chain says they must be.

Every write to ``requests``, ``restrictions`` or ``holds`` is recorded in the chain entry that
goes with it as a row change: ``{"table", "op": "insert" | "update", "key", "values"}``.
Replaying the changes in chain order gives the state the tables must have; comparing it with
the tables shows any row edited, deleted or inserted behind the ledger's back.

Columns that hold personal data (the subject's identifiers, a restricted identifier, a held
record's reference and action) are recorded as a SHA-256 digest, not in clear: the chain is
kept for ever, and the digest is enough to notice a change of the table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Per table: the key column, and the columns recorded as a digest.
KEYS = {"requests": "id", "restrictions": "id", "holds": "record_id", "intake": "key"}
DIGESTED = {
    "requests": frozenset({"subject"}),
    "restrictions": frozenset({"identifier"}),
    "holds": frozenset({"record_id", "action"}),
    "intake": frozenset({"key", "reference"}),  # kept as references, not in the chain
}

State = dict[str, dict[Any, dict[str, Any]]]


def plain(value: Any) -> Any:
    """A column value as JSON holds it: dates ISO, datetimes ISO in UTC (SQLite hands them
    back naive, in UTC, as they were written)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def digest(value: Any) -> str | None:
    return None if value is None else "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()


def recorded(table: str, column: str, value: Any) -> Any:
    """What the chain records of one column's value."""
    return digest(value) if column in DIGESTED[table] else plain(value)


def row_change(table: str, op: str, key: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "table": table,
        "op": op,
        "key": recorded(table, KEYS[table], key),
        "values": {c: recorded(table, c, v) for c, v in sorted(values.items())},
    }


def table_state(table: str, rows: Iterable[Mapping[Any, Any]]) -> dict[Any, dict[str, Any]]:
    """Rows of a table in the form the chain records them, by key."""
    key = KEYS[table]
    return {
        recorded(table, key, row[key]): {
            c: recorded(table, c, v) for c, v in row.items() if c != key
        }
        for row in rows
    }


@dataclass(frozen=True)
class StateProblem:
    table: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table} {self.key}: {self.problem}"


def replay(
    changes: Iterable[tuple[int, list[dict[str, Any]]]],
) -> tuple[State, list[tuple[int, str]]]:
    """The state the chain's row changes add up to, and the changes that make no sense as
    (seq, problem): an insert of a key that exists, an update of one that does not."""
    state: State = {table: {} for table in KEYS}
    odd: list[tuple[int, str]] = []
    for seq, entry_changes in changes:
        for change in entry_changes:
            rows = state.setdefault(change["table"], {})
            key = change["key"]
            if change["op"] == "insert":
                if key in rows:
                    odd.append((seq, f"inserts {change['table']} {key} again"))
                rows[key] = dict(change["values"])
            elif key in rows:
                rows[key].update(change["values"])
            else:
                odd.append((seq, f"updates {change['table']} {key}, never inserted"))
    return state, odd


def compare(chain: State, tables: State) -> list[StateProblem]:
    """Every difference between the state by the chain and the tables."""
    problems = []
    for table in KEYS:
        expected, actual = chain.get(table, {}), tables.get(table, {})
        for key in sorted(expected.keys() | actual.keys(), key=str):
            row = expected.get(key) or actual.get(key) or {}
            label = _label(table, key, row)
            if key not in actual:
                what = "an active restriction" if _active(table, row) else "a row"
                problems.append(
                    StateProblem(
                        table, label, f"{what} of the audit chain is missing from the table"
                    )
                )
            elif key not in expected:
                problems.append(StateProblem(table, label, "in the table but never recorded"))
            else:
                problems += [
                    StateProblem(table, label, _differs(table, column, actual[key], expected[key]))
                    for column in sorted(expected[key].keys() | actual[key].keys())
                    if actual[key].get(column) != expected[key].get(column)
                ]
    return problems


def _label(table: str, key: Any, row: Mapping[str, Any]) -> str:
    if table == "requests":
        return str(key)
    shown = str(key).removeprefix("sha256:")[:12]
    return f"{shown} (request {row.get('request_id')})"


def _active(table: str, row: Mapping[str, Any]) -> bool:
    return table == "restrictions" and row.get("lifted_at") is None


def _differs(table: str, column: str, actual: Mapping[str, Any], chain: Mapping[str, Any]) -> str:
    if column in DIGESTED[table]:
        return f"{column} differs from what the audit chain recorded"
    return (
        f"{column} is {actual.get(column)!r} in the table, {chain.get(column)!r} by the audit chain"
    )
