"""The approved plan's changes, row by row, by primary key: delete, redact (mask), rectify (set
corrected values), restrict (set the mapping's mark). Idempotent: a second run finds them done.

Each action commits on its own: progress is real even if the process dies midway. A value
written is read back: DONE only if it stuck.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from connectors.base import not_carried_out
from connectors.masking import HMAC_STRATEGY, MaskingKey, mask
from connectors.sql.client import SqlClient
from connectors.sql.mapping import SqlMapping, as_date
from connectors.sql.operations import MappedTables, native
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction


class RowChanges:
    """Carries out delete/redact/rectify/restrict actions in one database."""

    def __init__(
        self, source: str, client: SqlClient, tables: MappedTables, masking_key: MaskingKey
    ) -> None:
        self.source = source
        self.client = client
        self.tables = tables
        self.mapping: SqlMapping = tables.mapping
        self.masking_key = masking_key

    def erase(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        """Delete or redact the planned rows. Rows of tables that point at others go first, so
        foreign keys never block a delete."""
        order = {name: i for i, name in enumerate(deletion_order(self.mapping))}
        erasing = (Action.DELETE, Action.REDACT)
        todo = [a for a in actions if a.action in erasing]
        todo.sort(key=lambda a: order.get(a.location, len(order)))
        if any(HMAC_STRATEGY in a.fields.values() for a in todo):
            self.masking_key.get()  # a missing key fails the plan before anything is changed
        return self._run(todo, [a for a in actions if a.action not in erasing])

    def rectify(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        todo = [a for a in actions if a.action == Action.RECTIFY]
        return self._run(todo, [a for a in actions if a.action != Action.RECTIFY])

    def restrict(self, actions: Sequence[PlannedAction]) -> ExecutionReport:
        """Mark rows restricted where the mapping says how; elsewhere the ledger alone holds it
        (said so, as the flows say it of a source without marks)."""
        todo, ledger_only = [], []
        for action in actions:
            if action.action != Action.RESTRICT:
                continue
            mark = self.mapping.tables[action.location].restriction
            if mark is None:
                ledger_only.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.DONE,
                        detail=f"restricted in the ledger only: table {action.location} has "
                        "no restriction mark in the mapping",
                    )
                )
            else:
                todo.append(action.model_copy(update={"fields": {mark.column: mark.value}}))
        report = self._run(todo, [a for a in actions if a.action != Action.RESTRICT])
        report.results += ledger_only
        return report

    def _run(
        self, actions: Sequence[PlannedAction], refused: Sequence[PlannedAction]
    ) -> ExecutionReport:
        report = ExecutionReport(source=self.source)
        with self.client.reachable():
            for action in actions:
                report.results.append(self._execute(action))
        report.results += [not_carried_out(a) for a in refused]
        return report

    def _execute(self, action: PlannedAction) -> ActionResult:
        table = self.tables[action.location]
        where = self.tables.where_key(action.location, action.native_id, action.record_id)
        with self.client.begin() as conn:
            moved = self._hold_moved(conn, action, where)
            if moved:
                return ActionResult(
                    record_id=action.record_id, outcome=Outcome.SKIPPED, detail=moved
                )
            if action.action == Action.DELETE:
                deleted = conn.execute(sa.delete(table).where(where)).rowcount
                if deleted > 1:
                    raise RuntimeError(f"{action.record_id}: key matched {deleted} rows")
                outcome = Outcome.DONE if deleted else Outcome.ALREADY_DONE
                return ActionResult(record_id=action.record_id, outcome=outcome)
            current = conn.execute(sa.select(table).where(where)).mappings().first()
            if current is None:
                return ActionResult(
                    record_id=action.record_id, outcome=Outcome.ALREADY_DONE, detail="row is gone"
                )
            wanted = self._new_values(action, current)
            values = {c: v for c, v in wanted.items() if current[c] != v}
            if not values:
                return ActionResult(record_id=action.record_id, outcome=Outcome.ALREADY_DONE)
            conn.execute(sa.update(table).where(where).values(**values))
            after = conn.execute(sa.select(table).where(where)).mappings().one()
        mismatched = sorted(c for c, v in wanted.items() if after[c] != v)
        if mismatched:  # read back: a trigger or a type may have changed what we wrote
            return ActionResult(
                record_id=action.record_id,
                outcome=Outcome.FAILED,
                detail=f"read back differs in {mismatched}",
            )
        return ActionResult(
            record_id=action.record_id,
            outcome=Outcome.DONE,
            detail=f"{action.action.value} {sorted(values)}",
        )

    def _hold_moved(self, conn: sa.Connection, action: PlannedAction, where: Any) -> str | None:
        """For an erasure at the end of a legal hold (``keep_until``): why the row is left,
        if its hold, read from the row as it is now, ends later than the plan said (its date
        changed since planning); else None. Read in the transaction that then changes it."""
        hold = self.mapping.tables[action.location].legal_hold
        if hold is None or action.keep_until is None or action.action == Action.KEEP:
            return None
        row = conn.execute(sa.select(self.tables[action.location]).where(where)).mappings().first()
        start = as_date(row[hold.counts_from]) if row is not None else None
        if start is None or (until := hold.ends_on(start)) <= action.keep_until:
            return None
        return (
            f"changed since planning: its legal hold ({hold.reason}) now ends on {until}, "
            f"not {action.keep_until}; left untouched"
        )

    def _new_values(self, action: PlannedAction, current: Any) -> dict[str, Any]:
        """The values an action writes: masked (redact) or given (rectify, restrict)."""
        table = self.tables[action.location]
        spec = self.mapping.tables[action.location]
        if action.action != Action.REDACT:
            return {c: native(table.c[c], v) for c, v in action.fields.items()}
        values = {}
        for column, strategy in action.fields.items():
            masking = spec.columns[column].erase if column in spec.columns else None
            values[column] = mask(
                str(strategy),
                current[column],
                masking.value if masking else None,
                self.masking_key,
            )
        return values


def deletion_order(mapping: SqlMapping) -> list[str]:
    """Tables ordered so that a table comes before every table it references."""
    referenced: dict[str, set[str]] = {
        name: {r.target_table for r in spec.references if r.target_table != name}
        for name, spec in mapping.tables.items()
    }
    ordered: list[str] = []
    while referenced:
        # Tables nobody left references can go now; a cycle is broken by name order.
        free = sorted(t for t in referenced if not any(t in v for v in referenced.values()))
        for table in free or [sorted(referenced)[0]]:
            ordered.append(table)
            referenced.pop(table)
    return ordered
