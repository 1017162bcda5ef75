"""The copies of a subject's data that dsrflow itself writes: export folders and plan files.

They are personal data at rest too. An erasure removes the subject's earlier ones (its own plan
stays, beside the receipt: it proves what was done, and holds references, not values), and the
retention sweep removes export folders once their retention (``export_retention_days``) ends.
Where each export went is in the ledger (the ``exported`` entry of its request).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dsrflow.ledger import SETTLED, Ledger
from dsrflow.request import Subject

PLAN_FILE = "plan.json"


@dataclass
class Removed:
    """What was removed, and what could not be (with why), as paths."""

    removed: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)


def export_folders(ledger: Ledger, request_id: str, output_dir: Path) -> list[Path]:
    """Where the request's exports were written (older ledgers did not say: the default)."""
    entries = [e for e in ledger.entries(request_id) if e.event == "exported"]
    folders = {Path(e.details["export_dir"]) for e in entries if e.details.get("export_dir")}
    if entries and not folders:
        folders.add(output_dir / request_id)
    return sorted(folders)


def earlier_copies(
    ledger: Ledger, subject: Subject, request_id: str, plan_folders: Iterable[Path]
) -> list[Path]:
    """The export folders and plan files (under any of ``plan_folders``) of the subject's
    other settled requests (closed, or dry runs) that still exist; an open request may still
    need its plan to resume."""
    folders = list(dict.fromkeys(plan_folders))
    paths: dict[Path, None] = {}
    for other in ledger.requests_of(subject):
        row = ledger.request_row(other)
        if other == request_id or row is None or row["status"] not in SETTLED:
            continue
        paths.update(dict.fromkeys(export_folders(ledger, other, folders[0])))
        paths.update(dict.fromkeys(folder / other / PLAN_FILE for folder in folders))
    return [p for p in paths if p.exists()]


def remove(paths: list[Path]) -> Removed:
    """Remove files and export folders; a path that cannot be removed is reported, not hidden."""
    outcome = Removed()
    for path in paths:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            outcome.remaining.append(f"{path} ({exc.strerror})")
        else:
            outcome.removed.append(str(path))
    return outcome


def expired_exports(
    ledger: Ledger, output_dir: Path, retention: dt.timedelta, now: dt.datetime
) -> list[Path]:
    """Export folders written longer ago than ``retention`` that still exist."""
    written: dict[Path, dt.datetime] = {}  # each folder's latest export counts
    for entry in ledger.entries():
        if entry.event != "exported" or entry.request_id is None:
            continue
        folder = Path(entry.details.get("export_dir") or output_dir / entry.request_id)
        at = dt.datetime.fromisoformat(entry.at)
        written[folder] = max(at, written.get(folder, at))
    return sorted(p for p, at in written.items() if now - at >= retention and p.exists())
