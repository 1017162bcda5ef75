"""The sandbox's mail part: the Graph emulator, seeded, on a loopback port.

Generated data (``sandbox.mail_seed.generate``, kept between starts by
``sandbox.seed_cache``), the large benchmark profile, or ``mail.json``
from the fixtures directory. A fixtures directory without ``mail.json`` has no mail: the part then
starts nothing and adds no source to the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sandbox import mail_seed, seed_cache
from sandbox.emulators.faults import Faults
from sandbox.emulators.graph import GraphStore, create_app
from sandbox.emulators.server import EmulatorServer

if TYPE_CHECKING:
    from sandbox.runtime import PartStarted, SandboxContext

# Not imported from sandbox.runtime, which imports this module for its PARTS.
MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"

SOURCE_NAME = "mail"


def mail_source(base_url: str) -> dict[str, dict[str, str]]:
    """The config entry of a Graph emulator at ``base_url`` (``http://127.0.0.1:PORT``)."""
    return {
        SOURCE_NAME: {
            "kind": "mail",
            "mapping": str(MAPPINGS / "mail.yaml"),
            "base_url": f"{base_url}/v1.0",
        }
    }


def start_mail(context: SandboxContext) -> PartStarted:
    from sandbox.runtime import PartStarted

    store = GraphStore(tenant_domain=mail_seed.TENANT)
    fixture = context.fixtures / "mail.json" if context.fixtures else None
    if fixture is not None:
        if not fixture.exists():
            return PartStarted(sources={}, counts={})
        per_mailbox = mail_seed.load_fixture(store, fixture)
        counts = {"mailboxes": len(per_mailbox), "messages": sum(per_mailbox.values())}
    elif context.profile == "large":
        counts = mail_seed.generate_large(store, progress=context.progress)
    else:
        store, counts, _ = seed_cache.seeded(context.directory, seed_cache.MAIL, mail_seed.generate)
    server = EmulatorServer(create_app(store, Faults(context.faults)), name="graph")
    url = server.start()
    context.progress(f"mail: Graph emulator on {url}")
    return PartStarted(
        sources=mail_source(url),
        counts={f"mail.{k}": v for k, v in counts.items()},
        stop=server.stop,
    )
