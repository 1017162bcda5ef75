"""Art. 15(4): other people in a subject's records, by one rule for every kind of source.

Every connector asks this module, and nothing else, whose an address or phone number is:

- the **subject's** (one of the identifiers of the request, by their keys): kept in clear;
- the **controller's own** (``Controller.own_address_keys`` and ``own_domains`` in the config:
  a support mailbox, the information officer): kept in clear, and never makes a record shared,
  since the controller is not a third person to the subject's own data;
- **someone else's**: masked in what the subject is given (``b***@example.com``, ``***67``),
  and it makes the record ``shared`` (so erasure never deletes it whole).

Structured fields (a mail's participants, a sheet's identity columns) are judged whole; free
text (notes, mail bodies, ticket descriptions and comments, text columns) is scanned for
address-like and phone-like words with the keys of ``dsrflow.identifiers`` (``addresses_in``,
``phones_in``), so ``kari@example.com.evil.org`` is someone else's, never the subject's.

The controller's addresses come with ``SourceContext``: what every connector is opened with
beside its settings and mapping (``connectors.registry.open_connector``), built from the
config once (``SourceContext.of``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from dsrflow.identifiers import (
    IdentifierKind,
    addresses_in,
    email_key,
    lookalike_reason,
    mask_email,
    phone_key,
    phones_in,
)

if TYPE_CHECKING:
    from dsrflow.config import Config, Controller
    from dsrflow.request import Subject


@dataclass(frozen=True)
class OwnAddresses:
    """The controller's own addresses (keys) and domains (IDNA lower-case), as the config
    names them; the same test as ``Controller.is_own_address``."""

    keys: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, controller: Controller) -> OwnAddresses:
        return cls(controller.own_address_keys(), frozenset(controller.own_domains))

    def holds(self, key: str) -> bool:
        """Whether the address with this key is the controller's; a look-alike never is."""
        if lookalike_reason(key):
            return False
        return key in self.keys or key.rpartition("@")[2] in self.domains


@dataclass(frozen=True)
class SourceContext:
    """What every connector is opened with beside its settings and mapping: how to read phone
    numbers written without a country code, which addresses are the controller's own, and the
    subject's addresses and numbers beyond the ones a search is given (a later discovery round
    searches by new identifiers only: the earlier ones are still the subject's, never a third
    person's)."""

    phone_region: str = "NO"
    own: OwnAddresses = field(default_factory=OwnAddresses)
    subject_emails: frozenset[str] = frozenset()
    subject_phones: frozenset[str] = frozenset()

    @classmethod
    def of(cls, config: Config) -> SourceContext:
        return cls(phone_region=config.phone_region, own=OwnAddresses.of(config.controller))

    def knowing(self, subject: Subject) -> SourceContext:
        """This context with all of ``subject``'s addresses and numbers known as theirs."""
        return replace(
            self, subject_emails=frozenset(subject.emails), subject_phones=frozenset(subject.phones)
        )

    def third_parties(
        self, subject: Subject, *, comparable: Callable[[str], str] | None = None
    ) -> ThirdParties:
        return ThirdParties.of(subject.emails, subject.phones, self, comparable=comparable)


class Whose(StrEnum):
    SUBJECT = "subject"
    CONTROLLER = "controller"
    OTHER = "other"


def mask_phone(e164: str) -> str:
    """``+4791234567`` -> ``***67``: enough to tell two numbers apart, not to call one."""
    return f"***{e164[-2:]}"


@dataclass(frozen=True)
class _Found:
    start: int
    end: int
    identifier: str  # kind:key
    whose: Whose
    masked: str


@dataclass(frozen=True)
class ThirdParties:
    """The rule for one subject in one source.

    ``comparable``: how the source compares the subject's addresses (mail may treat
    ``al+tag@`` as ``al@``); applied to both sides."""

    emails: frozenset[str]
    phones: frozenset[str]
    context: SourceContext = field(default_factory=SourceContext)
    comparable: Callable[[str], str] | None = None

    @classmethod
    def of(
        cls,
        emails: Iterable[str],
        phones: Iterable[str] = (),
        context: SourceContext | None = None,
        *,
        comparable: Callable[[str], str] | None = None,
    ) -> ThirdParties:
        same = comparable or (lambda key: key)
        context = context or SourceContext()
        return cls(
            emails=frozenset(same(e) for e in [*emails, *context.subject_emails]),
            phones=frozenset(phones) | context.subject_phones,
            context=context,
            comparable=comparable,
        )

    # -- one value ----------------------------------------------------------------------------

    def whose_address(self, raw: object) -> Whose | None:
        """Whose the address is; None if ``raw`` is not an address."""
        key = email_key(raw)
        if key is None:
            return None
        if (self.comparable(key) if self.comparable else key) in self.emails:
            return Whose.SUBJECT
        if self.context.own.holds(key):
            return Whose.CONTROLLER
        return Whose.OTHER

    def whose_phone(self, raw: object) -> Whose | None:
        """Whose the phone number is; None if ``raw`` is not one. The config names no phone
        numbers of the controller's: a number is the subject's or someone else's."""
        key = phone_key(raw, self.context.phone_region)
        if key is None:
            return None
        return Whose.SUBJECT if key in self.phones else Whose.OTHER

    def is_other_address(self, raw: object) -> bool:
        return self.whose_address(raw) == Whose.OTHER

    def masked_address(self, raw: object) -> str:
        """Someone else's address as the subject may see it."""
        key = email_key(raw)
        return mask_email(key) if key else "***"

    def masked_cell(self, kind: str, raw: object) -> object:
        """A cell holding one identifier of ``kind``: masked if it is someone else's, else as
        it is; other kinds (an account id) are judged by their source."""
        if kind == IdentifierKind.EMAIL and self.whose_address(raw) == Whose.OTHER:
            return self.masked_address(raw)
        if kind == IdentifierKind.PHONE and self.whose_phone(raw) == Whose.OTHER:
            key = phone_key(raw, self.context.phone_region)
            return mask_phone(key) if key else "***"
        return raw

    # -- free text ----------------------------------------------------------------------------

    def _found(self, text: str) -> Iterator[_Found]:
        """Every address and phone number in ``text``, in order, never overlapping: a number
        inside an address (``ola.91234567@x.no``) is part of the address."""
        taken: list[tuple[int, int]] = []
        for match, cleaned in addresses_in(text):
            key = email_key(cleaned)
            if key is None:
                continue
            start = match.start()
            whose = self.whose_address(cleaned)
            assert whose is not None
            taken.append((start, start + len(cleaned)))
            yield _Found(start, start + len(cleaned), f"email:{key}", whose, mask_email(key))
        for start, end, e164 in phones_in(text, self.context.phone_region):
            if any(start < b and a < end for a, b in taken):
                continue
            whose = Whose.SUBJECT if e164 in self.phones else Whose.OTHER
            yield _Found(start, end, f"phone:{e164}", whose, mask_phone(e164))

    def others_in(self, text: object) -> set[str]:
        """Other people's identifiers (``kind:key``) written in ``text``."""
        if not isinstance(text, str):
            return set()
        return {f.identifier for f in self._found(text) if f.whose == Whose.OTHER}

    def mask(self, text: str) -> str:
        """``text`` with other people's addresses and phone numbers masked; the subject's and
        the controller's, and everything else, as written."""
        others = sorted(
            (f for f in self._found(text) if f.whose == Whose.OTHER), key=lambda f: f.start
        )
        if not others:
            return text
        out, at = [], 0
        for found in others:
            out += [text[at : found.start], found.masked]
            at = found.end
        out.append(text[at:])
        return "".join(out)

    def mask_value(self, value: object) -> object:
        """A field's value with other people masked in every text inside it (lists and
        mappings too, as an export carries them)."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, list):
            return [self.mask_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        return value
