"""The kinds of source, found by name: ``connectors.<name>`` is a package whose ``KIND`` says
what its settings and mapping look like and how to open its connector (as SQLAlchemy finds a
dialect). Adding a kind is one package and one line in ``NAMES``; the config's and the
mappings' unions and their JSON Schemas are built from this table."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from connectors.third_parties import SourceContext
from dsrflow.errors import ConfigError

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.settings import SourceSettings
    from dsrflow.mapping.common import BaseMapping

NAMES = (
    "sql",
    "drive",
    "jira",
    "mail",
    "marketplace",
    "analytics",
)


@dataclass(frozen=True)
class Kind:
    """One kind of source. ``open`` imports the SDK only when a connector is opened, so that
    reading a config or a mapping stays light."""

    name: str
    settings: type[SourceSettings]
    mapping: type[BaseMapping]
    open: Callable[[str, Any, Any, SourceContext], Connector]


@cache
def kinds() -> dict[str, Kind]:
    return {name: importlib.import_module(f"connectors.{name}").KIND for name in NAMES}


def kind(name: str) -> Kind:
    known = kinds()
    if name not in known:
        raise ConfigError(f"no kind of source {name!r}; known: {', '.join(known)}")
    return known[name]


def source_union() -> Any:
    """Every kind's settings, told apart by ``kind`` (the config's ``sources`` entries)."""
    members = tuple(k.settings for k in kinds().values())
    return Annotated[Union[members], Field(discriminator="kind")]  # noqa: UP007


def mapping_union() -> Any:
    """Every kind's mapping, told apart by ``kind``."""
    members = tuple(k.mapping for k in kinds().values())
    return Annotated[Union[members], Field(discriminator="kind")]  # noqa: UP007


def open_connector(
    name: str, source: SourceSettings, mapping: BaseMapping, context: SourceContext | None = None
) -> Connector:
    """Open the connector for one source; checks the mapping against the live source.
    ``context``: the phone region and the controller's own addresses (``SourceContext.of(config)``;
    default: region NO, no own addresses)."""
    known = kind(source.kind)
    if not isinstance(mapping, known.mapping):
        raise ConfigError(
            f"source {name!r} is kind {source.kind} but its mapping is {mapping.kind_name()!r}"
        )
    return known.open(name, source, mapping, context or SourceContext())
