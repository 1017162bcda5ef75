"""Secrets for sources: from an environment variable, a file only its owner can read, or a
Prefect Secret block; never written into a mapping or config file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dsrflow.errors import DsrflowError


class SecretUnavailable(DsrflowError, LookupError):
    """A secret that is not set, not readable, or readable by others; names where it was looked."""


class SecretRef(BaseModel):
    """Where a secret lives: ``{env: NAME}``, ``{file: PATH}`` or ``{prefect_secret: block}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, description="environment variable holding the secret")
    file: Path | None = Field(default=None, description="file holding the secret (mode 0600)")
    prefect_secret: str | None = Field(default=None, description="name of a Prefect Secret block")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if sum(bool(x) for x in (self.env, self.file, self.prefect_secret)) != 1:
            raise ValueError("give exactly one of env, file and prefect_secret")
        return self

    def describe(self) -> str:
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"secret file {self.file}"
        return f"Secret block {self.prefect_secret}"

    def resolve(self) -> str:
        """The secret's value; a clear error naming where it was looked for."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise SecretUnavailable(f"the {self.describe()} is not set")
            return value
        if self.file:
            try:
                if self.file.stat().st_mode & 0o077:
                    raise SecretUnavailable(
                        f"the {self.describe()} is readable by others; chmod 600"
                    )
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretUnavailable(
                    f"the {self.describe()} cannot be read: {exc.strerror}"
                ) from exc
        # Only here does dsrflow reach for Prefect outside the flows: blocks live in its API.
        from prefect.blocks.system import Secret

        assert self.prefect_secret is not None  # exactly one of the three is set
        try:
            # Outside an event loop (settings are resolved before a flow starts) Prefect's
            # load is synchronous: it returns the block, not a coroutine.
            secret = cast(Secret, Secret.load(self.prefect_secret))
            return str(secret.get())
        except ValueError as exc:
            raise SecretUnavailable(f"the {self.describe()} cannot be loaded: {exc}") from exc
