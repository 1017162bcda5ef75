"""YAML loading for the config and the mappings: PyYAML's safe loader, in C where libyaml is
there (every wheel of PyYAML ships it). The pure-Python loader took about 0.1 s per mapping,
and every request loads its config and each mapping more than once."""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load``, with the C loader where there is one."""
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
