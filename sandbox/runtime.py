"""Bringing the sandbox up: its databases (and, as the SaaS issues land, its emulators), seeded,
with a dsrflow config file that points at them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from sandbox import onprem_seed

REPO_ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = REPO_ROOT / "mappings"

CONTROLLER: dict[str, Any] = {
    "name": "Fjelltopp Apps AS",
    "address": "Kongens gate 1, 7011 Trondheim, Norway",
    "contact_email": "privacy@fjelltopp.example",
    "dpo_email": "dpo@fjelltopp.example",
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


@dataclass(frozen=True)
class Sandbox:
    directory: Path
    config_path: Path
    onprem_url: str
    counts: dict[str, int]


def prepare(directory: Path, fixtures: Path | None = None, config_path: Path | None = None
            ) -> Sandbox:
    """Create a fresh sandbox in ``directory`` and write its config; nothing else is touched."""
    if fixtures and not fixtures.is_dir():
        raise ValueError(f"fixtures directory {fixtures} does not exist")
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "onprem.db"
    database.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    engine = sa.create_engine(url)
    try:
        onprem_seed.create_schema(engine)
        onprem_fixture = fixtures / "onprem.json" if fixtures else None
        if onprem_fixture and onprem_fixture.exists():
            counts = onprem_seed.load_fixture(engine, onprem_fixture)
        elif fixtures:
            counts = {}  # a fixtures directory without onprem.json: an empty database
        else:
            counts = onprem_seed.generate(engine)
    finally:
        engine.dispose()
    config_path = config_path or directory / "dsrflow.yaml"
    write_config(config_path, url, directory / "exports")
    return Sandbox(directory=directory, config_path=config_path, onprem_url=url, counts=counts)


def write_config(path: Path, onprem_url: str, output_dir: Path) -> None:
    config = {
        "controller": CONTROLLER,
        "phone_region": "NO",
        "output_dir": str(output_dir.resolve()),
        "sources": {
            "onprem": {
                "kind": "sql",
                "url": onprem_url,
                "mapping": str(MAPPINGS / "onprem.yaml"),
            }
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `dsr sandbox up`: points dsrflow at the sandbox. Settings: README.md\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
