"""Validation and the one comparison key of a data subject's identifiers.

Every connector compares identifiers by the keys made here and by nothing else; server-side
searches (KQL, ``fullText contains``, JQL ``text ~``, SQL ``lower(col) IN``) are pre-filters
that may be wider than the key, never narrower. The rule:

E-mail address (``email_key``), as found in data:

1. Surrounding whitespace is dropped (spaces, tabs, line breaks, NBSP, thin spaces, BOM).
2. The address splits at its last ``@``; it must then be a syntactically valid address.
3. Look-alikes get a key of their own, their exact text, which equals no other address: a
   local part or domain holding a compatibility character (one that NFKC changes: full-width
   letters, U+017F LONG S, ligatures) or a singleton (U+212A KELVIN SIGN, U+2126 OHM SIGN,
   U+212B ANGSTROM SIGN, which NFC silently turns into K, Ω, Å), an invisible format or
   control character, a domain character that IDNA maps to another (U+3002 IDEOGRAPHIC FULL
   STOP), or a local part whose letters come from more than one script (U+0430 CYRILLIC
   SMALL LETTER A among Latin letters; Latin with Han, Hiragana, Katakana, Bopomofo or Hangul
   is one writing system, as UTS #39 "highly restrictive" allows). Such an address is still
   an address (another person in a row, masked in an export), but never the subject.
4. Otherwise: the local part in Unicode NFC, lower-cased with Unicode's lower-case mapping
   (``str.lower``; not full case folding, which would make ``straße`` and ``strasse`` one
   address); the domain by IDNA (UTS #46) in its lower-case ASCII form, so ``bücher.example``,
   ``BÜCHER.EXAMPLE`` and ``xn--bcher-kva.example`` are one domain.

The subject's own addresses (``normalise_email``) pass the same rule strictly: a control
character anywhere, or a look-alike, is refused with a message naming the character.

Phone number (``phone_key``): surrounding whitespace dropped; the separators people write
(spaces of every width, NBSP, ``-``, en and em dashes, ``/``, ``.``, parentheses) ignored;
parsed by ``phonenumbers`` with the configured region for numbers without a country code;
the key is E.164. Other kinds (e.g. ``jira_account_id``) are compared as exact trimmed text.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from idna import IDNAError, uts46_remap
from pydantic import BaseModel, ConfigDict, StringConstraints

from dsrflow.errors import DsrflowError


class IdentifierError(DsrflowError, ValueError):
    """An identifier that cannot be used: says which one and why."""


class IdentifierKind(StrEnum):
    """The kinds normalised here; others (e.g. ``jira_account_id``) are compared as exact text."""

    EMAIL = "email"
    PHONE = "phone"


IdentifierKindName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class Identifier(BaseModel):
    """One normalised identifier of a subject, e.g. ``email:al@example.com``."""

    model_config = ConfigDict(frozen=True)

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


_CONTROL = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Invisible characters that str.strip() keeps but that stick to values pasted from documents.
_INVISIBLE_EDGES = "\u200b\u200c\u200d\u2060\ufeff"

# An address as written in free text: a run of characters that may be part of an unquoted one
# (all but whitespace and RFC 5322's specials) on both sides of the @, so "akari@x.com",
# "åse@x.com" and "kari@x.com.evil.org" are read whole, never as "kari@x.com" or "se@x.com".
# Trailing sentence punctuation is cut by clean_in_text.
ADDRESS_IN_TEXT = re.compile(r"[^\s<>()\[\],;:\"@\\]+@[^\s<>()\[\],;:\"@\\]+")
_TEXT_TRAILING = ".,;:!?)'\"-"

# Letters of these scripts together are one writing system (UTS #39, highly restrictive).
_ONE_WRITING_SYSTEM = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
# The script of a letter is the first word of its Unicode name, with these exceptions.
_SCRIPT_OF_NAME = {"IDEOGRAPHIC": "CJK", "ARABIC-INDIC": "ARABIC", "KATAKANA-HIRAGANA": None}


def _reject_control_characters(text: str, what: str) -> None:
    for char in text:
        if unicodedata.category(char) in _CONTROL:
            raise IdentifierError(
                f"{what} {text!r} contains the control character U+{ord(char):04X}"
            )


def _trimmed(text: str) -> str:
    """Without the whitespace (any Unicode space, tab, line break) and invisible characters
    around it."""
    return text.strip().strip(_INVISIBLE_EDGES).strip()


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _described(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'an unnamed character')}"


def _is_compatibility(char: str) -> bool:
    """A compatibility character (NFKC changes it) or a singleton (NFC replaces it: KELVIN
    SIGN is K, OHM SIGN is Ω). Precomposed letters (å: a + ring) are neither."""
    decomposition = unicodedata.decomposition(char)
    return decomposition.startswith("<") or (bool(decomposition) and " " not in decomposition)


def _script(char: str) -> str | None:
    """The script of a letter or digit (LATIN, CYRILLIC, GREEK, CJK, ...); None for what
    belongs to every script (ASCII digits, punctuation, combining marks)."""
    if char.isascii():
        return "LATIN" if char.isalpha() else None
    if unicodedata.category(char)[0] not in "LN":
        return None
    words = unicodedata.name(char, "").split()
    if words[:1] == ["EXTENDED"]:
        words = words[1:]
    first = words[0] if words else None
    return _SCRIPT_OF_NAME.get(first, first) if first else None


def _mixed_scripts(local: str) -> tuple[str, ...] | None:
    scripts = {s for c in local if (s := _script(c))}
    if len(scripts) < 2 or any(scripts <= system for system in _ONE_WRITING_SYSTEM):
        return None
    return tuple(sorted(scripts))


def lookalike_reason(address: str) -> str | None:
    """Why ``address`` (trimmed) is a look-alike that never equals another address, or None.

    See the module's docstring for the rule."""
    local, _, domain = address.rpartition("@")
    for part, where in ((local, "local part"), (domain, "domain")):
        for char in part:
            if unicodedata.category(char) in _CONTROL:
                return f"its {where} holds the invisible character {_described(char)}"
            if _is_compatibility(char):
                plain = unicodedata.normalize("NFKC", char)
                return f"its {where} holds {_described(char)}, a look-alike of {plain!r}"
    folded = _nfc(domain).lower()
    try:
        mapped = uts46_remap(folded, std3_rules=False, transitional=False)
    except IDNAError:
        mapped = folded  # not a domain at all: validation says so
    if mapped != folded:
        char = next((a for a, b in zip(folded, mapped, strict=False) if a != b), folded[-1])
        return f"its domain holds {_described(char)}, which IDNA reads as another character"
    scripts = _mixed_scripts(_nfc(local))
    if scripts:
        return f"its local part mixes letters of the scripts {', '.join(scripts)}"
    return None


def email_key(raw: object) -> str | None:
    """The comparison key of an e-mail address as found in data; None if it is not one.

    Two addresses are the same when their keys are equal, in every connector. Stored values
    may be sloppy (surrounding whitespace, NFD, capitals, Unicode or IDNA domain); a look-alike
    keeps its own text as its key, so it equals only itself (see the module's docstring).
    """
    if not isinstance(raw, str) or "@" not in raw:
        return None
    text = _trimmed(raw)
    local, _, domain = text.rpartition("@")
    if not local or not domain:
        return None
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    if lookalike_reason(text):
        return text
    return f"{_nfc(_nfc(local).lower())}@{checked.ascii_domain.lower()}"


def normalise_email(raw: str) -> str:
    """The key of an address the subject gave (``email_key``), checked strictly.

    Raises IdentifierError for anything that is not a syntactically valid address, holds a
    control character anywhere, or is a look-alike (which could never be matched). Characters
    that mean something to a query language (``'``, ``+``, ``%``) are valid and kept.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise IdentifierError("an e-mail address is empty")
    _reject_control_characters(raw, "the e-mail address")
    text = raw.strip()
    try:
        validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise IdentifierError(f"{text!r} is not a valid e-mail address: {exc}") from exc
    reason = lookalike_reason(text)
    if reason:
        raise IdentifierError(
            f"the e-mail address {text!r} is not accepted: {reason}; an address with such "
            "characters would never match the subject's records: type it with plain letters"
        )
    key = email_key(text)
    assert key is not None  # valid and not a look-alike
    return key


# The older name of the key function, kept for callers.
try_normalise_email = email_key


def search_form(text: str) -> str:
    """``text`` in NFC and lower-cased: for cheap substring pre-tests that are never narrower
    than the key (every key's local part is in this form; a look-alike may pass and is then
    refused by the key)."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.lower()


def clean_in_text(found: str) -> str:
    """An address cut out of text (``ADDRESS_IN_TEXT``) without the sentence punctuation
    glued to its end: "al@example.com." -> "al@example.com" (the start is kept: "-al@" is
    another address than "al@")."""
    return found.rstrip(_TEXT_TRAILING)


def addresses_in(text: str | None) -> Iterator[tuple[re.Match[str], str]]:
    """(match, cleaned text) of every address-like word in ``text``."""
    for match in ADDRESS_IN_TEXT.finditer(text or ""):
        yield match, clean_in_text(match.group())


def email_spellings(normalised: str, *, decomposed: bool = False) -> list[str]:
    """The spellings one address may be written in, for a full-text pre-filter.

    A source may keep the domain in Unicode (``bücher.example``) or in IDNA
    (``xn--bcher-kva.example``); both are the same address. ``decomposed``: also each in NFD
    (``a`` + combining ring for ``å``), for word indexes that do not normalise.
    """
    local, _, domain = normalised.rpartition("@")
    spellings = [normalised]
    try:
        unicode_domain = domain.encode("ascii").decode("idna")
    except UnicodeError:
        unicode_domain = domain
    if unicode_domain != domain:
        spellings.append(f"{local}@{unicode_domain}")
    if decomposed:
        spellings += [unicodedata.normalize("NFD", s) for s in spellings]
    return list(dict.fromkeys(spellings))


# Up to this many non-ASCII letters get every mix of capitals in ``lowered_spellings``.
CASE_MIXES_UP_TO = 4


def lowered_spellings(key: str, *, lower_folds_unicode: bool) -> list[str]:
    """Every text a database's ``lower(column)`` can give for a stored address whose key is
    ``key`` (without surrounding whitespace): both domain spellings, NFC and NFD, and, where
    ``lower()`` folds ASCII only (SQLite; PostgreSQL in the C locale), the non-ASCII letters
    in capitals too (every mix for up to CASE_MIXES_UP_TO of them; beyond that all small or
    all capital). Exact values, so an index on ``lower(column)`` stays a lookup.
    """
    found: dict[str, None] = {}
    for spelling in email_spellings(key):
        if lower_folds_unicode:
            # A per-character lower() (libc, ICU) has no final sigma (U+03C2) and reads İ as i.
            variants = [
                spelling,
                spelling.replace("\u03c2", "\u03c3"),
                spelling.replace("i\u0307", "i"),
            ]
        else:
            variants = _case_mixes(spelling)
        for variant in variants:
            found.setdefault(variant)
            found.setdefault(unicodedata.normalize("NFD", variant))
    return list(found)


def _case_mixes(spelling: str) -> list[str]:
    cased = [i for i, c in enumerate(spelling) if not c.isascii() and len(c.upper()) == 1]
    cased = [i for i in cased if spelling[i].upper() != spelling[i]]
    if len(cased) > CASE_MIXES_UP_TO:
        upper = list(spelling)
        for i in cased:
            upper[i] = spelling[i].upper()
        return [spelling, "".join(upper)]
    mixes = []
    for choice in itertools.product((False, True), repeat=len(cased)):
        chars = list(spelling)
        for i, up in zip(cased, choice, strict=True):
            if up:
                chars[i] = spelling[i].upper()
        mixes.append("".join(chars))
    return mixes


# What people write between the digits of a phone number: ignored in every comparison.
PHONE_SEPARATORS = (
    " ",
    "\t",
    "-",
    ".",
    "/",
    "(",
    ")",
    "\u00a0",  # no-break space
    "\u2007",  # figure space
    "\u2009",  # thin space
    "\u200a",  # hair space
    "\u202f",  # narrow no-break space
    "\u2010",  # hyphen
    "\u2011",  # non-breaking hyphen
    "\u2012",  # figure dash
    "\u2013",  # en dash
    "\u2014",  # em dash
    "\u2212",  # minus sign
)
_PHONE_SPACES = str.maketrans({c: " " for c in PHONE_SEPARATORS if c != "-"} | {"-": "-"})


def _e164(text: str, default_region: str) -> str:
    """E.164 of a trimmed phone number text; IdentifierError if it is not a valid number."""
    try:
        parsed = phonenumbers.parse(text.translate(_PHONE_SPACES), default_region)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierError(f"{text!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise IdentifierError(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(raw: str, default_region: str = "NO") -> str:
    """E.164 form of a phone number the subject gave; numbers without a country code use
    ``default_region``. A control character anywhere (a tab too) is refused."""
    if not isinstance(raw, str) or not raw.strip():
        raise IdentifierError("a phone number is empty")
    _reject_control_characters(raw, "the phone number")
    return _e164(raw.strip(), default_region)


def phone_key(raw: object, default_region: str = "NO") -> str | None:
    """The comparison key (E.164) of a phone number as found in data; None if it is not one.

    Surrounding whitespace (tabs too) is dropped and every separator in PHONE_SEPARATORS is
    read as a space."""
    if not isinstance(raw, str):
        return None
    text = _trimmed(raw)
    if not text or any(unicodedata.category(c) in _CONTROL for c in text if c != "\t"):
        return None
    try:
        return _e164(text, default_region)
    except IdentifierError:
        return None


# The older name of the key function, kept for callers.
try_normalise_phone = phone_key


def phones_in(text: str | None, default_region: str = "NO") -> Iterator[tuple[int, int, str]]:
    """(start, end, E.164) of every phone number written in free text, as ``phonenumbers``
    finds them (its matcher, valid numbers only: it passes over dates, times and reference
    numbers that merely hold digits); the key is the one ``phone_key`` gives."""
    if not text or sum(c.isdigit() for c in text) < 5:
        return
    for match in phonenumbers.PhoneNumberMatcher(text, default_region):
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        yield match.start, match.end, e164


def phone_spellings(e164: str) -> list[str]:
    """One number as it may be stored once separators are stripped: +4791234567, 004791234567,
    91234567. Compare against a column with PHONE_SEPARATORS removed."""
    parsed = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(parsed)
    return list(dict.fromkeys([e164, f"00{e164[1:]}", national]))


ANALYTICS_CLIENT_ID = "analytics_client_id"
ANALYTICS_USER_ID = "analytics_user_id"
# A Google Analytics client id as gtag.js writes it into the _ga cookie after its "GA1.1."
# prefix: a random number, a dot, the first visit in Unix seconds ("1197596843.1673515099").
_ANALYTICS_CLIENT_ID = re.compile(r"^\d{1,20}\.\d{1,20}$")
_ANALYTICS_COOKIE = re.compile(r"^GA\d\.\d+\.")
# A user id the site sets (GA4 user_id): at most 256 characters, none blank or control.
_ANALYTICS_USER_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")


def normalise_analytics_client_id(raw: str) -> str:
    """A client id, also as the whole _ga cookie value (its ``GA1.1.`` prefix dropped);
    compared as exact text."""
    value = _ANALYTICS_COOKIE.sub("", raw.strip(), count=1)
    if not _ANALYTICS_CLIENT_ID.match(value):
        raise IdentifierError(
            "a Google Analytics client id is two numbers joined by a dot "
            "(e.g. 1197596843.1673515099, or the _ga cookie GA1.1.1197596843.1673515099)"
        )
    return value


def normalise_analytics_user_id(raw: str) -> str:
    """A user id as the site sent it to Analytics, trimmed; exact (case-sensitive)."""
    value = raw.strip()
    if not _ANALYTICS_USER_ID.match(value):
        raise IdentifierError("a Google Analytics user id is 1 to 256 characters without spaces")
    return value


def normalise_found(kind: str, raw: object, phone_region: str = "NO") -> str | None:
    """The comparison key of a value read from a source, to compare with the subject's."""
    if raw is None:
        return None
    if kind == IdentifierKind.EMAIL:
        return email_key(raw)
    if kind == IdentifierKind.PHONE:
        return phone_key(raw, phone_region)
    if kind in (ANALYTICS_CLIENT_ID, ANALYTICS_USER_ID):
        # The officer's rules (a stored _ga cookie loses its GA1.1. prefix); a value that is no
        # such id is not one of the subject's.
        normalise = (
            normalise_analytics_client_id
            if kind == ANALYTICS_CLIENT_ID
            else normalise_analytics_user_id
        )
        try:
            return normalise(str(raw))
        except IdentifierError:
            return None
    text = str(raw).strip()
    return text or None


def spellings(identifier: Identifier) -> list[str]:
    """How an identifier may be stored, for an exact pre-filter (never a fuzzy one)."""
    if identifier.kind == IdentifierKind.EMAIL:
        return email_spellings(identifier.value)
    if identifier.kind == IdentifierKind.PHONE:
        return phone_spellings(identifier.value)
    return [identifier.value]


def mask_email(normalised: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``: for logs and artifacts."""
    local, _, domain = normalised.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_identifier(identifier: Identifier) -> str:
    if identifier.kind == IdentifierKind.EMAIL:
        return f"email:{mask_email(identifier.value)}"
    return f"{identifier.kind}:***{identifier.value[-2:]}"
