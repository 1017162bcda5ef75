"""``$search`` (KQL), ``$filter`` (the OData subset the connector uses) and ``$select``.

``$search`` behaves like Exchange's content index, not like a database: the value is split into
word tokens and compared case-insensitively as a phrase — the tokens one after the other, each
allowed to be part of a longer word. So ``participants:al@example.com`` also finds mail of
``sal@example.com`` and of ``al@example.com.evil.org`` — near misses that a client must weed out
by exact comparison — but not of ``al+news@example.com`` (another token sits in between).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.emulators.graph.store import Stored


class QueryError(ValueError):
    """A query option Graph would refuse: (code, message) of its error response."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


MESSAGE_PROPERTIES = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "receivedDateTime",
        "sentDateTime",
        "hasAttachments",
        "internetMessageId",
        "subject",
        "bodyPreview",
        "importance",
        "parentFolderId",
        "conversationId",
        "isRead",
        "isDraft",
        "body",
        "sender",
        "from",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "categories",
        "flag",
        "webLink",
        "changeKey",
        "uniqueBody",
        "inferenceClassification",
        "internetMessageHeaders",
    }
)

# -- $search -------------------------------------------------------------------------------------

_SEARCH_PROPERTIES = {"participants", "from", "to", "cc", "bcc", "subject", "body"}
_KQL_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>\(|\))
      | (?P<dprop>received|sent)(?P<dop>>=|<=|>|<|:|=)(?P<date>\d{4}-\d{2}-\d{2})(?=[\s()]|$)
      | (?P<prop>[A-Za-z]+):(?:"(?P<pphrase>(?:[^"\\]|\\.)*)"|(?P<pword>[^\s()"]+))
      | "(?P<phrase>(?:[^"\\]|\\.)*)"
      | (?P<word>[^\s()"]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Term:
    prop: str | None  # None: the default properties (from, subject, body)
    tokens: tuple[str, ...]
    pattern: re.Pattern[str]  # the tokens in order, each possibly inside a longer word


@dataclass(frozen=True)
class DateTerm:
    """``received>=2024-01-31``: Exchange's KQL date comparison, to the day (Exchange's
    searchable properties: https://learn.microsoft.com/exchange/security-and-compliance/
    ediscovery/message-properties-and-search-operators). Days are taken in UTC here."""

    prop: str  # received | sent
    op: str
    day: dt.date

    def test(self, message: Mapping[str, Any]) -> bool:
        raw = message.get("receivedDateTime" if self.prop == "received" else "sentDateTime")
        if not raw:
            return False
        day = _instant(str(raw)).astimezone(dt.UTC).date()
        return {
            ">=": day >= self.day,
            "<=": day <= self.day,
            ">": day > self.day,
            "<": day < self.day,
            ":": day == self.day,
            "=": day == self.day,
        }[self.op]


Node = tuple[str, list[Any]] | Term | DateTerm  # ("and"|"or", children) or a term


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_search(raw: str) -> Node:
    """Parse a ``$search`` value: ``"participants:\\"a@b.c\\" OR \\"a@b.c\\""``.

    Graph wants the whole value in double quotes; quotes inside are escaped with a backslash.
    """
    text = raw.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = _unescape(text[1:-1])
    items: list[Any] = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _KQL_TOKEN.match(text, position)
        if not match or match.end() == position:
            raise QueryError(
                "ErrorInvalidRequest", f"Syntax error: character at position {position} is invalid"
            )
        position = match.end()
        if match["op"]:
            items.append(match["op"])
        elif match["dprop"]:
            try:
                day = dt.date.fromisoformat(match["date"])
            except ValueError as exc:
                raise QueryError("ErrorInvalidRequest", "Syntax error: an invalid date") from exc
            items.append(DateTerm(match["dprop"], match["dop"], day))
        elif match["prop"]:
            prop = match["prop"].lower()
            if prop not in _SEARCH_PROPERTIES:
                raise QueryError("ErrorInvalidRequest", f"Unsupported search property '{prop}'")
            value = match["pphrase"] if match["pphrase"] is not None else match["pword"]
            items.append(_term(prop, _unescape(value)))
        elif match["phrase"] is not None:
            items.append(_term(None, _unescape(match["phrase"])))
        elif match["word"] in ("AND", "OR", "NOT"):
            items.append(match["word"])
        else:
            items.append(_term(None, match["word"]))
    node, rest = _parse_or(items)
    if rest:
        raise QueryError("ErrorInvalidRequest", "Syntax error: unbalanced parentheses")
    return node


def _term(prop: str | None, value: str) -> Term:
    tokens = tuple(re.findall(r"\w+", value.lower()))
    if not tokens:
        raise QueryError("ErrorInvalidRequest", "Syntax error: an empty search term")
    pattern = re.compile(r"\w*\W+\w*".join(re.escape(token) for token in tokens))
    return Term(prop, tokens, pattern)


def _parse_or(items: list[Any]) -> tuple[Node, list[Any]]:
    left, items = _parse_and(items)
    children = [left]
    while items and items[0] == "OR":
        right, items = _parse_and(items[1:])
        children.append(right)
    return (children[0] if len(children) == 1 else ("or", children)), items


def _parse_and(items: list[Any]) -> tuple[Node, list[Any]]:
    children: list[Node] = []
    while items and items[0] not in ("OR", ")"):
        if items[0] == "AND":
            items = items[1:]
            continue
        if items[0] == "NOT":
            raise QueryError("ErrorInvalidRequest", "NOT is not supported by this emulator")
        if items[0] == "(":
            inner, items = _parse_or(items[1:])
            if not items or items[0] != ")":
                raise QueryError("ErrorInvalidRequest", "Syntax error: unbalanced parentheses")
            items = items[1:]
            children.append(inner)
            continue
        children.append(items[0])
        items = items[1:]
    if not children:
        raise QueryError("ErrorInvalidRequest", "Syntax error: an empty search expression")
    return (children[0] if len(children) == 1 else ("and", children)), items


def _people_text(message: Mapping[str, Any], *names: str) -> str:
    parts = []
    for name in names:
        value = message.get(name)
        for person in value if isinstance(value, list) else [value]:
            email = (person or {}).get("emailAddress") or {}
            parts.append(f"{email.get('name') or ''} {email.get('address') or ''}")
    return " ".join(parts).lower()


def _text_of(stored: Stored, prop: str | None) -> str:
    message = stored.resource
    if prop is None:
        return stored.default_text
    if prop == "participants":
        return stored.participants_text
    if prop == "subject":
        return str(message.get("subject") or "").lower()
    if prop == "body":
        return str((message.get("body") or {}).get("content") or "").lower()
    field = {"from": "from", "to": "toRecipients", "cc": "ccRecipients", "bcc": "bccRecipients"}
    return _people_text(message, field[prop])


def search_matches(node: Node, stored: Stored) -> bool:
    if isinstance(node, DateTerm):
        return node.test(stored.resource)
    if isinstance(node, Term):
        return node.pattern.search(_text_of(stored, node.prop)) is not None
    kind, children = node
    test = all if kind == "and" else any
    return test(search_matches(child, stored) for child in children)


# -- $filter -------------------------------------------------------------------------------------

_FILTER_PROPERTIES = {
    "internetMessageId": "string",
    "parentFolderId": "string",
    "conversationId": "string",
    "receivedDateTime": "datetime",
    "sentDateTime": "datetime",
    "hasAttachments": "bool",
}
_COMPARISON = re.compile(
    r"\s*(?P<prop>[A-Za-z]+)\s+(?P<op>eq|ne|gt|ge|lt|le)\s+"
    r"(?P<value>'(?:[^']|'')*'|true|false|\d{4}-\d\d-\d\dT[\d:.]+Z)\s*"
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}

Predicate = Callable[[Mapping[str, Any]], bool]


class _Filter:
    """A parsed ``$filter``; ``internet_ids`` is set when it only asks for those ids."""

    def __init__(self, test: Predicate) -> None:
        self.test = test
        self.internet_ids: set[str] | None = None

    def __call__(self, message: Mapping[str, Any]) -> bool:
        return self.test(message)


def parse_filter(raw: str) -> _Filter:
    """``a eq 'x' or a eq 'y'`` / ``… and …``: comparisons joined by ``and`` binding tighter."""
    groups: list[list[Predicate]] = [[]]
    position = 0
    text = raw.strip()
    while True:
        match = _COMPARISON.match(text, position)
        if not match:
            raise QueryError("ErrorInvalidRequest", f"Invalid filter clause: {raw}")
        groups[-1].append(_comparison(match["prop"], match["op"], match["value"]))
        position = match.end()
        if position >= len(text):
            break
        joiner = re.match(r"(and|or)\s", text[position:])
        if not joiner:
            raise QueryError("ErrorInvalidRequest", f"Invalid filter clause: {raw}")
        position += joiner.end()
        if joiner[1] == "or":
            groups.append([])
    test = _Filter(lambda message: any(all(p(message) for p in group) for group in groups))
    # ``internetMessageId eq 'a' or internetMessageId eq 'b' …``: answerable from an index.
    ids = re.findall(r"internetMessageId eq '((?:[^']|'')*)'", text)
    if len(ids) == sum(len(g) for g in groups) and all(len(g) == 1 for g in groups):
        test.internet_ids = {i.replace("''", "'") for i in ids}
    return test


def _comparison(prop: str, op: str, literal: str) -> Predicate:
    kind = _FILTER_PROPERTIES.get(prop)
    if kind is None:
        raise QueryError(
            "ErrorInvalidRequest", f"The property '{prop}' is not supported in a filter here"
        )
    value: Any
    if kind == "string":
        if not literal.startswith("'"):
            raise QueryError("ErrorInvalidRequest", f"'{prop}' compares with a string literal")
        value = literal[1:-1].replace("''", "'")
    elif kind == "bool":
        value = literal == "true"
    else:
        value = _instant(literal)
    compare = _OPS[op]
    if kind == "datetime":
        return lambda message: compare(_instant(str(message.get(prop) or "")), value)
    return lambda message: compare(message.get(prop), value)


def _instant(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError("ErrorInvalidRequest", f"'{text}' is not a DateTimeOffset") from exc


# -- $select -------------------------------------------------------------------------------------


def parse_select(raw: str | None, known: frozenset[str] = MESSAGE_PROPERTIES) -> list[str] | None:
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in known:
            raise QueryError(
                "BadRequest", f"Could not find a property named '{name}' on type 'message'."
            )
    return names


def project(resource: Mapping[str, Any], select: list[str] | None) -> dict[str, Any]:
    """The resource as returned: ``$select`` keeps the named properties (and always ``id``)."""
    etag = {"@odata.etag": f'W/"{resource.get("id", "")[-12:]}"'}
    if select is None:
        return {**etag, **resource}
    return {**etag, "id": resource.get("id"), **{n: resource.get(n) for n in select}}
