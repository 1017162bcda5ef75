"""One benchmark figure in the shape ``make bench`` collects (benchmarks/run_all.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def figure(
    name: str,
    value: float,
    unit: str,
    anchor: float | None,
    target: float | str | None,
) -> dict[str, Any]:
    """One figure as ``make bench`` collects them: value, what it is compared with, the ratio.
    ``target``: ``"<= X"`` / ``">= X"`` on the ratio (on the figure without an anchor), a bare
    number meaning ``<=`` (benchmarks/run_all.py), or None."""
    return {
        "name": name,
        "figure": round(value, 3),
        "unit": unit,
        "anchor": round(anchor, 3) if anchor is not None else None,
        "ratio": round(value / anchor, 3) if anchor else None,
        "target": target,
    }


def print_figures(found: list[dict[str, Any]], as_json: bool, say: Callable[[str], None]) -> None:
    """With ``--json`` the figures alone on stdout (make bench reads them), else one per line."""
    if as_json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        for item in found:
            say(f"  {item}")
