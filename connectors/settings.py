"""What every source's settings share: its kind, its mapping file, and no unknown keys."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class SourceSettings(BaseModel):
    """One entry of the config's ``sources``; each kind narrows ``kind`` to its own name."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    mapping: Path
