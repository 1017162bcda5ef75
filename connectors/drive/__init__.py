"""Google Drive spreadsheets through Drive v3 and Sheets v4 (google-api-python-client).

``settings`` (the config entry), ``mapping`` (the declarative mapping), ``connector`` (a facade
over the parts its docstring lists; ``client`` is the one module that touches the SDK). The SDK
is imported only when a connector is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.drive.mapping import DriveMapping
from connectors.drive.settings import DriveSource
from connectors.registry import Kind

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.third_parties import SourceContext


def open_connector(
    name: str, source: DriveSource, mapping: DriveMapping, context: SourceContext
) -> Connector:
    from connectors.drive.connector import DriveConnector

    return DriveConnector(name, mapping, source, context=context)


KIND = Kind(name="drive", settings=DriveSource, mapping=DriveMapping, open=open_connector)
