"""One page per case: where a request stands, read from the ledger alone.

The page is a view of the audit chain, so it can never say more than the ledger proves: when
the request was received, each status, the officer's decisions, what each source reported,
and the deadline. It shows counts, dates, officers and event names, never the subject's
identifiers nor free text (an approval's note may name the subject), so it may be published
where the officer reads it (a Prefect artifact, flows/case_page.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dsrflow.ledger import AuditEntry, Ledger

# Details that are counts, dates, hashes or ids (never contents); anything else stays out.
SHOWN_DETAILS = frozenset(
    {
        "records",
        "per_source",
        "source",
        "done",
        "already_done",
        "skipped",
        "failed",
        "remains",
        "plan_sha256",
        "residue",
        "months",
        "due_at",
        "actions",
        "waiting",
        "error",
        "delete",
        "redact",
        "keep",
        "rectify",
        "restrict",
        "since",
        "lifted",
        "receipt",
        "kind",  # a letter's kind and language (letter_written)
        "language",
        "method",  # identity (dsrflow/identity.py) and delivery (dsrflow/delivery.py)
        "via",
        "ticket",
        "why",
        "attempt",
        "expires_at",
        "archive_sha256",
        "files",
        "outcome",  # a manual source's answer: the place's name, outcome and date, no note
        "on",
        "sources",
        "asking",
    }
)
# Events the officer acts on; their actor is shown (an officer's name, not the subject's).
DECISIONS = frozenset({"approved", "rejected", "approval_refused", "manual_answered"})
# The milestones the page's header answers, by the ledger events that settle them.
IDENTITY = ("identity_verified", "identity_not_required")
DELIVERY = ("delivered",)


@dataclass(frozen=True)
class Step:
    at: str
    event: str
    actor: str
    shown: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    request_id: str
    type: str
    status: str
    received_at: dt.datetime
    due_at: dt.date
    days_left: int | None
    sources: dict[str, str]
    decisions: list[Step]
    steps: list[Step]

    def latest(self, events: tuple[str, ...]) -> Step | None:
        return next((s for s in reversed(self.steps) if s.event in events), None)


def read_case(ledger: Ledger, request_id: str, today: dt.date | None = None) -> Case | None:
    """The case as the ledger holds it; None when the ledger has no such request."""
    row = ledger.request_row(request_id)
    if row is None:
        return None
    today = today or dt.datetime.now(dt.UTC).date()
    due = row["extended_due_at"] or row["due_at"]
    open_ = row["closed_at"] is None and row["status"] != "draft"
    steps = [_step(e) for e in ledger.entries(request_id)]
    return Case(
        request_id=request_id,
        type=row["type"],
        status=row["status"],
        received_at=row["received_at"],
        due_at=due,
        days_left=(due - today).days if open_ else None,
        sources=source_states(steps),
        decisions=[s for s in steps if s.event in DECISIONS],
        steps=steps,
    )


def _step(entry: AuditEntry) -> Step:
    shown = {k: v for k, v in entry.details.items() if k in SHOWN_DETAILS}
    return Step(at=entry.at, event=entry.event, actor=entry.actor, shown=shown)


def source_states(steps: Iterable[Step]) -> dict[str, str]:
    """Per source, the latest thing the ledger says of it: found N (an export), or the
    outcome counts of carrying out the plan there."""
    states: dict[str, str] = {}
    for step in steps:
        if step.event == "exported":
            for source, n in (step.shown.get("per_source") or {}).items():
                states[source] = f"found {n}"
        elif step.event == "executed" and "source" in step.shown:
            counts = {
                k: v for k, v in step.shown.items() if k != "source" and isinstance(v, int) and v
            }
            states[str(step.shown["source"])] = (
                ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()) or "nothing"
            )
    return states


def case_markdown(case: Case, links: dict[str, str] | None = None) -> str:
    """The page: a header of facts, sources, decisions, then every step in order."""
    days = (
        "closed"
        if case.days_left is None
        else f"{case.days_left} day(s) left"
        if case.days_left >= 0
        else f"**overdue by {-case.days_left} day(s)**"
    )
    lines = [
        f"### {case.request_id}: {case.type}",
        "",
        f"- status: **{case.status}**",
        f"- received: {_utc(case.received_at)}",
        f"- deadline (Art. 12(3)): {case.due_at.isoformat()} ({days})",
    ]
    lines += [f"- identity: {_milestone(case.latest(IDENTITY), 'method', 'not verified yet')}"]
    lines += [f"- delivery: {_milestone(case.latest(DELIVERY), 'via', 'not delivered')}"]
    lines += [f"- {name}: {url}" for name, url in (links or {}).items()]
    lines += ["", "#### Sources", ""]
    if case.sources:
        lines += ["| source | state |", "|---|---|"]
        lines += [f"| {s} | {state} |" for s, state in sorted(case.sources.items())]
    else:
        lines.append("none reported yet")
    lines += ["", "#### Decisions", ""]
    lines += [f"- {d.at[:19]}Z {d.event} by {d.actor}" for d in case.decisions] or ["none yet"]
    lines += ["", "#### Steps", "", "| when (UTC) | step | by | details |", "|---|---|---|---|"]
    lines += [f"| {s.at[:19]} | {s.event} | {s.actor} | {_details(s.shown)} |" for s in case.steps]
    return "\n".join(lines) + "\n"


def _milestone(step: Step | None, how: str, otherwise: str) -> str:
    if step is None:
        return otherwise
    if step.event == "identity_not_required":
        return f"not required by the config (recorded {step.at[:10]})"
    when = step.at[:16].replace("T", " ")
    return f"{step.shown.get(how, 'yes')} by {step.actor}, {when} UTC"


def _details(shown: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_short(v)}" for k, v in shown.items())


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(f"{k} {v}" for k, v in value.items())
    text = str(value)
    return text[:12] if len(text) == 64 else text  # a SHA-256: its prefix is enough to compare


def _utc(value: dt.datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
