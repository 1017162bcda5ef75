"""The Atlassian Marketplace vendor API (REST v2), read only: the vendor cannot change
Atlassian's records, so the connector implements discovery alone.

``settings`` (the config entry), ``mapping`` (categories and the plan: always keep, with why),
``client`` (the one module speaking HTTP: paging, throttling, errors), ``contacts`` (who a
licence or transaction names, matched by key), ``connector`` (discovery). httpx is imported
only when a connector is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.marketplace.mapping import MarketplaceMapping
from connectors.marketplace.settings import MarketplaceSource
from connectors.registry import Kind

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.third_parties import SourceContext


def open_connector(
    name: str, source: MarketplaceSource, mapping: MarketplaceMapping, context: SourceContext
) -> Connector:
    from connectors.marketplace.connector import MarketplaceConnector

    return MarketplaceConnector(name, mapping, source, context=context)


KIND = Kind(
    name="marketplace", settings=MarketplaceSource, mapping=MarketplaceMapping, open=open_connector
)
