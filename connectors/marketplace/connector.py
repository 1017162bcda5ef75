"""Discovery in the Marketplace's licence and transaction reports. No erasure, rectification
or restriction: the vendor cannot change Atlassian's records (the mapping plans them KEEP, with
what the subject can do)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.base import Closing
from connectors.marketplace.client import MarketplaceClient
from connectors.marketplace.contacts import CUSTOMER, subjects_roles
from connectors.marketplace.mapping import MarketplaceMapping
from connectors.marketplace.settings import MarketplaceSource
from connectors.third_parties import SourceContext
from dsrflow.identifiers import email_spellings
from dsrflow.records import Record
from dsrflow.request import Subject

NATIVE_ID = {"licenses": "addonLicenseId", "transactions": "transactionId"}
LICENCE_FACTS = (
    "licenseId",
    "addonLicenseId",
    "hostLicenseId",
    "appEntitlementNumber",
    "addonKey",
    "addonName",
    "hosting",
    "licenseType",
    "tier",
    "status",
    "maintenanceStartDate",
    "maintenanceEndDate",
    "lastUpdated",
)


class MarketplaceConnector(Closing):
    def __init__(
        self,
        name: str,
        mapping: MarketplaceMapping,
        source: MarketplaceSource,
        client: MarketplaceClient | None = None,
        *,
        context: SourceContext | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.context = context or SourceContext()
        self.client = client or MarketplaceClient(name, source)

    def close(self) -> None:
        self.client.close()

    def discover(self, subject: Subject) -> Iterator[Record]:
        """Every licence and transaction naming one of the subject's addresses as a contact.
        The ``text`` search is asked for each spelling of each address (its domain in Unicode
        and IDNA, NFC and NFD); only a contact whose key equals the subject's is a match."""
        keys = set(subject.emails)
        for location in self.mapping.search:
            seen: set[str] = set()
            for address in subject.emails:
                for text in email_spellings(address, decomposed=True):
                    for item in self.client.report(location, text):
                        native = str(item.get(NATIVE_ID[location]) or "")
                        if not native or native in seen:
                            continue
                        record = self._record(location, native, item, keys)
                        if record is not None:
                            seen.add(native)
                            yield record

    def _record(
        self, location: str, native: str, item: dict[str, Any], keys: set[str]
    ) -> Record | None:
        own, others, matched = subjects_roles(location, item, keys, self.context.own)
        if not own:
            return None
        customer = item.get(CUSTOMER[location]) or {}
        fields: dict[str, Any] = dict(own)
        facts = item.get("purchaseDetails") if location == "transactions" else item
        fields["licence"] = {
            k: v
            for k, v in {**item, **(facts or {})}.items()
            if k in LICENCE_FACTS and v is not None
        }
        for name in ("company", "country", "region"):
            if customer.get(name) is not None:
                fields[name] = customer[name]
        if location == "transactions" and item.get("purchaseDetails"):
            fields["purchase"] = item["purchaseDetails"]
        partner = item.get("partnerDetails") or {}
        if partner.get("partnerName"):
            fields["partner"] = {
                k: partner[k] for k in ("partnerName", "partnerType") if k in partner
            }
        if others:
            # Art. 15(4): who else the record names is said by role, never with their data.
            fields["other_contacts"] = sorted(others)
        categories = {f: self.mapping.category_map().get(f, "system.operations") for f in fields}
        return Record(
            source=self.name,
            location=location,
            native_id={NATIVE_ID[location]: native},
            categories=categories,
            fields=fields,
            matched=tuple(sorted(f"email:{k}" for k in matched)),
            shared=bool(others),
            shared_with=tuple(f"{location}.{f}" for f in sorted(others)),
        )
