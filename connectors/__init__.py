"""Connectors: one module per kind of source system, all behind ``connectors.base.Connector``.

Connectors never import Prefect, so they can be tested and reused on their own.
"""

from connectors.base import Capability, Connector, ErasingConnector, SourceUnavailable
from connectors.registry import open_connector

__all__ = [
    "Capability",
    "Connector",
    "ErasingConnector",
    "SourceUnavailable",
    "open_connector",
]
