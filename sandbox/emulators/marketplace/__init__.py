"""The Atlassian Marketplace vendor API emulator (REST v2 reporting: licences, transactions)."""

from sandbox.emulators.marketplace.app import MarketplaceEmulator
from sandbox.emulators.marketplace.store import MarketplaceStore

__all__ = ["MarketplaceEmulator", "MarketplaceStore"]
