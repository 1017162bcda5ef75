"""The sandbox's Jira part: the emulator on a loopback port, seeded, and its config entry.

The written config authenticates like Jira Cloud (e-mail + API token); the token is written to
an owner-only file in the sandbox directory and the config refers to it (``{file: ...}``), so
any process that can read the config's files can use it, and no token sits in the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sandbox import jira_seed, seed_cache
from sandbox.emulators.faults import Faults
from sandbox.emulators.jira import JiraEmulator, JiraStore
from sandbox.emulators.server import EmulatorServer

if TYPE_CHECKING:  # sandbox.runtime imports this module for PARTS
    from sandbox.runtime import PartStarted, SandboxContext

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def jira_source(
    url: str, token_file: Path, facts_file: Path | None = None
) -> dict[str, dict[str, object]]:
    """The config entry of a Jira emulator at ``url`` under the sandbox mapping; with
    ``facts_file``, the site's own facts are kept there between commands."""
    entry: dict[str, object] = {
        "kind": "jira",
        "url": url,
        "mapping": str(MAPPINGS / "jira.yaml"),
        "deployment": "cloud",
        "email": jira_seed.SANDBOX_EMAIL,
        "api_token": {"file": str(token_file)},
    }
    if facts_file is not None:
        entry["site_facts_file"] = str(facts_file)
    return {"jira": entry}


def start_jira(context: SandboxContext) -> PartStarted:
    """Generated data, the large profile, or ``jira.json`` from the fixtures directory."""
    from sandbox.runtime import PartStarted, write_secret

    store = JiraStore()
    fixture = context.fixtures / "jira.json" if context.fixtures else None
    if fixture and fixture.exists():
        counts = jira_seed.load_fixture(store, fixture)
        store.credentials = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    elif context.fixtures:
        counts = jira_seed.counts(store)  # a fixtures directory without jira.json: empty
        store.credentials = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    elif context.profile == "large":
        context.progress("jira: generating 50,000 requests")
        counts = jira_seed.generate_large(store)
    else:
        store, counts, _ = seed_cache.seeded(context.directory, seed_cache.JIRA, jira_seed.generate)
    token_file = write_secret(context.directory, "jira-api-token", jira_seed.SANDBOX_TOKEN)
    server = EmulatorServer(JiraEmulator(store, Faults(context.faults)).app, name="jira")
    url = server.start()
    return PartStarted(
        sources=jira_source(url, token_file, context.directory / "state" / "jira-site-facts.json"),
        counts={f"jira.{k}": v for k, v in counts.items()},
        stop=server.stop,
    )
