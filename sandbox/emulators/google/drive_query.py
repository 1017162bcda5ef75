"""The Drive v3 ``q`` language, the subset the connector and its tests use.

Grammar (as documented under "Search query terms and operators")::

    query     := or_expr
    or_expr   := and_expr ("or" and_expr)*
    and_expr  := unary ("and" unary)*
    unary     := "not" unary | "(" query ")" | term
    term      := STRING "in" "parents"
               | FIELD ("=" | "!=") VALUE          (name, mimeType, trashed, starred)
               | FIELD "contains" STRING           (name, mimeType, fullText)
               | FIELD ("<" | "<=" | ">" | ">=") STRING   (modifiedTime, createdTime)

Strings are single-quoted with ``\\'`` and ``\\\\`` escapes. Like Drive:

* ``name contains`` is case-insensitive prefix matching on the name's words
  (``name contains 'Hello'`` finds ``HelloWorld``, ``name contains 'World'`` does not);
* ``fullText contains`` matches whole tokens, not substrings, and is fuzzy: every word of the
  query must occur somewhere in the file (name or cells), in any order, so
  ``kari.nordmann@example.com`` also finds ``kari.nordmann@example.com.evil.org`` and
  ``kari.nordmann+support@example.com``; a double-quoted phrase must occur as a phrase.

Anything else is answered with 400 ``Invalid Value`` on ``q``, as Drive does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sandbox.emulators.google.errors import invalid_value

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<op><=|>=|!=|=|<|>|\(|\))
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>-?[0-9]+)
    )""",
    re.VERBOSE,
)
WORDS = re.compile(r"[0-9a-z]+")


class QueryFile(Protocol):
    """What a query looks at in a file."""

    name: str
    mime_type: str
    parents: list[str]
    trashed: bool
    starred: bool
    created_time: str
    modified_time: str

    def full_text(self) -> str: ...


Predicate = Callable[[QueryFile], bool]


@dataclass
class _Token:
    kind: str
    text: str


def _tokenise(q: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(q):
        if q[i:].strip() == "":
            break
        match = _TOKEN.match(q, i)
        if not match:
            raise invalid_value("q")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        i = match.end()
    return tokens


def unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def words(text: str) -> list[str]:
    return WORDS.findall(text.lower())


def name_contains(name: str, needle: str) -> bool:
    lower, needle = name.lower(), needle.lower()
    starts = [0] + [m.end() for m in re.finditer(r"[^0-9a-z]+", lower)]
    return any(lower.startswith(needle, i) for i in starts)


def full_text_contains(text: str, needle: str) -> bool:
    haystack = words(text)
    if needle.startswith('"') and needle.endswith('"') and len(needle) > 1:
        phrase = words(needle)
        n = len(phrase)
        return bool(phrase) and any(haystack[i : i + n] == phrase for i in range(len(haystack)))
    wanted = set(words(needle))
    return bool(wanted) and wanted <= set(haystack)


class _Parser:
    def __init__(self, q: str) -> None:
        self.tokens = _tokenise(q)
        self.i = 0
        self.fields: set[str] = set()  # the fields the query's terms look at

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (kind and token.kind != kind) or (text and token.text != text):
            raise invalid_value("q")
        self.i += 1
        return token

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() == word

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek() is not None:
            raise invalid_value("q")
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at_word("or"):
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda f: any(p(f) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.at_word("and"):
            self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda f: all(p(f) for p in parts))

    def unary(self) -> Predicate:
        if self.at_word("not"):
            self.i += 1
            inner = self.unary()
            return lambda f: not inner(f)
        token = self.peek()
        if token is not None and token.text == "(":
            self.i += 1
            inner = self.or_expr()
            self.take("op", ")")
            return inner
        return self.term()

    def term(self) -> Predicate:
        first = self.take()
        if first.kind == "string":
            value = unquote(first.text)
            self.take("word")  # "in"
            collection = self.take("word").text
            if self.tokens[self.i - 2].text.lower() != "in" or collection != "parents":
                raise invalid_value("q")
            return lambda f: value in f.parents
        if first.kind != "word":
            raise invalid_value("q")
        field = first.text
        self.fields.add(field)
        op = self.take()
        operator = op.text.lower() if op.kind == "word" else op.text
        value_token = self.take()
        return _comparison(field, operator, value_token)


def _comparison(field: str, operator: str, token: _Token) -> Predicate:
    if field in ("trashed", "starred"):
        if (
            operator not in ("=", "!=")
            or token.kind != "word"
            or token.text not in ("true", "false")
        ):
            raise invalid_value("q")
        wanted = token.text == "true"
        attr = field
        if operator == "=":
            return lambda f: getattr(f, attr) is wanted
        return lambda f: getattr(f, attr) is not wanted
    if token.kind != "string":
        raise invalid_value("q")
    value = unquote(token.text)
    if field in ("name", "mimeType"):
        attr = "name" if field == "name" else "mime_type"
        if operator == "=":
            return lambda f: getattr(f, attr) == value
        if operator == "!=":
            return lambda f: getattr(f, attr) != value
        if operator == "contains":
            if attr == "name":
                return lambda f: name_contains(f.name, value)
            return lambda f: value in f.mime_type
    if field == "fullText" and operator == "contains":
        return lambda f: full_text_contains(f.full_text(), value)
    if field in ("modifiedTime", "createdTime") and operator in ("<", "<=", ">", ">=", "=", "!="):
        attr = "modified_time" if field == "modifiedTime" else "created_time"
        compare: dict[str, Callable[[str, str], bool]] = {
            "<": str.__lt__,
            "<=": str.__le__,
            ">": str.__gt__,
            ">=": str.__ge__,
            "=": str.__eq__,
            "!=": str.__ne__,
        }
        check = compare[operator]
        # RFC 3339 in UTC ("2026-01-01T00:00:00Z") sorts as text.
        return lambda f: check(getattr(f, attr), value)
    raise invalid_value("q")


def parse_query(q: str) -> Predicate:
    """A predicate over files for ``q``; raises GoogleError 400 on ``q`` for anything else."""
    return parse_query_fields(q)[0]


def parse_query_fields(q: str) -> tuple[Predicate, set[str]]:
    """``parse_query`` and the fields its terms name (``fullText`` forbids ``orderBy``)."""
    if not q.strip():
        return (lambda _f: True), set()
    parser = _Parser(q)
    return parser.parse(), parser.fields
