"""Seed data for the Marketplace emulator: generated licences and transactions, or a
``marketplace.json`` fixture.

Generated data (``generate``): licences of the vendor's apps for Faker companies, each with a
technical and a billing contact, some sold through a partner, and a transaction per paid
licence. The demo subject (``DEMO_SUBJECT``) is the technical contact on one licence (stored as
``DEMO_SUBJECT_STORED_AS``, as Atlassian keeps what the customer typed) and the billing contact
on a transaction of another company's licence (where someone else is its technical contact).
The look-alike addresses of the on-prem seed (``LOOK_ALIKES``) are contacts on licences and
transactions of their own: the API's ``text`` search returns them, discovery must not.

Fixture format (``marketplace.json``), in the API's shapes::

    {"licenses": [{"addonLicenseId": "…", "licenseId": "SEN-…", "addonKey": "…",
                   "contactDetails": {"company": "…", "technicalContact": {"email": "…"}}}],
     "transactions": [{"transactionId": "AT-…", "customerDetails": {…},
                       "purchaseDetails": {…}}]}
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox import FixtureError
from sandbox.emulators.marketplace.store import MarketplaceStore
from sandbox.onprem_seed import DEMO_SUBJECT, DEMO_SUBJECT_STORED_AS, LOOK_ALIKES

if TYPE_CHECKING:  # Faker is imported where data is generated, so that a start that
    # loads the kept seeds (sandbox/seed_cache.py) does not import it at all
    from faker import Faker

SANDBOX_EMAIL = "sandbox-admin@fjelltopp.example"
# The emulator's own credential, not a secret of any real account.
SANDBOX_TOKEN = "sandbox-marketplace-token"  # noqa: S105
VENDOR_ID = 1212990
DEMO_NAME = "Kari Nordmann"
APPS = (
    ("com.fjelltopp.timesheet", "Timesheet Pro"),
    ("com.fjelltopp.forms", "Secure Forms"),
    ("com.fjelltopp.release", "Release Radar"),
)
# The addonLicenseIds of the demo subject's records (tests name them).
DEMO_LICENSE = "1000001"
DEMO_TRANSACTION = "AT-90000001"


def contact(name: str, email: str, fake: Faker | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {"email": email, "name": name}
    if fake is not None:
        shape.update(
            phone=fake.phone_number(),
            address1=fake.street_address(),
            city=fake.city(),
            postcode=fake.postcode(),
        )
    return shape


def licence(
    number: int,
    company: str,
    technical: dict[str, Any],
    billing: dict[str, Any],
    rng: random.Random,
    partner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    key, name = APPS[number % len(APPS)]
    start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(600))
    shape: dict[str, Any] = {
        "addonLicenseId": str(number),
        "hostLicenseId": str(number + 5000000),
        "licenseId": f"SEN-L{number}",
        "addonKey": key,
        "addonName": name,
        "hosting": rng.choice(("Cloud", "Data Center")),
        "lastUpdated": (start + dt.timedelta(days=30)).isoformat(),
        "licenseType": rng.choice(("COMMERCIAL", "EVALUATION", "ACADEMIC")),
        "maintenanceStartDate": start.isoformat(),
        "maintenanceEndDate": (start + dt.timedelta(days=365)).isoformat(),
        "status": "active",
        "tier": rng.choice(("10 Users", "50 Users", "100 Users")),
        "contactDetails": {
            "company": company,
            "country": "Norway",
            "region": "EMEA",
            "technicalContact": technical,
            "billingContact": billing,
        },
    }
    if partner:
        shape["partnerDetails"] = partner
    return shape


def transaction(number: int, lic: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "transactionId": f"AT-{number}",
        "addonLicenseId": lic["addonLicenseId"],
        "licenseId": lic["licenseId"],
        "addonKey": lic["addonKey"],
        "addonName": lic["addonName"],
        "lastUpdated": lic["lastUpdated"],
        "customerDetails": lic["contactDetails"],
        "purchaseDetails": {
            "saleDate": lic["maintenanceStartDate"],
            "tier": lic["tier"],
            "licenseType": "COMMERCIAL",
            "hosting": lic["hosting"],
            "billingPeriod": "Annual",
            "purchasePrice": float(rng.choice((100, 500, 1200))),
            "vendorAmount": float(rng.choice((85, 425, 1020))),
            "saleType": "New",
            "maintenanceStartDate": lic["maintenanceStartDate"],
            "maintenanceEndDate": lic["maintenanceEndDate"],
        },
    }
    if "partnerDetails" in lic:
        shape["partnerDetails"] = lic["partnerDetails"]
    return shape


def generate(store: MarketplaceStore, seed: int = 15) -> dict[str, int]:
    rng = random.Random(seed)  # noqa: S311 - seed data, not secrets
    from faker import Faker  # here: a start with kept seeds never imports it

    fake = Faker("no_NO")
    fake.seed_instance(seed)
    store.vendor_id = VENDOR_ID
    store.credentials = (SANDBOX_EMAIL, SANDBOX_TOKEN)
    partner = {
        "partnerName": "Nordic Solution Partner AS",
        "partnerType": "Expert",
        "billingContact": contact("Per Partner", "billing@nordic-partner.example"),
    }
    number = int(DEMO_LICENSE)
    # The subject: technical contact of her company's licence (stored as typed there).
    own = licence(
        number,
        "Nordmann Konsult AS",
        contact(DEMO_NAME, DEMO_SUBJECT_STORED_AS, fake),
        contact("Ola Regnskap", "faktura@nordmann-konsult.example", fake),
        rng,
    )
    store.licenses.append(own)
    # Another company's licence whose billing contact she is: a transaction names her.
    number += 1
    other = licence(
        number,
        "Fjordlys Data AS",
        contact("Siri Teknisk", "siri@fjordlys.example", fake),
        contact(DEMO_NAME, DEMO_SUBJECT, fake),
        rng,
        partner,
    )
    other["contactDetails"]["billingContact"] = contact(
        "Fjordlys Innkjøp", "innkjop@fjordlys.example", fake
    )
    store.licenses.append(other)
    paid = transaction(int(DEMO_TRANSACTION.removeprefix("AT-")), other, rng)
    paid["customerDetails"] = {
        **other["contactDetails"],
        "billingContact": contact(DEMO_NAME, DEMO_SUBJECT, fake),
    }
    store.transactions.append(paid)
    # Look-alikes: contacts of their own licences and transactions.
    for i, address in enumerate(LOOK_ALIKES):
        number += 1
        lic = licence(
            number,
            fake.company(),
            contact(fake.name(), address, fake),
            contact(fake.name(), fake.company_email(), fake),
            rng,
        )
        store.licenses.append(lic)
        store.transactions.append(transaction(90000100 + i, lic, rng))
    # Everyone else.
    for i in range(40):
        number += 1
        lic = licence(
            number,
            fake.company(),
            contact(fake.name(), fake.company_email(), fake),
            contact(fake.name(), fake.company_email(), fake),
            rng,
            partner if i % 7 == 0 else None,
        )
        store.licenses.append(lic)
        if lic["licenseType"] == "COMMERCIAL":
            store.transactions.append(transaction(90000200 + i, lic, rng))
    return counts(store)


def load_fixture(store: MarketplaceStore, path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise FixtureError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k, []), list) for k in ("licenses", "transactions")
    ):
        raise FixtureError(f"{path}: expected {{'licenses': [...], 'transactions': [...]}}")
    store.vendor_id = VENDOR_ID
    store.licenses = list(data.get("licenses", []))
    store.transactions = list(data.get("transactions", []))
    return counts(store)


def counts(store: MarketplaceStore) -> dict[str, int]:
    return {"licenses": len(store.licenses), "transactions": len(store.transactions)}
