"""Partial responses: the ``fields`` system parameter (``nextPageToken,files(id,name)``,
``sheets/properties(sheetId,title)``, ``sheets.properties.title``, ``*``)."""

from __future__ import annotations

from typing import Any

from sandbox.emulators.google.errors import GoogleError

Selection = dict[str, "Selection | None"]  # None: the whole value


def parse_fields(text: str) -> Selection:
    selection, rest = _parse_list(text.replace(" ", ""), 0)
    if rest != len(text.replace(" ", "")):
        raise _invalid(text)
    return selection


def _parse_list(text: str, i: int) -> tuple[Selection, int]:
    selection: Selection = {}
    while i < len(text):
        name_end = i
        while name_end < len(text) and text[name_end] not in ",()/.":
            name_end += 1
        name = text[i:name_end]
        if not name:
            raise _invalid(text)
        i = name_end
        sub: Selection | None = None
        if i < len(text) and text[i] in "/.":
            sub, i = _parse_path(text, i + 1)
        elif i < len(text) and text[i] == "(":
            sub, i = _parse_list(text, i + 1)
            if i >= len(text) or text[i] != ")":
                raise _invalid(text)
            i += 1
        _merge(selection, name, sub)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        break
    return selection, i


def _parse_path(text: str, i: int) -> tuple[Selection, int]:
    """After ``a/`` (or ``a.``): one name, then more path or a parenthesised list."""
    name_end = i
    while name_end < len(text) and text[name_end] not in ",()/.":
        name_end += 1
    name = text[i:name_end]
    if not name:
        raise _invalid(text)
    i = name_end
    sub: Selection | None = None
    if i < len(text) and text[i] in "/.":
        sub, i = _parse_path(text, i + 1)
    elif i < len(text) and text[i] == "(":
        sub, i = _parse_list(text, i + 1)
        if i >= len(text) or text[i] != ")":
            raise _invalid(text)
        i += 1
    return {name: sub}, i


def _merge(selection: Selection, name: str, sub: Selection | None) -> None:
    if name in selection:
        current = selection[name]
        if current is None or sub is None:
            selection[name] = None
        else:
            for key, value in sub.items():
                _merge(current, key, value)
    else:
        selection[name] = sub


def _invalid(text: str) -> GoogleError:
    return GoogleError(
        400, f"Invalid field selection {text}", reason="invalidParameter", location="fields"
    )


def apply_fields(value: Any, selection: Selection | None) -> Any:
    """Keep only the selected members; lists are selected element by element."""
    if selection is None or "*" in selection:
        return value
    if isinstance(value, list):
        return [apply_fields(v, selection) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: apply_fields(value[k], sub) for k, sub in selection.items() if k in value}


def check_known(selection: Selection, known: dict[str, set[str] | None], text: str) -> None:
    """Refuse names the resource does not have, as Drive does (``Invalid field selection``).

    ``known`` maps each top-level member to the members of its items (None: not checked).
    """
    for name, sub in selection.items():
        if name == "*":
            continue
        if name not in known:
            raise GoogleError(
                400, f"Invalid field selection {name}", reason="invalidParameter", location="fields"
            )
        members = known[name]
        if sub is not None and members is not None:
            for inner in sub:
                if inner != "*" and inner not in members:
                    raise GoogleError(
                        400,
                        f"Invalid field selection {inner}",
                        reason="invalidParameter",
                        location="fields",
                    )
