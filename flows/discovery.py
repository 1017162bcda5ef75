"""Discovery in every source, concurrently, repeated until the subject's identities reach a
fixed point. Used by every request flow."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import get_run_logger

from dsrflow.config import Config
from dsrflow.errors import DsrflowError
from dsrflow.identifiers import Identifier
from dsrflow.mapping import BaseMapping
from dsrflow.records import Record
from dsrflow.request import Subject
from flows.tasks import discover_source

MAX_EXPANSION_ROUNDS = 5


class ExpansionError(DsrflowError):
    """Discovery kept finding new identifiers: a mapping's ``expands_identity`` runs away."""


@dataclass(frozen=True)
class Discovery:
    records: list[Record]
    subject: Subject  # with the identifiers found on the way
    rounds: int
    not_searched: dict[str, list[str]] = field(default_factory=dict)  # source -> what, why


def found_identifiers(records: list[Record]) -> set[Identifier]:
    found = set()
    for record in records:
        for text in record.expands:
            kind, _, value = text.partition(":")
            found.add(Identifier(kind=kind, value=value))
    return found


def discover_everywhere(
    config: Config, mappings: dict[str, BaseMapping], subject: Subject, label: str = "discover"
) -> Discovery:
    """One discovery task per source, all at once; again while new identifiers turn up."""
    for round_number in range(1, MAX_EXPANSION_ROUNDS + 1):
        futures = [
            discover_source.with_options(task_run_name=f"{label}-{name}-{round_number}").submit(
                name, config, mappings[name], subject
            )
            for name in config.sources
        ]
        found = {
            name: future.result() for name, future in zip(config.sources, futures, strict=True)
        }
        records = [record for result in found.values() for record in result.records]
        expanded = subject.expanded(found_identifiers(records))
        if expanded == subject:
            gaps = {name: r.not_searched for name, r in found.items() if r.not_searched}
            return Discovery(records, subject, round_number, gaps)
        get_run_logger().info(
            "round %d found %d more identifier(s); discovering again",
            round_number,
            len(expanded.identifiers) - len(subject.identifiers),
        )
        subject = expanded
    raise ExpansionError(
        f"identities kept growing after {MAX_EXPANSION_ROUNDS} rounds of discovery; "
        "check the expands_identity entries of the mappings"
    )
