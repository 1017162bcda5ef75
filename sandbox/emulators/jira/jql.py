"""The subset of JQL the Jira emulator understands, parsed and evaluated against its store.

Grammar (case-insensitive keywords)::

    query    := [or_expr] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    or_expr  := and_expr {OR and_expr}
    and_expr := unary {AND unary}
    unary    := "(" or_expr ")" | clause
    clause   := field ("=" | "!=") value
              | field ["NOT"] IN "(" value {, value} ")"
              | field IN function "(" [value {, value}] ")"      -- only issue in updatedBy(...)
              | field "~" value
              | field ("<" | "<=" | ">" | ">=") value   -- resolved/resolutiondate, key
    field    := word | "quoted name"
    value    := word | "quoted string"   (backslash escapes \\" \\' \\\\ inside quotes)

Anything else is a ``JqlError``, which the app answers with 400 and Jira's ``errorMessages``.
``~`` is fuzzy like Jira's full-text search: the text and the query are cut into words, lower-cased
and stemmed, and an issue matches when it holds every word of the query. That is why
``text ~ "kari.nordmann@example.com"`` also finds ``kari.nordmann@example.com.evil.org``: callers
must confirm matches themselves.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class JqlError(ValueError):
    """A query the emulator (like Jira) refuses; the message is Jira's wording where it has one."""


@dataclass(frozen=True)
class Token:
    kind: str  # word, string, op, lparen, rparen, comma
    text: str
    pos: int


_OPS = ("!=", "!~", "<=", ">=", "=", "~", "<", ">")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", " ": " "}


def tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(jql):
        char = jql[i]
        if char.isspace():
            i += 1
        elif char in "\"'":
            start, quote, out = i, char, []
            i += 1
            while True:
                if i >= len(jql):
                    raise JqlError(
                        f"Error in the JQL Query: The quoted string {jql[start:]} has not been "
                        f"completed. (line 1, character {start + 1})"
                    )
                c = jql[i]
                if c == "\\":
                    nxt = jql[i + 1] if i + 1 < len(jql) else ""
                    if nxt not in _ESCAPES:
                        raise JqlError(
                            f"Error in the JQL Query: '\\{nxt}' is an illegal JQL escape sequence. "
                            f"The valid escape sequences are \\', \\\", \\t, \\n, \\r, \\\\, '\\ ' "
                            f"and \\uXXXX. (line 1, character {i + 1})"
                        )
                    out.append(_ESCAPES[nxt])
                    i += 2
                elif c == quote:
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            tokens.append(Token("string", "".join(out), start))
        elif char == "(":
            tokens.append(Token("lparen", char, i))
            i += 1
        elif char == ")":
            tokens.append(Token("rparen", char, i))
            i += 1
        elif char == ",":
            tokens.append(Token("comma", char, i))
            i += 1
        elif any(jql.startswith(op, i) for op in _OPS):
            op = next(op for op in _OPS if jql.startswith(op, i))
            tokens.append(Token("op", op, i))
            i += len(op)
        else:
            match = re.compile(r"[A-Za-z0-9_.\-\[\]:@+]+").match(jql, i)
            if not match:
                raise JqlError(
                    f"Error in the JQL Query: The character '{char}' is a reserved JQL character. "
                    f"You must enclose it in a string or use the escape '\\u{ord(char):04x}' "
                    f"instead. (line 1, character {i + 1})"
                )
            tokens.append(Token("word", match.group(), i))
            i = match.end()
    return tokens


# -- the syntax tree ---------------------------------------------------------------------------

Predicate = Callable[[Any], bool]


@dataclass(frozen=True)
class Clause:
    field: str  # lower-cased field name as written (e.g. "reporter", "request participants")
    op: str  # =, !=, in, not in, ~, in updatedby
    values: tuple[str, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # and, or
    parts: tuple[Node, ...]


Node = Clause | BoolOp


@dataclass(frozen=True)
class Query:
    where: Node | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)


SUPPORTED_FIELDS = {
    "project",
    "key",
    "issuekey",
    "reporter",
    "request participants",
    "status",
    "labels",
    "summary",
    "description",
    "comment",
    "text",
    "issue",
    "resolved",
    "resolutiondate",
}
ORDERABLE = {"key", "issuekey", "created", "updated", "resolved", "resolutiondate"}
ORDER_OPERATORS = ("<", "<=", ">", ">=")
DATE_FIELDS = ("resolved", "resolutiondate")
# JQL's date formats; the emulator's users are all on UTC, the zone such dates are read in.
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise JqlError("Error in the JQL Query: Expecting more input at the end of the query.")
        self.i += 1
        return token

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() in words

    def query(self) -> Query:
        where = None if self.is_word("order") or self.peek() is None else self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.is_word("order"):
            self.next()
            if not self.is_word("by"):
                raise self.unexpected("'by'")
            self.next()
            while True:
                field = self.next()
                name = field.text.lower()
                if name not in ORDERABLE:
                    raise JqlError(
                        f"Field '{field.text}' does not exist or you do not have permission to "
                        "view it."
                    )
                descending = False
                if self.is_word("asc", "desc"):
                    descending = self.next().text.lower() == "desc"
                order.append((name, descending))
                token = self.peek()
                if token is None:
                    break
                if token.kind != "comma":
                    raise self.unexpected("',' or the end of the query")
                self.next()
        if self.peek() is not None:
            raise self.unexpected("'AND', 'OR' or 'ORDER BY'")
        return Query(where, tuple(order))

    def unexpected(self, expected: str) -> JqlError:
        token = self.peek()
        if token is None:
            return JqlError(
                f"Error in the JQL Query: Expecting {expected} at the end of the query."
            )
        return JqlError(
            f"Error in the JQL Query: Expecting {expected} but got '{token.text}'. "
            f"(line 1, character {token.pos + 1})"
        )

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.next()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while self.is_word("and"):
            self.next()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "lparen":
            self.next()
            node = self.or_expr()
            closing = self.peek()
            if closing is None or closing.kind != "rparen":
                raise self.unexpected("')'")
            self.next()
            return node
        if self.is_word("not"):
            raise JqlError("Error in the JQL Query: the emulator does not support NOT clauses.")
        return self.clause()

    def value(self) -> str:
        token = self.next()
        if token.kind not in ("word", "string"):
            raise JqlError(
                f"Error in the JQL Query: Expecting either a value, list or function but got "
                f"'{token.text}'. (line 1, character {token.pos + 1})"
            )
        return token.text

    def clause(self) -> Clause:
        token = self.next()
        if token.kind not in ("word", "string"):
            raise JqlError(
                f"Error in the JQL Query: Expecting a field name but got '{token.text}'. "
                f"(line 1, character {token.pos + 1})"
            )
        field = token.text.lower()
        if field not in SUPPORTED_FIELDS and not re.fullmatch(r"cf\[\d+\]", field):
            raise JqlError(
                f"Field '{token.text}' does not exist or you do not have permission to view it."
            )
        op_token = self.next()
        negated = False
        if op_token.kind == "word" and op_token.text.lower() == "not":
            negated = True
            op_token = self.next()
        if op_token.kind == "word" and op_token.text.lower() == "in":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "word" and not negated:
                name = self.next().text
                if name.lower() != "updatedby" or field != "issue":
                    raise JqlError(
                        f"Unable to find JQL function '{name}' for field '{token.text}'."
                    )
                return Clause(field, "in updatedby", self.value_list())
            return Clause(field, "not in" if negated else "in", self.value_list())
        if (
            not negated
            and op_token.kind == "op"
            and op_token.text in ORDER_OPERATORS
            and field in (*DATE_FIELDS, "key", "issuekey")
        ):
            return self.ordered_clause(token, field, op_token.text)
        if negated or op_token.kind != "op" or op_token.text not in ("=", "!=", "~"):
            raise JqlError(
                f"Error in the JQL Query: the operator '{op_token.text}' is not supported by the "
                f"emulator for field '{token.text}'. (line 1, character {op_token.pos + 1})"
            )
        if op_token.text == "~" and field not in ("summary", "description", "comment", "text"):
            raise JqlError(f"The operator '~' is not supported by the '{token.text}' field.")
        if op_token.text != "~" and field in ("text", "comment", "summary", "description"):
            raise JqlError(
                f"The operator '{op_token.text}' is not supported by the '{token.text}' field."
            )
        value = self.value()
        if op_token.text == "~":
            text_query_words(token.text, value)  # refuse an invalid text query up front
        return Clause(field, op_token.text, (value,))

    def ordered_clause(self, token: Token, field: str, op: str) -> Clause:
        """``resolved < "2023/11/22"`` or ``key > SUP-12``: the comparisons the emulator knows."""
        value = self.value()
        if field in DATE_FIELDS:
            parse_date(token.text, value)  # refuse a bad date up front, as Jira does
        elif not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*-\d+", value):
            raise JqlError(f"The issue key '{value}' for field '{token.text}' is invalid.")
        return Clause(field, op, (value,))

    def value_list(self) -> tuple[str, ...]:
        token = self.next()
        if token.kind != "lparen":
            raise JqlError(
                f"Error in the JQL Query: Expecting '(' but got '{token.text}'. "
                f"(line 1, character {token.pos + 1})"
            )
        values: list[str] = []
        while True:
            token = self.peek()
            if token is not None and token.kind == "rparen" and not values:
                self.next()
                break
            values.append(self.value())
            token = self.next()
            if token.kind == "rparen":
                break
            if token.kind != "comma":
                raise JqlError(
                    f"Error in the JQL Query: Expecting ',' or ')' but got '{token.text}'. "
                    f"(line 1, character {token.pos + 1})"
                )
        return tuple(values)


def parse(jql: str) -> Query:
    return _Parser(tokenize(jql)).query()


# -- comparisons -------------------------------------------------------------------------------


def parse_date(field: str, value: str) -> dt.datetime:
    for form in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, form).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{value}' for field '{field}' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
        "e.g. '-5d', '4w 2d'."
    )


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(clause: Clause, key: str, resolutiondate: str | None) -> bool:
    """An ordered comparison: dates against the resolution (an unresolved issue never matches),
    keys by number within the key's project (as Jira compares issue keys)."""
    test = _COMPARE[clause.op]
    if clause.field in DATE_FIELDS:
        if not resolutiondate:
            return False
        moment = dt.datetime.strptime(resolutiondate, "%Y-%m-%dT%H:%M:%S.%f%z")
        return test(moment, parse_date(clause.field, clause.values[0]))
    project, _, number = key.rpartition("-")
    wanted_project, _, wanted_number = clause.values[0].rpartition("-")
    if project.lower() != wanted_project.lower():
        return False
    return test(int(number), int(wanted_number))


# -- full-text matching ------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "s", "ly")
# Lucene's reserved characters: in a text query they must be escaped with a backslash.
_LUCENE_RESERVED = set('+-&|!(){}[]^"~*?:\\/')


def stem(word: str) -> str:
    """A light suffix stemmer, enough to make ``~`` fuzzy the way Jira's English analyser is."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str) -> set[str]:
    return {stem(w.lower()) for w in _WORD.findall(text or "")}


@functools.lru_cache(maxsize=512)
def text_query_words(field: str, query: str) -> frozenset[str]:
    """The words of a ``~`` query; unescaped reserved characters make it invalid, as in Jira."""
    out: list[str] = []
    i = 0
    while i < len(query):
        char = query[i]
        if char == "\\" and i + 1 < len(query):
            out.append(" ")  # an escaped reserved character separates words, like in Lucene
            i += 2
            continue
        if char in "()[]{}^:\\/":
            raise JqlError(
                f"The text query '{query}' for field '{field}' is not valid: probably your query "
                "syntax is invalid."
            )
        out.append(char)
        i += 1
    found = frozenset(words("".join(out)))
    if not found:
        raise JqlError(f"The field '{field}' does not support searching for an empty string.")
    return found
