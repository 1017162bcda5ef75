"""The sandbox's Google Analytics part: the Google emulator (its User Deletion API route) on a
loopback port, a GA4 property whose Editor is a throwaway service account, and the config entry
of the ``analytics`` source under mappings/analytics.yaml.

There is nothing to seed: the API cannot list or return what a property holds, only take
deletion requests. ``GET /_emulator/analytics`` shows the requests filed; ``POST
/_emulator/analytics {"daily_quota": 0}`` makes the next one meet the exhausted daily quota.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.drive_part import SERVICE_ACCOUNT, write_service_account
from sandbox.emulators.faults import Faults
from sandbox.emulators.google import GoogleState, create_app
from sandbox.emulators.server import EmulatorServer

if TYPE_CHECKING:  # sandbox.runtime imports this module for PARTS
    from sandbox.runtime import PartStarted, SandboxContext

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
PROPERTY_ID = "412345678"  # a GA4 property id: digits only


def analytics_source(url: str, key_file: Path) -> dict[str, dict[str, Any]]:
    """The config entry of the Analytics property at the emulator at ``url``."""
    return {
        "analytics": {
            "kind": "analytics",
            "mapping": str(MAPPINGS / "analytics.yaml"),
            "property_id": PROPERTY_ID,
            "credentials_file": str(key_file),
            "api_url": url,
        }
    }


def start_analytics(context: SandboxContext) -> PartStarted:
    """An emulator of its own (the Drive part's holds Drive's state), the property's Editor
    role given to the service account, as the GA4 admin would."""
    from sandbox.runtime import PartStarted

    state = GoogleState()
    server = EmulatorServer(create_app(state, Faults(context.faults)), name="analytics")
    url = server.start()
    key = write_service_account(state, url, context.directory / "analytics-service-account.json")
    state.analytics.editors[PROPERTY_ID] = {SERVICE_ACCOUNT}
    return PartStarted(
        sources=analytics_source(url, key), counts={"analytics.properties": 1}, stop=server.stop
    )
