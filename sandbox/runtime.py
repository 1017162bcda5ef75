"""Bringing the sandbox up: its parts (the on-prem database and, as their issues land, the
emulators of the SaaS sources), seeded, with a dsrflow config file that points at them.

Each part is a function ``start(context) -> PartStarted`` registered in ``PARTS``: it creates its
source, seeds it (generated data, or the part's file in the fixtures directory), and returns the
config entries of its sources and a way to stop it.

Secrets the sandbox makes (the Jira API token, the key of ``hmac_sha256`` masking) go to
owner-only files under ``secrets/``; the config refers to them (``{file: ...}``), so no secret
sits in the config and no environment variable has to be set to use the sandbox.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
import yaml

from dsrflow.export import write_private
from sandbox import FixtureError, onprem_reuse, onprem_seed
from sandbox.analytics_part import start_analytics
from sandbox.drive_part import start_drive
from sandbox.emulators.faults import FaultSettings
from sandbox.jira_part import start_jira
from sandbox.mail_part import start_mail
from sandbox.marketplace_part import start_marketplace

REPO_ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = REPO_ROOT / "mappings"

Profile = Literal["small", "large"]

CONTROLLER: dict[str, Any] = {
    "name": "Fjelltopp Apps AS",
    "address": "Kongens gate 1, 7011 Trondheim, Norway",
    "contact_email": "privacy@fjelltopp.example",
    "dpo_email": "dpo@fjelltopp.example",
    # The tenant of its mailboxes and staff (sandbox/mail_seed.py, jira_seed.py): nobody else
    # has an address there, so mail to its support desk is not shared with a third person.
    "own_domains": ["fjelltopp.example"],
    "recipients": [
        {
            "name": "Microsoft Ireland Operations Ltd (Office 365)",
            "role": "processor",
            "purpose": "e-mail for customer support and sales",
            "country": "IE",
            "safeguards": "data processing agreement; EU Data Boundary",
        },
        {
            "name": "Google Cloud EMEA Ltd (Google Workspace)",
            "role": "processor",
            "purpose": "spreadsheets for analytics and administration",
            "country": "IE",
            "safeguards": "data processing agreement; EU standard contractual clauses",
        },
        {
            "name": "Atlassian Pty Ltd (Jira Service Management)",
            "role": "processor",
            "purpose": "support tickets",
            "country": "AU",
            "safeguards": "EU standard contractual clauses",
        },
    ],
}
# The places without an API of the fictional controller (`dsr sandbox up --manual-sources`):
# every request then waits for an answer per place (README, "Places without an API").
MANUAL_SOURCES: list[dict[str, Any]] = [
    {
        "name": "sales-phones",
        "instructions": "Search the contacts, call log and SMS of each company phone for the "
        "subject's e-mail addresses and phone numbers; export what you find as one file.",
        "responsible": "Head of sales",
    },
    {
        "name": "paper",
        "instructions": "Look through the signed contracts binder (office, cabinet 2) for the "
        "subject's name; scan what you find into one PDF.",
        "responsible": "Office manager",
        "rights": ["access", "erasure", "rectification"],
    },
]


# The generated sandbox's intake channels: the desk's "Privacy request" type and the privacy
# mailbox's Inbox (its seeded mail dates from 2026, hence the long look back).
SANDBOX_INTAKE: dict[str, Any] = {
    "servicedesk": {"source": "jira", "project": "SUP", "request_type": "Privacy request"},
    "mailbox": {"source": "mail", "mailbox": "privacy@fjelltopp.example", "folder": "Inbox"},
    "lookback_days": 366,
}


@dataclass(frozen=True)
class SandboxContext:
    directory: Path
    fixtures: Path | None = None
    profile: Profile = "small"
    faults: FaultSettings = field(default_factory=FaultSettings)
    progress: Callable[[str], None] = lambda _message: None


@dataclass
class PartStarted:
    sources: dict[str, dict[str, Any]]
    counts: dict[str, int]
    stop: Callable[[], None] = lambda: None


def start_onprem(context: SandboxContext) -> PartStarted:
    """The on-prem SQLite database: generated, large, or loaded from ``onprem.json``."""
    database = context.directory / "onprem.db"
    url = f"sqlite:///{database}"
    source = {"kind": "sql", "url": url, "mapping": str(MAPPINGS / "onprem.yaml")}
    generated = not context.fixtures and context.profile == "small"
    kept = onprem_reuse.kept_counts(database) if generated else None
    if kept is not None:  # exactly as seeded: seeding again would write the same bytes
        return PartStarted(
            sources={"onprem": source}, counts={f"onprem.{k}": v for k, v in kept.items()}
        )
    onprem_reuse.remove(database)
    fixture = context.fixtures / "onprem.json" if context.fixtures else None
    if context.profile == "large" and not fixture:
        from sandbox.large import generate_large_onprem

        generate_large_onprem(url, progress=context.progress)
        counts = _row_counts(url)
    else:
        engine = sa.create_engine(url)
        try:
            onprem_seed.create_schema(engine)
            if fixture and fixture.exists():
                counts = onprem_seed.load_fixture(engine, fixture)
            elif context.fixtures:
                counts = {}  # a fixtures directory without onprem.json: an empty database
            else:
                counts = onprem_seed.generate(engine)
        finally:
            engine.dispose()
    if generated:
        onprem_reuse.record(database, counts)
    return PartStarted(
        sources={"onprem": source}, counts={f"onprem.{k}": v for k, v in counts.items()}
    )


def _row_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {
                name: int(
                    conn.execute(
                        sa.select(sa.func.count()).select_from(sa.table(name))
                    ).scalar_one()
                )
                for name in names
            }
    finally:
        engine.dispose()


# The parts, in start order. The SaaS issues add "mail", "drive" and "jira" here.
PARTS: dict[str, Callable[[SandboxContext], PartStarted]] = {
    "onprem": start_onprem,
    "jira": start_jira,
    "mail": start_mail,
    "drive": start_drive,
    "marketplace": start_marketplace,
    "analytics": start_analytics,
}


@dataclass
class RunningSandbox:
    directory: Path
    config_path: Path
    parts: dict[str, PartStarted]

    @property
    def counts(self) -> dict[str, int]:
        return {k: v for part in self.parts.values() for k, v in part.counts.items()}

    def stop(self) -> None:
        # Each emulator takes a tick of its event loop (~0.1 s) and its shutdown to stop: stop
        # them side by side, wait for every one, then raise the first failure.
        parts = list(reversed(self.parts.values()))
        with ThreadPoolExecutor(max_workers=max(1, len(parts))) as pool:
            stopping = [pool.submit(part.stop) for part in parts]
        for stopped in stopping:
            stopped.result()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start(
    directory: Path,
    fixtures: Path | None = None,
    config_path: Path | None = None,
    *,
    profile: Profile = "small",
    faults: FaultSettings | None = None,
    progress: Callable[[str], None] | None = None,
    manual_sources: bool = False,
) -> RunningSandbox:
    """Start every part in ``directory`` and write the config; stop the parts when done.
    ``manual_sources``: the config names the controller's places without an API too."""
    if fixtures and not fixtures.is_dir():
        raise FixtureError(f"fixtures directory {fixtures} does not exist")
    directory.mkdir(parents=True, exist_ok=True)
    context = SandboxContext(
        directory=directory.resolve(),
        fixtures=fixtures,
        profile=profile,
        faults=faults or FaultSettings(),
        progress=progress or (lambda _message: None),
    )
    running = RunningSandbox(directory, config_path or directory / "dsrflow.yaml", {})
    try:
        for name, start_part in PARTS.items():
            running.parts[name] = start_part(context)
    except BaseException:
        running.stop()
        raise
    sources = {k: v for part in running.parts.values() for k, v in part.sources.items()}
    key_file = write_secret(context.directory, "masking-key", secrets.token_urlsafe(32))
    write_config(
        running.config_path,
        sources,
        directory / "exports",
        masking_key_file=key_file,
        intake=None if fixtures or profile != "small" else SANDBOX_INTAKE,
        manual_sources=MANUAL_SOURCES if manual_sources else None,
    )
    return running


def write_secret(directory: Path, name: str, value: str) -> Path:
    """``directory/secrets/name`` holding ``value``: the folder 0700, the file 0600."""
    folder = directory / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / name
    write_private(path, value.encode("utf-8"))
    return path


def write_config(
    path: Path,
    sources: dict[str, dict[str, Any]],
    output_dir: Path,
    *,
    masking_key_file: Path | None = None,
    intake: dict[str, Any] | None = None,
    manual_sources: list[dict[str, Any]] | None = None,
) -> None:
    config: dict[str, Any] = {
        "controller": CONTROLLER,
        "phone_region": "NO",
        "output_dir": str(output_dir.resolve()),
        "sources": sources,
        # The sandbox's subjects are invented: nobody to verify. Each delivery and execution
        # records `identity_not_required` in the ledger instead (README: Identity).
        "identity": {"required": False},
    }
    kinds = {src.get("kind"): name for name, src in reversed(sources.items())}
    if "mail" in kinds:  # codes and mailed exports go out from the privacy mailbox
        config["identity"].update(mail_source=kinds["mail"], sender=CONTROLLER["contact_email"])
    if "jira" in kinds:
        config["delivery"] = {"jira_source": kinds["jira"]}
    if intake is not None:
        config["intake"] = intake
    if masking_key_file is not None:
        config["masking_key"] = {"file": str(masking_key_file.resolve())}
    if manual_sources:
        config["manual_sources"] = manual_sources
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `dsr sandbox up`: points dsrflow at the sandbox. Settings: README.md\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def onprem_source(url: str) -> dict[str, dict[str, Any]]:
    """The config entry of an on-prem database under the sandbox mapping (for tests, tools)."""
    return {"onprem": {"kind": "sql", "url": url, "mapping": str(MAPPINGS / "onprem.yaml")}}
