"""What would stop a right in a SQL source, beyond what opening it checked (reachable, tables
and columns): the masking key, and on PostgreSQL the table privileges the right uses."""

from __future__ import annotations

from connectors.masking import HMAC_STRATEGY, MaskingKey
from connectors.sql.client import SqlClient
from connectors.sql.mapping import RowErasure, SqlMapping
from connectors.sql.operations import MappedTables
from dsrflow.request import RequestType

_ERASING = (RequestType.ERASURE, RequestType.CONSENT_WITHDRAWAL)


def preflight_problems(
    client: SqlClient, tables: MappedTables, masking_key: MaskingKey, right: RequestType
) -> list[str]:
    problems = []
    hashed = [
        f"{table}.{column}"
        for table, spec in tables.mapping.tables.items()
        for column, col in spec.columns.items()
        if col.erase is not None and col.erase.strategy.value == HMAC_STRATEGY
    ]
    if hashed and right in _ERASING:
        missing = masking_key.problem()
        if missing:
            columns = ", ".join(hashed)
            problems.append(f"mapping uses hmac_sha256 masking ({columns}): {missing}")
    if client.dialect == "postgresql":
        wanted = {
            name: (tables[name], privileges)
            for name, privileges in privileges_for(tables.mapping, right).items()
        }
        problems += [
            f"the database user lacks {', '.join(lacking)} on table {name}, "
            f"which {right.value} needs (GRANT it)"
            for name, lacking in client.lacking_privileges(wanted).items()
            if lacking
        ]
    return problems


def privileges_for(mapping: SqlMapping, right: RequestType) -> dict[str, set[str]]:
    """Table -> the privileges the right's reads and writes use there."""
    wanted: dict[str, set[str]] = {}
    for name, spec in mapping.tables.items():
        privileges = {"SELECT"}
        personal = spec.is_personal()
        if right in _ERASING and personal:
            privileges.add("UPDATE")  # redaction of shared rows, consent marks
            if spec.erasure == RowErasure.DELETE or right == RequestType.CONSENT_WITHDRAWAL:
                privileges.add("DELETE")
        if right == RequestType.RECTIFICATION and personal:
            privileges.add("UPDATE")
        if right == RequestType.RESTRICTION and spec.restriction is not None:
            privileges.add("UPDATE")
        wanted[name] = privileges
    return wanted
