"""Whether sampled values look like personal identifiers, for the coverage survey: counts
only, the values themselves are dropped as soon as they are looked at.

An e-mail-like value is one with an address in it (``dsrflow.identifiers.addresses_in``, the
same words discovery reads addresses from); a phone-like value is one made of a phone number's
characters only that ``phonenumbers`` takes as a valid number (``phone_key``). Dates written
with digits and dashes are not numbers: ``2024-01-02`` is not read as a phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from dsrflow.identifiers import addresses_in, email_key, phone_key

# Digits, spaces and the separators people write numbers with; at least 7 digits.
_PHONE_TEXT = re.compile(r"^\+?[\d\s().\-/]{7,24}$")
_DATE_TEXT = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}")
# A phone column is called one when at least this share of its non-empty samples are numbers
# (a column of ids or amounts holds a valid-looking number now and then).
PHONE_SHARE = 0.5


def is_email_like(value: object) -> bool:
    if not isinstance(value, str) or "@" not in value:
        return False
    return any(email_key(text) for _, text in addresses_in(value))


def is_phone_like(value: object, region: str = "NO") -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    if not _PHONE_TEXT.match(text) or _DATE_TEXT.search(text):
        return False
    if sum(c.isdigit() for c in text) < 7:
        return False
    return phone_key(text, region) is not None


@dataclass
class Tally:
    """Counts over one column's (or one place's) sampled values."""

    sampled: int = 0
    emails: int = 0
    phones: int = 0

    @classmethod
    def of(cls, values: Iterable[object], region: str = "NO") -> Tally:
        tally = cls()
        for value in values:
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            tally.sampled += 1
            if is_email_like(value):
                tally.emails += 1
            elif is_phone_like(value, region):
                tally.phones += 1
        return tally

    @property
    def holds_emails(self) -> bool:
        return self.emails > 0

    @property
    def holds_phones(self) -> bool:
        return self.sampled > 0 and self.phones >= PHONE_SHARE * self.sampled

    @property
    def personal(self) -> bool:
        return self.holds_emails or self.holds_phones

    def kind(self) -> str:
        """``email`` or ``phone``: what a mapping's identity of this column would say."""
        return "email" if self.emails >= self.phones else "phone"

    def describe(self) -> str:
        parts = []
        if self.emails:
            parts.append(f"{self.emails} e-mail-like")
        if self.phones:
            parts.append(f"{self.phones} phone-like")
        return f"{' and '.join(parts) or 'no identifier-like'} of {self.sampled} sampled value(s)"
