"""The Marketplace emulator's state: one vendor's licences and transactions as the reporting
API returns them, and the account allowed to read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MarketplaceStore:
    vendor_id: int = 1212990
    licenses: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    # (e-mail, API token) of the Atlassian account that is the vendor's contact; None: any.
    credentials: tuple[str, str] | None = None

    def report(self, name: str) -> list[dict[str, Any]]:
        return self.licenses if name == "licenses" else self.transactions
