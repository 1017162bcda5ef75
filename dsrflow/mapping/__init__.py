"""Loading and validating the declarative mappings in ``mappings/``.

A broken mapping raises MappingError naming the file, the path inside it (with its line) and what
is wrong, before any source is read.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from dsrflow.errors import DsrflowError
from dsrflow.mapping.common import BaseMapping
from dsrflow.yaml_safe import SAFE_LOADER, safe_load


@cache
def _adapter() -> TypeAdapter[BaseMapping]:
    """Every kind's mapping, told apart by ``kind`` (connectors/registry.py). Built on first
    use: the kinds' packages import this package's ``common``."""
    from connectors.registry import mapping_union

    return TypeAdapter(mapping_union())


class MappingError(DsrflowError, ValueError):
    """A mapping that cannot be used. ``problems`` holds one line per thing that is wrong."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"mapping {path} is invalid:\n{listing}")


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, as far down as the path exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _describe(error: ErrorDetails, root: yaml.Node | None, kind: object) -> str:
    # Drop the discriminator tag pydantic puts first ("sql") so the path matches the file.
    loc = tuple(error["loc"])
    if loc and loc[0] == kind:
        loc = loc[1:]
    path = ".".join(str(p) for p in loc) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    line = _line_of(root, loc)
    where = f"{path} (line {line})" if line else path
    if error["type"] == "missing":
        return f"{where}: required but missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (misspelt?)"
    return f"{where}: {message}"


def parse_mapping(text: str, path: Path) -> BaseMapping:
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError(path, [f"{where}: not valid YAML: {problem}"]) from exc
    if not isinstance(data, dict):
        raise MappingError(path, ["(top level): a mapping must be a YAML object with a kind"])
    try:
        return _adapter().validate_python(data)
    except ValidationError as exc:
        # The node tree (for line numbers) only when something is wrong: parsing is slow.
        root = yaml.compose(text, Loader=SAFE_LOADER)
        raise MappingError(
            path, [_describe(e, root, data.get("kind")) for e in exc.errors()]
        ) from exc


def load_mapping(path: str | Path) -> BaseMapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(path, [f"cannot be read: {exc.strerror}"]) from exc
    return parse_mapping(text, path)


def mapping_json_schema() -> dict[str, Any]:
    schema = _adapter().json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dsrflow mapping"
    return schema


def mapping_json_schema_text() -> str:
    return json.dumps(mapping_json_schema(), indent=2, sort_keys=True) + "\n"


__all__ = [
    "BaseMapping",
    "MappingError",
    "load_mapping",
    "parse_mapping",
]
