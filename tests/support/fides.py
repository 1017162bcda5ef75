"""Loaders for the Fides example database, an outside schema the tests use read-only.

The script lives outside the repository, in ``../shared/peer/fides/postgres_sample.sql``
(``DSRFLOW_SHARED_DIR`` names the folder holding ``peer/`` instead). PostgreSQL gets it
unchanged; SQLite gets a mechanical translation of its ``public`` schema part.
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]


def _shared_dir() -> Path:
    override = os.environ.get("DSRFLOW_SHARED_DIR")
    return Path(override) if override else REPO.parent / "shared"


FIDES_DIR: Path = _shared_dir() / "peer" / "fides"
FIDES_SQL: Path = FIDES_DIR / "postgres_sample.sql"
FIDES_SKIP_REASON: str = (
    f"Fides example database not found at {FIDES_DIR}: it lives in ../shared/peer/fides "
    "beside the repository (or set DSRFLOW_SHARED_DIR to the folder holding peer/)"
)

# Where the script starts copying tables into a second schema, which SQLite cannot have.
BACKUP_SCHEMA_START = "CREATE SCHEMA backup_schema"

# PostgreSQL -> SQLite, applied in order. Types are matched in upper case only, as the
# script spells them, so lower-case row data is never rewritten.
SQLITE_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*ALTER SEQUENCE\b[^;]*;[ \t]*\n?", re.MULTILINE), ""),
    (re.compile(r"\bpublic\."), ""),
    # INTEGER PRIMARY KEY makes SQLite number new rows itself, as SERIAL does.
    (re.compile(r"\bSERIAL\b"), "INTEGER"),
    (re.compile(r"\b(?:CHARACTER VARYING|VARCHAR)\s*\(\s*\d+\s*\)"), "TEXT"),
    # Keep the '$20.00' text as is; SQLite has no money type.
    (re.compile(r"\bMONEY\b"), "TEXT"),
)


def fides_available() -> bool:
    return FIDES_SQL.is_file()


def load_fides_postgres(url: str) -> None:
    """Run the Fides script unchanged, backup_schema included, on the database at ``url``."""
    script = FIDES_SQL.read_text(encoding="utf-8")
    # One simple-protocol query (no parameters) may hold many statements; PostgreSQL runs it
    # as a single implicit transaction, so a failure leaves nothing half loaded.
    with psycopg.connect(**_psycopg_args(url), autocommit=True) as conn:
        conn.execute(script.encode())


def _psycopg_args(url: str) -> dict[str, object]:
    # The SQLAlchemy URL's parts under libpq's keyword names.
    return make_url(url).translate_connect_args(username="user", database="dbname")


def sqlite_script(postgres_script: str) -> str:
    """The ``public`` part of the Fides script, translated for SQLite."""
    script, _, _ = postgres_script.partition(BACKUP_SCHEMA_START)
    for pattern, replacement in SQLITE_REWRITES:
        script = pattern.sub(replacement, script)
    return script


def load_fides_sqlite(path: Path) -> str:
    """Create a new SQLite file holding the Fides ``public`` schema and rows; return its URL."""
    path = path.resolve()
    if path.exists():
        raise FileExistsError(f"{path} exists; load_fides_sqlite wants a new file")
    script = sqlite_script(FIDES_SQL.read_text(encoding="utf-8"))
    with closing(sqlite3.connect(path)) as conn:
        # One transaction: all tables and rows or none (and far fewer disk syncs).
        conn.executescript(f"BEGIN;\n{script}\nCOMMIT;")
    return f"sqlite:///{path}"
