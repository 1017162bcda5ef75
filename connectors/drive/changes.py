"""The guard every change of a subject's rows passes (erasure, rectification).

Each affected sheet is re-read right before the change, and every target row must still hold
the subject's identifier (the plan carries a fingerprint of it in ``native_id.holds``). Rows
move when people edit a sheet: if a target row no longer holds it but the identifier is
elsewhere in the sheet, that sheet is left untouched and its actions come back SKIPPED, so the
request is not complete; if it is nowhere, the row is already gone (ALREADY_DONE). A row is
deleted only while it holds exactly what the plan saw (``native_id.content``, a fingerprint of
the row). A sheet that cannot be read fails its actions, and the other sheets' results still
count. Sheets has no conditional write: the window between the re-read and the write is one
round trip.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import SourceUnavailable, not_carried_out
from connectors.drive.mapping import DriveMapping, Layout
from connectors.drive.operations import Sheets
from connectors.drive.rows import content_digest, headers_of, holds
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction


@dataclass
class Target:
    """One planned action on one row, as the guard sees it."""

    action: PlannedAction
    row: int
    digests: set[str]


@dataclass(frozen=True)
class GuardedSheet:
    """A sheet as the guard re-read it, with the layout that still fits it."""

    spreadsheet_id: str
    props: dict[str, Any]
    headers: list[str]
    rows: list[list[Any]]
    layout: Layout


# What a right does to the rows that passed the guard: one result per target.
Change = Callable[[Sheets, GuardedSheet, list[Target]], list[ActionResult]]


def all_of(actions: list[PlannedAction], outcome: Outcome, detail: str) -> list[ActionResult]:
    return [ActionResult(record_id=a.record_id, outcome=outcome, detail=detail) for a in actions]


class SheetChanges:
    """Carries out a plan's actions sheet by sheet, each behind the guard."""

    def __init__(self, sheets: Sheets, mapping: DriveMapping, phone_region: str) -> None:
        self.sheets = sheets
        self.mapping = mapping
        self.phone_region = phone_region

    def carry_out(
        self, actions: Sequence[PlannedAction], wanted: tuple[Action, ...], change: Change
    ) -> ExecutionReport:
        """``change`` the sheets of the ``wanted`` actions; every other action is answered
        (``not_carried_out``), never dropped."""
        report = ExecutionReport(source=self.sheets.name)
        report.results += [not_carried_out(a) for a in actions if a.action not in wanted]
        by_sheet: dict[tuple[str, int], list[PlannedAction]] = defaultdict(list)
        for action in actions:
            if action.action in wanted:
                native = action.native_id
                by_sheet[(native["spreadsheet_id"], int(native["sheet_id"]))].append(action)
        for sheet_actions in by_sheet.values():
            try:
                report.results += self.change_sheet(sheet_actions, change)
            except SourceUnavailable as exc:
                # Not readable (a 404 Drive does not confirm as absence included): its actions
                # fail, so the request is not complete; the other sheets' results still count.
                report.results += all_of(sheet_actions, Outcome.FAILED, exc.reason)
        return report

    def change_sheet(self, actions: list[PlannedAction], change: Change) -> list[ActionResult]:
        """Re-read the sheet, run the guard, then ``change`` the rows that passed it."""
        native = actions[0].native_id
        spreadsheet_id = native["spreadsheet_id"]
        read = self.sheets.sheet_values(
            spreadsheet_id, "re-reading a sheet before a change", int(native["sheet_id"])
        )
        if not read:
            return all_of(actions, Outcome.ALREADY_DONE, "the sheet no longer exists")
        props, rows = read[0].props, read[0].rows
        headers = headers_of(rows[0]) if rows else []
        layout = self.mapping.layout_for(native["spreadsheet"], props["title"], headers)
        if layout is None:
            return all_of(
                actions, Outcome.SKIPPED, "no layout of the mapping fits the sheet any more"
            )
        where: dict[str, list[int]] = defaultdict(list)  # digest -> rows (1-based) holding it
        for number, row in enumerate(rows[1:], start=2):
            for d in holds(layout, headers, row, self.phone_region):
                where[d].append(number)
        ready: list[Target] = []
        results: list[ActionResult] = []
        for action in actions:
            row_number = int(action.native_id["row"])
            digests = set(str(action.native_id.get("holds", "")).split("+")) - {""}
            here = any(row_number in where.get(d, []) for d in digests)
            seen = action.native_id.get("content")
            if (
                here
                and action.action == Action.DELETE
                and seen
                and content_digest(rows[row_number - 1]) != seen
            ):
                results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.SKIPPED,
                        detail=f"row {row_number} changed since planning: it no longer "
                        "holds exactly what the plan saw, so it was left untouched",
                    )
                )
                continue
            if here:
                ready.append(Target(action, row_number, digests))
            elif any(where.get(d) for d in digests):
                # The subject's identifier is still in the sheet, but elsewhere: rows moved.
                return all_of(
                    actions,
                    Outcome.SKIPPED,
                    f"row {row_number} no longer holds the subject's identifier but other rows "
                    "do: the sheet changed since planning and was left untouched",
                )
            else:
                results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.ALREADY_DONE,
                        detail="no row of the sheet holds the subject's identifier any more",
                    )
                )
        if ready:
            sheet = GuardedSheet(spreadsheet_id, props, headers, rows, layout)
            results += change(self.sheets, sheet, ready)
        return results
