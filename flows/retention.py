"""The retention sweep (Art. 5(1)(e)): every retention rule of every mapping, on a schedule.

Raw usage data older than two years is aggregated so that no one can be re-identified, then
deleted; other rules delete what is past its time. Restricted subjects' records are left as
they are (stored, not processed). ``dry_run`` reports what would go.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from connectors import SourceContext, Sweeping, open_connector
from connectors.base import SWEEP_DAY
from dsrflow.config import Config
from dsrflow.copies import expired_exports
from dsrflow.copies import remove as remove_copies
from dsrflow.delivery import delivered_exports
from dsrflow.ledger import HELD_FOR, Ledger
from dsrflow.mapping import BaseMapping
from dsrflow.plan import Outcome, PlannedAction
from dsrflow.planning import record_ref
from dsrflow.request import Subject
from dsrflow.run_settings import current_run_settings
from flows.changes import execute_actions
from flows.private import private_run
from flows.restriction import (
    Restricted,
    destroys_restricted,
    protected_records,
    restricted_in,
    restricted_subjects,
)
from flows.tasks import check_sources


class SweepSummary(BaseModel):
    dry_run: bool
    results: list[dict[str, object]]
    skipped_sources: list[str]
    holds_ended: int = 0
    holds_left: list[str] = Field(
        default_factory=list,
        description="due holds not carried out (a record changed since planning, a failure): "
        "record references and their outcome, no details (a detail may name a mailbox); they "
        "stay queued for the officer",
    )
    exports_removed: int = 0


@task(name="sweep-source", persist_result=False, cache_policy=NO_CACHE)
def sweep_source(
    name: str,
    config: Config,
    mapping: BaseMapping,
    restricted: Restricted,
    now: dt.datetime,
    dry_run: bool,
    min_group_size: int | None,
) -> list[dict[str, object]] | None:
    with open_connector(name, config.sources[name], mapping, SourceContext.of(config)) as connector:
        if not isinstance(connector, Sweeping):
            return None
        # Restricted subjects' records are stored, not processed: found first, then left alone.
        protected = protected_records(connector, name, restricted)
        results = connector.sweep(
            now, dry_run=dry_run, protected=protected, min_group_size=min_group_size
        )
    rows = [{"source": name, **dataclasses.asdict(r)} for r in results]
    for row in rows:
        row.pop("notes", None)
        get_run_logger().info(
            "%s.%s: %s row(s) %s",
            name,
            row["table"],
            row["rows"],
            "would go" if dry_run else "swept",
        )
    return rows


@flow(name="retention-sweep", persist_result=False)
@private_run
def retention_sweep(dry_run: bool = False, as_of: dt.datetime | None = None) -> SweepSummary:
    """Apply every retention rule now (or ``as_of``, e.g. to preview a date with ``dry_run``).
    The mappings' k for aggregates holds unless the process that runs the sweep overrides it
    (``dsr sweep --min-group-size``: dsrflow/run_settings.py).

    Args:
        dry_run: Report what would go; change nothing.
        as_of: Sweep as on this date and time instead of now (with dry run: see what will
            go then).
    """
    settings = current_run_settings()
    config = settings.config()
    mappings = check_sources(config)
    with Ledger.from_config(config) as ledger:
        restricted = restricted_subjects(ledger)
        # Found once, in every source, for the sweeps and the hold-end erasure alike.
        spared = restricted_in(config, mappings, restricted) if restricted else Restricted()
        now = as_of or dt.datetime.now(dt.UTC)
        results: list[dict[str, object]] = []
        skipped = []
        for name in config.sources:
            rows = sweep_source.with_options(task_run_name=f"sweep-{name}")(
                name, config, mappings[name], spared, now, dry_run, settings.min_group_size
            )
            if rows is None:
                skipped.append(name)
            else:
                results += rows
        holds_ended, holds_left = _erase_ended_holds(
            config, mappings, ledger, spared, now.date(), dry_run
        )
        exports = _remove_expired_exports(config, ledger, now, dry_run)
        create_table_artifact(
            key="retention-sweep",
            table=[_artifact_row(r) for r in results],
            description=("dry run: what would go" if dry_run else "retention sweep")
            + f" at {now:%Y-%m-%d %H:%M} UTC",
        )
        ledger.record(
            None,
            "retention_sweep_dry_run" if dry_run else "retention_sweep",
            rows={f"{r['source']}.{r['table']}": r["rows"] for r in results},
            aggregated=_aggregated(results),
            restricted_subjects=len(restricted),
            holds_ended=holds_ended,
            holds_left=len(holds_left),
            exports_removed=exports,
        )
    return SweepSummary(
        dry_run=dry_run,
        results=results,
        skipped_sources=skipped,
        holds_ended=holds_ended,
        holds_left=holds_left,
        exports_removed=exports,
    )


def _aggregated(results: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Per aggregating rule (counts only): events per level, suppressed, waiting."""
    return {
        f"{r['source']}.{r['table']}": {
            "levels": r["levels"],
            "suppressed": r["suppressed"],
            "pending": r["pending"],
        }
        for r in results
        if r.get("levels")
    }


def _artifact_row(row: dict[str, object]) -> dict[str, object]:
    out = {k: v for k, v in row.items() if k not in ("dry_run", "levels")}
    levels = row.get("levels")
    if isinstance(levels, dict):  # one cell: "day 40, week 12, …"
        out["levels"] = ", ".join(f"{name} {n}" for name, n in levels.items())
    return out


def _remove_expired_exports(config: Config, ledger: Ledger, now: dt.datetime, dry_run: bool) -> int:
    """Export folders past ``export_retention_days``, or ``delivery.retention_days`` after
    their delivery, go (how many would, in a dry run); one that cannot be removed fails the
    sweep, so that it is not forgotten."""
    retention = dt.timedelta(days=config.export_retention_days)
    expired = expired_exports(ledger, config.output_dir, retention, now)
    after_delivery = dt.timedelta(days=config.delivery.retention_days)
    expired = sorted({*expired, *delivered_exports(ledger, after_delivery, now)})
    if dry_run or not expired:
        return len(expired)
    outcome = remove_copies(expired)
    if outcome.remaining:
        raise OSError(f"export folders past their retention not removed: {outcome.remaining}")
    return len(outcome.removed)


def _erase_ended_holds(
    config: Config,
    mappings: dict[str, BaseMapping],
    ledger: Ledger,
    spared: Restricted,
    today: dt.date,
    dry_run: bool,
) -> tuple[int, list[str]]:
    """Records kept by an erasure under a legal hold that has ended are erased now, with the
    action their plan set aside, in every kind through its connector (which checks the hold
    again, and whether the record changed since planning); a hold stays queued until its
    action is done. Returns how many were released, and the ones left (reference: outcome)."""
    due = ledger.due_holds(today)
    if due and spared.identifiers:
        # Art. 18: destroying a restricted subject's data waits in the queue for its end.
        due = [(rid, action) for rid, action in due if not destroys_restricted(action, spared)]
    if dry_run or not due:
        return len(due), []
    released, left = [], []
    for name in config.sources:
        mine = [
            action.model_copy(update={"hints": {**action.hints, SWEEP_DAY: today.isoformat()}})
            for _, action in due
            if action.source == name
        ]
        for subject, actions in _by_subject(mine):
            report = execute_actions.with_options(task_run_name=f"holds-ended-{name}")(
                name, config, mappings[name], actions, subject
            )
            refs = {a.record_id: record_ref(a) for a in actions}
            for r in report.results:
                if r.outcome in (Outcome.DONE, Outcome.ALREADY_DONE):
                    released.append(r.record_id)
                else:
                    left.append(f"{refs[r.record_id]}: {r.outcome.value}")
                    get_run_logger().warning("hold ended, not erased: %s", left[-1])
    if released:
        ledger.release_holds(released)
    return len(released), sorted(left)


def _by_subject(actions: list[PlannedAction]) -> list[tuple[Subject, list[PlannedAction]]]:
    """Due actions per subject they were queued with (``HELD_FOR``; none: an empty one, for
    a kind whose erasure does not need it)."""
    groups: dict[str, list[PlannedAction]] = {}
    for action in actions:
        groups.setdefault(json.dumps(action.hints.get(HELD_FOR), sort_keys=True), []).append(action)
    return [
        (Subject.model_validate(json.loads(key)) if key != "null" else Subject(emails=()), group)
        for key, group in groups.items()
    ]
