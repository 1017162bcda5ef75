"""Before a request reads or changes anything: can every source do what the request needs?

For each source and the right a request exercises: the mapping is valid and matches the live
source (tables and columns, folders and spreadsheets, mailboxes, projects and fields); the source
is reachable with the configured credentials; the connector can carry out the actions the right
plans; the account holds the permissions or scopes those actions need, where the source's API
tells cheaply; and erasure's masking has its key. Each problem is one line naming the source and
the setting to fix, so that a missing precondition stops a request before a plan is shown or
approved, never halfway through its execution.

``dsr check`` runs this for every right; the request flows run it for their own right.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from connectors import SourceContext, open_connector
from connectors.base import Capability, Connector, SourceUnavailable, capabilities
from dsrflow.config import Config, ConfigError
from dsrflow.mapping import BaseMapping, MappingError, load_mapping
from dsrflow.mapping.common import DeleteOnly
from dsrflow.request import RequestType

# The capability the actions of a right need from a connector. Restriction needs none: a source
# that cannot mark records is restricted in the ledger. Rectification is left out: a source that
# cannot rectify plans its records not_applicable (mail), it never fails them.
_NEEDED: dict[RequestType, Capability] = {
    RequestType.ERASURE: Capability.ERASE,
    RequestType.CONSENT_WITHDRAWAL: Capability.ERASE,
}


class PreflightError(ConfigError):
    """Some source cannot do what the request needs; ``problems`` holds one line each."""

    def __init__(self, right: RequestType, problems: list[str]) -> None:
        self.right = right
        self.problems = problems
        if len(problems) == 1:
            text = f"not ready for {right.value}: {problems[0]}"
        else:
            listing = "\n".join(f"  - {p}" for p in problems)
            text = f"not ready for {right.value}, {len(problems)} problems:\n{listing}"
        super().__init__(text)


@dataclass
class Preflight:
    """What the checks found for one right: the mappings that loaded, problems, sources ok."""

    right: RequestType
    mappings: dict[str, BaseMapping] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise PreflightError(self.right, self.problems)


def as_right(right: RequestType | str | None) -> RequestType:
    """None: discovery only, which is what an access request needs."""
    return RequestType(right) if right is not None else RequestType.ACCESS


def preflight(config: Config, right: RequestType | str | None = None) -> Preflight:
    """Check every source for ``right``; never raises for a problem of a source."""
    wanted = as_right(right)
    return preflight_rights(config, [wanted])[wanted]


# A command that checked the sources just before it runs the request's flow in this process
# hands the passed check over, so the flow does not open every source a second time (issue
# 18). Process-local and taken once: a run started any other way (the UI, a deployment, a
# later command) checks again, and so does one that starts too long after the check.
HANDOVER_SECONDS = 120.0
_handed_over: dict[tuple[str, RequestType], tuple[float, Preflight]] = {}


def _fingerprint(config: Config) -> str:
    return hashlib.sha256(config.model_dump_json().encode("utf-8")).hexdigest()


def hand_over(config: Config, checked: Preflight) -> None:
    """Keep a passed check of ``config`` for the flow this process runs next."""
    if not checked.problems:
        _handed_over[(_fingerprint(config), checked.right)] = (time.monotonic(), checked)


def take_over(config: Config, right: RequestType | str | None = None) -> Preflight | None:
    """The check handed over for this very config and right, if fresh; it is used once."""
    kept = _handed_over.pop((_fingerprint(config), as_right(right)), None)
    if kept is None or time.monotonic() - kept[0] > HANDOVER_SECONDS:
        return None
    return kept[1]


def preflight_rights(config: Config, rights: Sequence[RequestType]) -> dict[RequestType, Preflight]:
    """Check every source for each of ``rights``, opening each source once."""
    results = {right: Preflight(right) for right in rights}
    for name in config.sources:
        found = _check_source(config, name, rights)
        for right, result in results.items():
            if found.mapping is not None:
                result.mappings[name] = found.mapping
            problems = found.common + found.by_right.get(right, [])
            if problems:
                result.problems += [f"{name}: {p}" for p in problems]
            else:
                result.ready.append(name)
    return results


@dataclass
class EveryRight:
    """``dsr check``: the rights each source is ready for, and every problem once."""

    ready: dict[str, list[RequestType]]
    problems: list[str]


def every_right(config: Config) -> EveryRight:
    """The checks of every right, each source opened once (``dsr check``, ``dsr stack up``)."""
    ready: dict[str, list[RequestType]] = {name: [] for name in config.sources}
    problems: list[str] = []
    for right, checked in preflight_rights(config, list(RequestType)).items():
        problems += [p for p in checked.problems if p not in problems]
        for name in checked.ready:
            ready[name].append(right)
    return EveryRight(ready, problems)


@dataclass
class _SourceCheck:
    mapping: BaseMapping | None = None
    common: list[str] = field(default_factory=list)  # problems whatever the right
    by_right: dict[RequestType, list[str]] = field(default_factory=dict)


def _check_source(config: Config, name: str, rights: Sequence[RequestType]) -> _SourceCheck:
    source = config.sources[name]
    found = _SourceCheck()
    try:
        found.mapping = load_mapping(source.mapping)
    except MappingError as exc:
        found.common += [f"mapping {exc.path}: {p}" for p in exc.problems]
        return found
    try:
        connector = open_connector(name, source, found.mapping, SourceContext.of(config))
    except MappingError as exc:  # the mapping against the live source
        found.common += [f"mapping {exc.path}: {p}" for p in exc.problems]
        return found
    except SourceUnavailable as exc:
        found.common.append(f"cannot be reached or refused access: {exc.reason}")
        return found
    except (ConfigError, LookupError, ValueError) as exc:
        found.common.append(str(exc))
        return found
    try:
        for right in rights:
            found.by_right[right] = list(_check_right(connector, found.mapping, source.kind, right))
    finally:
        connector.close()
    return found


def _check_right(
    connector: Connector, mapping: BaseMapping, kind: str, right: RequestType
) -> Iterator[str]:
    needed = _NEEDED.get(right)
    if needed and _plans(mapping, right) and needed not in capabilities(connector):
        yield f"a {kind} source cannot {needed.value}, which {right.value} needs"
    check = getattr(connector, "preflight", None)
    if check is not None:
        try:
            yield from check(right)
        except SourceUnavailable as exc:
            yield f"cannot be reached or refused access: {exc.reason}"


def _plans(mapping: BaseMapping, right: RequestType) -> bool:
    """Whether the mapping's kind plans actions for ``right`` at all (a kind that keeps the
    base class's consent withdrawal plans none; a read-only kind plans only keeps)."""
    if mapping.read_only:
        return False
    if right is RequestType.CONSENT_WITHDRAWAL:
        return isinstance(mapping, DeleteOnly) or (
            type(mapping).plan_consent_withdrawal is not BaseMapping.plan_consent_withdrawal
        )
    return True
