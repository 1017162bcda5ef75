"""From a configured source to its connector."""

from __future__ import annotations

from connectors.base import Connector
from dsrflow.config import ConfigError, Source
from dsrflow.mapping import BaseMapping


def open_connector(
    name: str, source: Source, mapping: BaseMapping, phone_region: str = "NO"
) -> Connector:
    """Open the connector for one source; checks the mapping against the live source."""
    if source.kind == "sql":
        from connectors.masking import MaskingKey
        from connectors.sql import SqlConnector
        from dsrflow.mapping.sql import SqlMapping

        if not isinstance(mapping, SqlMapping):
            raise ConfigError(f"source {name!r} is kind sql but its mapping is {mapping.kind!r}")

        return SqlConnector(
            name,
            mapping,
            source.database_url(),
            batch_size=source.batch_size,
            timezone=source.timezone,
            phone_region=phone_region,
            mapping_path=source.mapping,
            masking_key=MaskingKey(source.masking_key),
        )
    if source.kind == "jira":
        from connectors.jira import JiraConnector
        from dsrflow.mapping.jira import JiraMapping

        if not isinstance(mapping, JiraMapping):
            raise ConfigError(f"source {name!r} is kind jira but its mapping is {mapping.kind!r}")
        return JiraConnector(name, mapping, source)
    if source.kind == "drive":
        from connectors.drive import DriveConnector
        from dsrflow.mapping.drive import DriveMapping

        if not isinstance(mapping, DriveMapping):
            raise ConfigError(f"source {name!r} is kind drive but its mapping is {mapping.kind!r}")
        return DriveConnector(name, mapping, source, phone_region=phone_region)
    if source.kind == "mail":
        from connectors.mail import MailConnector
        from dsrflow.mapping.mail import MailMapping

        if not isinstance(mapping, MailMapping):
            raise ConfigError(f"source {name!r} is kind mail but its mapping is {mapping.kind!r}")
        return MailConnector(name, mapping, source)
    raise ConfigError(f"source {name!r}: no connector for kind {source.kind!r}")
