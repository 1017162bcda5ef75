"""Who a licence or transaction names, and which of them is the subject (by key).

The Marketplace reports (REST v2, "Reporting": Get licenses / Get transactions) carry the
customer's contacts under ``contactDetails`` (licences) or ``customerDetails`` (transactions),
each with ``technicalContact`` and ``billingContact``, and the reseller's under
``partnerDetails.billingContact``. A contact is the subject's when its ``email``'s key equals one
of the subject's (dsrflow/identifiers.py): the API's ``text`` search is a substring match and
returns look-alikes (``akari.nordmann@…`` holds ``kari.nordmann@…``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.third_parties import OwnAddresses
from dsrflow.identifiers import email_key

CUSTOMER = {"licenses": "contactDetails", "transactions": "customerDetails"}
# record field -> (the block, the contact in it)
ROLES = {
    "technical_contact": ("customer", "technicalContact"),
    "billing_contact": ("customer", "billingContact"),
    "partner_billing_contact": ("partnerDetails", "billingContact"),
}


def contacts(location: str, item: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(record field, contact) for every contact the item names."""
    for field, (block, role) in ROLES.items():
        holder = item.get(CUSTOMER[location] if block == "customer" else block) or {}
        contact = holder.get(role) if isinstance(holder, dict) else None
        if isinstance(contact, dict) and contact:
            yield field, contact


def subjects_roles(
    location: str, item: dict[str, Any], keys: set[str], own_addresses: OwnAddresses | None = None
) -> tuple[dict[str, dict[str, Any]], list[str], set[str]]:
    """The subject's contacts by field, the fields naming someone else, and the keys matched.
    A contact without an address is someone else's: never assumed to be the subject. A
    contact that is the controller's own (``connectors.third_parties``) is neither."""
    own: dict[str, dict[str, Any]] = {}
    others: list[str] = []
    matched: set[str] = set()
    for field, contact in contacts(location, item):
        key = email_key(contact.get("email"))
        if key is not None and key in keys:
            own[field] = contact
            matched.add(key)
        elif key is None or own_addresses is None or not own_addresses.holds(key):
            others.append(field)
    return own, others, matched
