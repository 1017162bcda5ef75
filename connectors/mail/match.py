"""Matching mail exactly: KQL for the pre-filter, and the confirmation that decides.

Exchange's ``$search`` is token-based and fuzzy (``participants:al@example.com`` also returns mail
of ``sal@example.com``). It only narrows the field; a message belongs to the subject when one of
its participants' addresses, or (for mentions) an address written in its subject or body, equals
one of the subject's addresses once both are normalised.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar

from dsrflow.identifiers import addresses_in, email_key, email_spellings

PARTICIPANT_FIELDS = ("from", "sender", "toRecipients", "ccRecipients", "bccRecipients", "replyTo")


def kql_phrase(value: str) -> str:
    """``value`` as a KQL phrase: quoted, with ``\\`` and ``"`` escaped, so it is never read
    as operators, property restrictions or wildcards."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_search_value(kql: str) -> str:
    """A KQL expression as Graph's ``$search`` wants it: the whole in double quotes, quotes
    inside escaped with a backslash."""
    return '"' + kql.replace("\\", "\\\\").replace('"', '\\"') + '"'


def search_expression(addresses: Iterable[str], mentions: bool, plus_tags: bool = False) -> str:
    """The KQL pre-filter for all of the subject's addresses (every spelling) in one query.

    ``plus_tags``: also find ``local+tag@domain`` (another token inside the address, which a
    phrase does not match) by asking for the local part and the domain separately.
    """
    terms = []
    for address in addresses:
        for spelling in email_spellings(address, decomposed=True):
            terms.append(f"participants:{kql_phrase(spelling)}")
            if mentions:
                terms.append(kql_phrase(spelling))  # from, subject, body
            if plus_tags:
                local, _, domain = spelling.rpartition("@")
                terms.append(
                    f"(participants:{kql_phrase(local)} AND participants:{kql_phrase(domain)})"
                )
    return " OR ".join(dict.fromkeys(terms))


def fold_plus(address: str) -> str:
    """``al+tag@example.com`` -> ``al@example.com`` (for mappings that treat tags as the same)."""
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


class Matcher:
    """The subject's addresses, and exact tests of a message against them."""

    def __init__(self, addresses: Iterable[str], *, fold_plus_tags: bool = False) -> None:
        self.fold = fold_plus_tags
        self.wanted: dict[str, str] = {}  # comparable form -> the subject's address
        for address in addresses:
            self.wanted[self.comparable(address)] = address

    def comparable(self, normalised: str) -> str:
        return fold_plus(normalised) if self.fold else normalised

    def subject_address(self, raw: object) -> str | None:
        """The subject's address that ``raw`` is (equal comparison keys), or None."""
        normalised = email_key(raw)
        if normalised is None:
            return None
        return self.wanted.get(self.comparable(normalised))

    def in_participants(self, message: Mapping[str, Any]) -> set[str]:
        return {
            found
            for person in participants(message)
            if (found := self.subject_address(person.get("address")))
        }

    def in_text(self, *texts: str) -> set[str]:
        found = set()
        for text in texts:
            for _, candidate in addresses_in(text):
                hit = self.subject_address(candidate)
                if hit:
                    found.add(hit)
        return found


def participants(message: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every ``emailAddress`` of the participant fields, as ``{"name", "address"}``."""
    for name in PARTICIPANT_FIELDS:
        value = message.get(name)
        for entry in value if isinstance(value, list) else [value]:
            email = (entry or {}).get("emailAddress") if isinstance(entry, Mapping) else None
            if email:
                yield {"name": email.get("name"), "address": email.get("address")}


class _TextExtractor(HTMLParser):
    _SKIP: ClassVar[set[str]] = {"script", "style", "head", "title"}
    _BREAK: ClassVar[set[str]] = {
        "br",
        "p",
        "div",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "blockquote",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")
        if tag == "a":
            # mailto: links carry the address even when the visible text does not.
            href = dict(attrs).get("href") or ""
            if href.lower().startswith("mailto:"):
                self.parts.append(f" {href[7:].split('?')[0]} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def body_text(body: Mapping[str, Any] | None) -> str:
    """A message body as plain text (HTML turned into text, entities decoded)."""
    if not body:
        return ""
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "").lower() != "html":
        return content
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    text = html.unescape("".join(parser.parts))
    return re.sub(r"[ \t]*\n\s*\n+", "\n\n", text).strip()
