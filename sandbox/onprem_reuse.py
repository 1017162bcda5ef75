"""Keeping the generated on-prem database between sandbox starts when it is exactly as seeded.

Generating it costs most of a warm ``dsr demo``'s sandbox start (issue 18), yet an access
request only reads it. After seeding, ``<dir>/onprem.seeded.json`` records the SHA-256 of the
database file and a key of what generated it (the seed and schema modules' source, Faker's and
SQLAlchemy's versions). A later start keeps the file only when both still match and SQLite has
no journal or write-ahead log beside it (changes there would not show in the file's digest);
anything else (an erasure ran, the generator changed, the file is gone) seeds it anew. So a
kept database is byte for byte the one a fresh seed would write.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

from sandbox import onprem_schema, onprem_seed

STAMP = "onprem.seeded.json"
# What SQLite keeps beside a database while (or after) it changes it.
SIDE_FILES = ("-journal", "-wal")


def generator_key() -> str:
    """What determines the generated rows: the seed and schema code and the libraries'
    versions (Faker's output for one seed changes between its releases)."""
    digest = hashlib.sha256()
    for module in (onprem_seed, onprem_schema):
        digest.update(Path(str(module.__file__)).read_bytes())
    for package in ("faker", "sqlalchemy"):
        digest.update(f"{package}=={version(package)}".encode())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def kept_counts(database: Path) -> dict[str, int] | None:
    """The seeded row counts if ``database`` is exactly as the current generator seeded it,
    else None (the caller seeds it anew)."""
    stamp = database.parent / STAMP
    if not database.is_file() or not stamp.is_file():
        return None
    if any(Path(f"{database}{suffix}").exists() for suffix in SIDE_FILES):
        return None
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        if recorded["generator"] != generator_key() or recorded["sha256"] != file_digest(database):
            return None
        return {str(k): int(v) for k, v in recorded["counts"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # an unreadable stamp vouches for nothing


def record(database: Path, counts: dict[str, int]) -> None:
    """Note that ``database`` was just seeded by the current generator with ``counts``."""
    stamp = database.parent / STAMP
    stamp.write_text(
        json.dumps(
            {"generator": generator_key(), "sha256": file_digest(database), "counts": counts}
        ),
        encoding="utf-8",
    )


def remove(database: Path) -> None:
    """Before seeding anew: the stamp, the database, and any journal or log SQLite left beside
    it (a stale one would be replayed into the new database)."""
    (database.parent / STAMP).unlink(missing_ok=True)
    database.unlink(missing_ok=True)
    for suffix in (*SIDE_FILES, "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
