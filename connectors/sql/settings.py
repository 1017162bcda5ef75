"""The settings of a SQL source (`kind: sql` in the config)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from connectors.settings import SourceSettings
from dsrflow.errors import ConfigError
from dsrflow.secrets import SecretRef


class SqlSource(SourceSettings):
    kind: Literal["sql"]
    url: str | None = Field(default=None, description="SQLAlchemy URL; prefer url_env for secrets")
    url_env: str | None = Field(default=None, description="environment variable with the URL")
    batch_size: int = Field(default=500, ge=1, le=10_000, description="keys per IN-list query")
    timezone: str = Field(default="UTC", description="zone of naive timestamps in this database")
    masking_key: SecretRef | None = Field(
        default=None,
        description="key of hmac_sha256 masking for this database; default: the config's "
        "masking_key, else the environment variable DSRFLOW_HMAC_KEY",
    )

    @model_validator(mode="after")
    def _one_url(self) -> SqlSource:
        if bool(self.url) == bool(self.url_env):
            raise ValueError("give exactly one of url and url_env")
        return self

    def database_url(self) -> str:
        if self.url:
            return self.url
        assert self.url_env is not None
        value = os.environ.get(self.url_env)
        if not value:
            raise ConfigError(f"environment variable {self.url_env} (the database URL) is not set")
        return value
