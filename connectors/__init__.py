"""Connectors: one package per kind of source (``connectors/<kind>/``: settings, mapping,
client, connector, retention), found by name through ``connectors.registry``; each implements
the protocols of ``connectors.base`` for the rights it serves.

Connectors never import Prefect, so they can be tested and reused on their own.
"""

from connectors.base import (
    Capability,
    Connector,
    Discovering,
    Erasing,
    Rectifying,
    Restricting,
    SourceUnavailable,
    Sweeping,
    capabilities,
)
from connectors.registry import open_connector
from connectors.third_parties import SourceContext

__all__ = [
    "Capability",
    "Connector",
    "Discovering",
    "Erasing",
    "Rectifying",
    "Restricting",
    "SourceContext",
    "SourceUnavailable",
    "Sweeping",
    "capabilities",
    "open_connector",
]
