"""The sandbox's Marketplace part: the vendor API emulator on a loopback port, seeded, and its
config entry (basic auth: the account's e-mail, the API token in an owner-only file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sandbox import marketplace_seed, seed_cache
from sandbox.emulators.faults import Faults
from sandbox.emulators.marketplace import MarketplaceEmulator, MarketplaceStore
from sandbox.emulators.server import EmulatorServer

if TYPE_CHECKING:  # sandbox.runtime imports this module for PARTS
    from sandbox.runtime import PartStarted, SandboxContext

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def marketplace_source(url: str, token_file: Path) -> dict[str, dict[str, object]]:
    """The config entry of a Marketplace emulator at ``url`` under the sandbox mapping."""
    return {
        "marketplace": {
            "kind": "marketplace",
            "url": url,
            "mapping": str(MAPPINGS / "marketplace.yaml"),
            "vendor_id": marketplace_seed.VENDOR_ID,
            "email": marketplace_seed.SANDBOX_EMAIL,
            "api_token": {"file": str(token_file)},
        }
    }


def start_marketplace(context: SandboxContext) -> PartStarted:
    """Generated data, or ``marketplace.json`` from the fixtures directory (absent: empty)."""
    from sandbox.runtime import PartStarted, write_secret

    store = MarketplaceStore(vendor_id=marketplace_seed.VENDOR_ID)
    fixture = context.fixtures / "marketplace.json" if context.fixtures else None
    if fixture and fixture.exists():
        counts = marketplace_seed.load_fixture(store, fixture)
    elif context.fixtures:
        counts = marketplace_seed.counts(store)
    else:
        store, counts, _ = seed_cache.seeded(
            context.directory, seed_cache.MARKETPLACE, marketplace_seed.generate
        )
    store.credentials = (marketplace_seed.SANDBOX_EMAIL, marketplace_seed.SANDBOX_TOKEN)
    token_file = write_secret(
        context.directory, "marketplace-api-token", marketplace_seed.SANDBOX_TOKEN
    )
    server = EmulatorServer(
        MarketplaceEmulator(store, Faults(context.faults)).app, name="marketplace"
    )
    url = server.start()
    return PartStarted(
        sources=marketplace_source(url, token_file),
        counts={f"marketplace.{k}": v for k, v in counts.items()},
        stop=server.stop,
    )
