"""The base of every settings model a person writes by hand: a misspelt key is an error, not a
setting silently ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
