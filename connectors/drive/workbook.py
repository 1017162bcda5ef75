"""What a spreadsheet exported as .xlsx (Drive ``files.export``) can rule out, and nothing more.

Discovery reads every spreadsheet through Drive's export (Drive's quota: hundreds of thousands
of units a minute) rather than Sheets (60 reads a minute per user), and reads through Sheets
only the spreadsheets the export cannot clear of the subject. The export never decides that a
row matches, and never supplies a record: records come from Sheets' own formatted values, as
before (exact matching, content fingerprints for the guard before a change). So the one thing
to get right here is that a spreadsheet holding the subject is never cleared:

* a text cell (shared string, inline string, a formula's cached text) is exported exactly as
  Sheets shows it; it clears only if none of the subject's identifiers is in it by the very
  tests the Sheets path applies to any cell (``Matcher.scan``, plus ``Matcher.match`` for every
  kind of identifier the subject has), whatever its column or layout;
* any other cell (a number, a date serial, a boolean) is exported as its value, which Sheets
  may show differently (a number format can write 4791234567 as ``+47 912 34 567``): it clears
  only if the wide pre-test (``Matcher.may_be_in``: a local part, or a phone form in its
  digits) finds nothing, and no non-e-mail, non-phone identifier matches its text;
* a formula without a cached value, a part that cannot be parsed, or anything unexpected: the
  spreadsheet is not cleared.

Most spreadsheets do not hold her, so each part gets one wide look first: its text with the
tags dropped (a rich-text run split by formatting joins up again) and entities resolved, through
``Matcher.may_be_in``. Every cell test above passes only on text this look also passes, so when
it finds nothing the part is cleared without being parsed cell by cell (4 ms instead of 50 ms
for a 2,000-row sheet).

The workbook is SpreadsheetML (ECMA-376 Part 1): ``xl/sharedStrings.xml`` and one
``xl/worksheets/*.xml`` per sheet, parsed with the standard library's expat (no openpyxl: it
takes ~50 times longer on the same 2,000 rows).
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError, iterparse

from connectors.drive.rows import Matcher
from dsrflow.identifiers import IdentifierKind

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_SI, _T, _R = f"{_NS}si", f"{_NS}t", f"{_NS}r"
_C, _V, _F, _IS = f"{_NS}c", f"{_NS}v", f"{_NS}f", f"{_NS}is"
# The text between tags (a superset: anything after a '>' up to the next '<').
_TEXT = re.compile(rb">([^<]+)<")
_WIDE_KINDS = frozenset({IdentifierKind.EMAIL.value, IdentifierKind.PHONE.value})


class Unreadable(Exception):
    """The export is not a workbook this module can read: not a reason to clear anything."""


def _elements(data: bytes, tag: str) -> Iterator[Element]:
    """Each finished ``tag`` element of an XML part (the caller clears it: bounded memory)."""
    # The export comes from Google over TLS; expat (>= 2.4.1 with Python 3.11) fetches no
    # external entities and refuses entity-expansion bombs itself.
    for _, element in iterparse(io.BytesIO(data), events=("end",)):  # noqa: S314
        if element.tag == tag:
            yield element


def _shared_strings(part: bytes) -> Iterator[str]:
    for si in _elements(part, _SI):
        yield _text_of(si)
        si.clear()


def _text_of(element: Element) -> str:
    """The text of a shared or inline string: its ``t``, or the ``t`` of each rich-text run
    (``r``); phonetic runs (``rPh``) are not part of the text."""
    parts: list[str] = []
    for child in element:
        if child.tag == _T:
            parts.append(child.text or "")
        elif child.tag == _R:
            run = child.find(_T)
            parts.append("" if run is None else run.text or "")
    return "".join(parts)


class WorkbookCheck:
    """Whether an exported workbook could hold the subject ``matcher`` describes."""

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        # Kinds beyond e-mail and phone (an account id) are compared on every cell's text.
        self.other_kinds = sorted({i.split(":", 1)[0] for i in matcher.identifiers} - _WIDE_KINDS)

    def text_may_hold(self, text: str) -> bool:
        """A cell's text as Sheets shows it: the Sheets path's own exact tests."""
        if self.matcher.scan(text):
            return True
        return any(self.matcher.match(kind, text) for kind in self.other_kinds)

    def value_may_hold(self, raw: str) -> bool:
        """A cell that is not text (Sheets may show it formatted): the wide pre-test."""
        if self.matcher.may_be_in([raw]):
            return True
        return any(self.matcher.match(kind, raw) for kind in self.other_kinds)

    def may_hold(self, data: bytes) -> bool:
        """True unless the workbook ``data`` is proven free of the subject."""
        try:
            return self._may_hold(data)
        except (zipfile.BadZipFile, ParseError, KeyError, ValueError, IndexError, Unreadable):
            return True  # cannot tell: read it through Sheets

    def _may_hold(self, data: bytes) -> bool:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = package.namelist()
            sheets = [n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            if not sheets:
                raise Unreadable("no worksheet parts")
            # Text cells: every shared string (used or not) by the exact tests, unless one wide
            # look at all their text rules the subject out at once.
            if "xl/sharedStrings.xml" in names:
                shared = package.read("xl/sharedStrings.xml")
                if self._wide(shared) and any(
                    self.text_may_hold(text) for text in _shared_strings(shared)
                ):
                    return True
            # A sheet's own cells (numbers, dates, inline strings, formulas' results): one by
            # one only where a wide look at the whole part cannot rule them out, or a formula
            # may lack its cached result.
            for name in sheets:
                part = package.read(name)
                formulas = b"<f>" in part or b"<f " in part
                if (formulas or self._wide(part)) and self._cells_may_hold(part):
                    return True
            return False

    def _wide(self, part: bytes) -> bool:
        """Whether the text of an XML part (tags dropped, entities resolved: a rich-text run
        split by tags joins up again) passes the wide pre-test. Joining the texts of separate
        cells can only add passes, never lose one."""
        if self.other_kinds:
            return True  # an account id has no cheap pre-test: cell by cell
        text = html.unescape(b"".join(_TEXT.findall(part)).decode("utf-8"))
        return self.matcher.may_be_in([text])

    def _cells_may_hold(self, part: bytes) -> bool:
        for cell in _elements(part, _C):
            if self._cell_may_hold(cell):
                return True
            cell.clear()
        return False

    def _cell_may_hold(self, cell: Element) -> bool:
        kind = cell.get("t", "n")
        value = cell.find(_V)
        if kind == "s":  # its text is among the shared strings, tested above
            if value is None or value.text is None:
                raise Unreadable("a shared-string cell without its index")
            return False
        if kind == "inlineStr":
            inline = cell.find(_IS)
            return inline is not None and self.text_may_hold(_text_of(inline))
        if value is None or value.text is None:
            # A formula whose result the export did not cache: nothing to rule it out by.
            return cell.find(_F) is not None
        if kind == "str":  # a formula's text result
            return self.text_may_hold(value.text)
        return self.value_may_hold(value.text)
