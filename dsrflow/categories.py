"""Plain-language names of the data categories, for the subject's pages and letters.

Mappings name categories with dotted taxonomy codes (Fideslang's style, ``user.contact.email``):
precise for the officer, meaningless to the person reading their own data. The pages and letters
show the name from this table instead, in the request's language. A code not in the table gets
the name of its nearest listed parent (``user.contact.address.street`` before it is listed would
read "Contact details"), never an invented one; a code with no listed parent at all is shown as
it is. ``tests/test_export_readable.py`` checks that every category the shipped mappings use has
a name of its own.
"""

from __future__ import annotations

from dsrflow.language import LANGUAGES, Language

# code -> (bokmål, English)
NAMES: dict[str, tuple[str, str]] = {
    "user": ("Personopplysninger", "Personal data"),
    "user.name": ("Navn", "Name"),
    "user.contact": ("Kontaktopplysninger", "Contact details"),
    "user.contact.email": ("E-postadresse", "E-mail address"),
    "user.contact.phone": ("Telefonnummer", "Phone number"),
    "user.contact.phone_number": ("Telefonnummer", "Phone number"),
    "user.contact.address": ("Postadresse", "Postal address"),
    "user.contact.address.street": ("Gateadresse", "Street address"),
    "user.contact.address.city": ("Poststed", "City"),
    "user.contact.address.postal_code": ("Postnummer", "Postcode"),
    "user.contact.address.state": ("Fylke eller delstat", "County or state"),
    "user.contact.address.country": ("Land", "Country"),
    "user.employer": ("Arbeidsgiver", "Employer"),
    "user.job_title": ("Stilling eller rolle", "Job title or role"),
    "user.contract": ("Avtaler og lisenser", "Contracts and licences"),
    "user.financial": ("Fakturaer og betaling", "Invoices and payments"),
    "user.financial.bank_account": ("Bankkontonummer", "Bank account number"),
    "user.behavior": ("Bruk av produktene", "How you use the products"),
    "user.device": ("Enheter og installasjoner", "Devices and installations"),
    "user.unique_id": ("Kundenummer og andre ID-er", "Customer numbers and other ids"),
    "user.unique_id.pseudonymous": ("Pseudonyme ID-er", "Pseudonymous ids"),
    "user.account_id": ("Brukerkonto", "User account"),
    "user.consent": ("Samtykker", "Consents"),
    "user.communication": ("Korrespondanse", "Correspondence"),
    "user.communication.email": ("E-post", "E-mail"),
    "user.communication.email.subject": ("Emnefelt i e-post", "E-mail subject lines"),
    "user.communication.email.body": ("Tekst i e-post", "E-mail text"),
    "user.communication.email.attachment": ("Vedlegg til e-post", "E-mail attachments"),
    "user.support": ("Henvendelser til kundestøtte", "Support requests"),
    "user.support.content": ("Innhold i henvendelser", "Content of support requests"),
    "user.sensor": ("Sensordata", "Sensor data"),
    "system.operations": ("Drifts- og systemopplysninger", "Operational and system data"),
}


def has_own_name(code: str) -> bool:
    return code in NAMES


def category_name(code: str, language: Language) -> str:
    """The plain-language name of a category code, in ``language``: its own, else its nearest
    listed parent's, else the code itself."""
    index = LANGUAGES.index(language)
    parts = code.split(".")
    for end in range(len(parts), 0, -1):
        names = NAMES.get(".".join(parts[:end]))
        if names:
            return names[index]
    return code
