"""Secrets for sources: from an environment variable or a Prefect Secret block, never from a
mapping or config file."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SecretRef(BaseModel):
    """Where a secret lives: ``{env: NAME}`` or ``{prefect_secret: block-name}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, description="environment variable holding the secret")
    prefect_secret: str | None = Field(default=None, description="name of a Prefect Secret block")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if bool(self.env) == bool(self.prefect_secret):
            raise ValueError("give exactly one of env and prefect_secret")
        return self

    def describe(self) -> str:
        return (
            f"environment variable {self.env}"
            if self.env
            else f"Secret block {self.prefect_secret}"
        )

    def resolve(self) -> str:
        """The secret's value; a clear error naming where it was looked for."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise LookupError(f"the {self.describe()} is not set")
            return value
        # Only here does dsrflow reach for Prefect outside the flows: blocks live in its API.
        from prefect.blocks.system import Secret

        try:
            return str(Secret.load(self.prefect_secret).get())
        except ValueError as exc:
            raise LookupError(f"the {self.describe()} cannot be loaded: {exc}") from exc
