"""The shared table of identifier spellings (tests/fixtures/identifier_cases.yaml).

Every source's test seeds one record per stored spelling, discovers each subject of the table
and checks the result with ``check``: the ``same`` spellings found, the others not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

TABLE = Path(__file__).resolve().parents[1] / "fixtures" / "identifier_cases.yaml"
PHONE_REGION = "NO"


@dataclass(frozen=True)
class Case:
    kind: str
    id: str
    subject: str
    stored: str
    same: bool


def cases(kind: str | None = None) -> list[Case]:
    data = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    return [Case(kind=k, **row) for k, rows in data.items() if kind in (None, k) for row in rows]


def subjects(kind: str) -> list[str]:
    """The subjects of the table, in order of first appearance."""
    return list(dict.fromkeys(c.subject for c in cases(kind)))


def check(kind: str, subject: str, found_ids: Iterable[str], source: str) -> None:
    """Discovery of ``subject`` found the records of the cases ``found_ids`` (any others seeded
    for other subjects are ignored unless the table names them for this one)."""
    found = set(found_ids)
    mine = [c for c in cases(kind) if c.subject == subject]
    missed = sorted(c.id for c in mine if c.same and c.id not in found)
    wrong = sorted(c.id for c in mine if not c.same and c.id in found)
    assert not missed and not wrong, (
        f"{source}, subject {subject!r}: missed {missed}, wrongly matched {wrong}"
    )
