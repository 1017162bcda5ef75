"""Finding, masking and pseudonymising people in Jira texts (wiki-style plain text).

A person shows up in a text as an e-mail address or as a mention ``[~accountid:ID]`` (Cloud) /
``[~username]`` (Data Center), and by name. Addresses are cut out of the text whole and compared
after normalisation, so ``kari.nordmann@example.com.evil.org`` is never the subject's
``kari.nordmann@example.com``; names are only ever replaced, never matched on. Whose an
address or phone number is, and how it is masked, is the one rule of ``connectors.third_parties``
(the controller's own addresses stay in clear); mentions and names are Jira's own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from connectors.third_parties import ThirdParties
from dsrflow.identifiers import ADDRESS_IN_TEXT, addresses_in, clean_in_text, email_key

# An address is always taken whole on both sides (åse@…, sub.domain.evil.org included).
EMAIL_IN_TEXT = ADDRESS_IN_TEXT
MENTION = re.compile(r"\[~(?:accountid:)?([^\]\s]+)\]")
OTHER_PERSON = "[another person]"


@dataclass(frozen=True)
class Person:
    """The subject as Jira knows them: addresses, account ids and the names on the accounts."""

    emails: frozenset[str]
    account_ids: frozenset[str]
    names: frozenset[str] = field(default_factory=frozenset)

    def pseudonym(self, prefix: str) -> str:
        """Stable across runs and sources' texts: derived from the subject's first address."""
        seed = min(self.emails) if self.emails else min(self.account_ids, default="")
        return f"[{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:4]}]"


def emails_in(text: str | None) -> set[str]:
    """Comparison keys of the addresses written in ``text``."""
    return {key for _, cleaned in addresses_in(text) if (key := email_key(cleaned))}


def mentions_in(text: str | None) -> set[str]:
    return {m.group(1) for m in MENTION.finditer(text or "")}


def mentions(person: Person, text: str | None) -> set[str]:
    """The subject's identifiers written in ``text``, as ``kind:value``."""
    hits = {f"email:{e}" for e in emails_in(text) & person.emails}
    hits |= {f"jira_account_id:{a}" for a in mentions_in(text) & person.account_ids}
    return hits


def _replace_emails(text: str, replace: Callable[[str, str], str]) -> str:
    def one(match: re.Match[str]) -> str:
        raw = match.group()
        cleaned = clean_in_text(raw)
        normalised = email_key(cleaned)
        if normalised is None:
            return raw
        return replace(normalised, cleaned) + raw[len(cleaned) :]

    return EMAIL_IN_TEXT.sub(one, text)


def _replace_names(text: str, names: Iterable[str], by: str) -> str:
    for name in sorted({n for n in names if len(n.strip()) >= 3}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(name.strip())}(?!\w)", by, text, flags=re.IGNORECASE)
    return text


def others_in(text: str | None, person: Person, rule: ThirdParties) -> bool:
    """Whether ``text`` names someone else: an address or phone number that is neither the
    subject's nor the controller's, or a mention of another account."""
    if not text:
        return False
    return bool(rule.others_in(text) or mentions_in(text) - person.account_ids)


def mask_others(
    text: str | None, person: Person, other_names: Iterable[str], rule: ThirdParties
) -> str | None:
    """Art. 15(4): other people's addresses, phone numbers, mentions and names masked; the
    subject's and the controller's kept."""
    if not text:
        return text
    text = rule.mask(text)
    text = MENTION.sub(
        lambda m: m.group() if m.group(1) in person.account_ids else OTHER_PERSON, text
    )
    return _replace_names(text, set(other_names) - set(person.names), OTHER_PERSON)


def pseudonymise(text: str | None, person: Person, pseudonym: str) -> str | None:
    """The subject's addresses, mentions and names replaced by ``pseudonym``; the rest intact."""
    if not text:
        return text
    text = _replace_emails(text, lambda norm, raw: pseudonym if norm in person.emails else raw)
    text = MENTION.sub(lambda m: pseudonym if m.group(1) in person.account_ids else m.group(), text)
    return _replace_names(text, person.names, pseudonym)
