"""One benchmark figure in the shape ``make bench`` collects (benchmarks/run_all.py)."""

from __future__ import annotations

from typing import Any


def figure(
    name: str, value: float, unit: str, anchor: float, target: float | None
) -> dict[str, Any]:
    """One figure as ``make bench`` collects them: value, what it is compared with, the ratio."""
    ratio = round(value / anchor, 3) if anchor else None
    return {
        "name": name,
        "figure": round(value, 3),
        "unit": unit,
        "anchor": anchor,
        "ratio": ratio,
        "target": target,
    }
