"""A sandbox start keeps the generated on-prem database only when it is exactly as seeded
(issue 18): anything changed, a journal beside it, or another generator seeds it anew."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sandbox import onprem_reuse
from sandbox.onprem_seed import DEMO_SUBJECT_STORED_AS
from sandbox.runtime import SandboxContext, start_onprem


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[SandboxContext, Path, bytes, dict[str, int]]:
    context = SandboxContext(directory=tmp_path)
    counts = start_onprem(context).counts
    database = tmp_path / "onprem.db"
    return context, database, database.read_bytes(), counts


def test_an_intact_database_is_kept_with_its_counts(seeded):
    context, database, _, counts = seeded
    assert counts["onprem.contacts"] > 0
    before = _identity(database)
    again = start_onprem(context)
    assert _identity(database) == before  # neither removed nor written
    assert again.counts == counts
    assert again.sources["onprem"]["url"] == f"sqlite:///{database}"


def test_a_changed_database_is_seeded_anew_byte_for_byte(seeded):
    context, database, first, counts = seeded
    with sqlite3.connect(database) as conn:  # as an erasure would
        conn.execute("DELETE FROM contacts WHERE email = ?", (DEMO_SUBJECT_STORED_AS,))
    conn.close()
    assert database.read_bytes() != first
    again = start_onprem(context)
    assert database.read_bytes() == first
    assert again.counts == counts


def test_a_journal_beside_it_means_not_intact(seeded):
    context, database, _, _ = seeded
    log = Path(f"{database}-wal")
    log.write_bytes(b"changes not yet in the file")
    before = _identity(database)
    start_onprem(context)
    assert _identity(database) != before
    assert not log.exists()  # a stale log must not be replayed into the new database


def test_another_generator_or_a_broken_stamp_seeds_anew(seeded, monkeypatch):
    context, database, _, _ = seeded
    stamp = database.parent / onprem_reuse.STAMP
    assert json.loads(stamp.read_text())["generator"] == onprem_reuse.generator_key()

    monkeypatch.setattr(onprem_reuse, "generator_key", lambda: "a newer seed module")
    before = _identity(database)
    start_onprem(context)
    assert _identity(database) != before
    monkeypatch.undo()

    stamp.write_text("{not json")
    before = _identity(database)
    start_onprem(context)
    assert _identity(database) != before
    assert onprem_reuse.kept_counts(database) is not None  # stamped again


def test_fixtures_are_loaded_every_time(tmp_path):
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "onprem.json").write_text(json.dumps({"customers": []}))
    context = SandboxContext(directory=tmp_path / "box", fixtures=fixtures)
    (tmp_path / "box").mkdir()
    start_onprem(context)
    assert not (tmp_path / "box" / onprem_reuse.STAMP).exists()
