"""Keeping what the seed generators put into the emulators between sandbox starts (issue 18).

Generating the small profile's Drive, mail, Jira and Marketplace data with Faker (and importing
Faker) costs a large part of a warm ``dsr demo``'s start, yet the generators give the same data
every time. After generating, a part writes its store's state to ``<dir>/seeds/<part>.json``
(the folder 0700, the file 0600: the data is invented, but shaped like personal data) with a
key of what generated it: the source of the seed module, of the emulator store module it fills,
of the modules holding the demo subject's constants and of the code here, Faker's version, the
Python version and the profile. A later start with the same key loads the file into a fresh
store instead of generating; any other key, or a file that is missing, unreadable, malformed
or fails its digest, generates anew and rewrites it. A file is decoded whole into a store nobody
sees yet, so a broken one leaves no half state behind: that store is dropped.

A loaded store equals the generated one attribute by attribute (tests/test_seed_cache.py),
including what generating drew at random (Graph message and attachment ids, Drive file ids,
timestamps of "now"): the file fixes those until the key changes. Erasures in the sandbox change
only the emulator's memory, never the file, so every start begins from the seeded data as
before. The large profile and fixture directories are loaded as before, without this cache.

The file: one line of JSON with the key, the counts and the SHA-256 of the rest, then the
state as JSON, written and read by pydantic from the stores' own annotations (strict, extra
fields refused; not pickle, which could run code on loading). A field left out under a valid
digest takes its class's default: the file is the owner's, and the digest is there to catch a
file cut short or damaged, not edited.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from dsrflow.private_files import write_private
from sandbox import drive_seed, jira_seed, mail_seed, marketplace_seed, onprem_seed
from sandbox.emulators.google import state as google_state
from sandbox.emulators.google.state import DriveFile, GoogleState, SharedDrive
from sandbox.emulators.graph import store as graph_store
from sandbox.emulators.graph.store import GraphStore, Mailbox
from sandbox.emulators.jira import store as jira_store
from sandbox.emulators.jira.store import Issue, JiraStore, ServiceDesk, User
from sandbox.emulators.marketplace import store as marketplace_store
from sandbox.emulators.marketplace.store import MarketplaceStore

FOLDER = "seeds"
PROFILE = "small"  # the only profile kept: the large one is for benchmarks, generated each time

S = TypeVar("S")


@dataclass(frozen=True)
class Kept(Generic[S]):
    """How one part's store is kept: the attributes its generator fills, with their types,
    and the modules whose code decides what it holds."""

    name: str
    new: Callable[[], S]
    attributes: Mapping[str, Any]
    modules: tuple[ModuleType, ...]
    # Dicts that hold the very objects of another after generating (checked on saving,
    # restored on loading): attribute -> the attribute it copies.
    aliases: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def state(self) -> TypeAdapter[dict[str, Any]]:
        """The kept attributes as one typed JSON object."""
        # The functional form: the keys are this part's attributes, known only here.
        shape = TypedDict(f"{self.name.title()}State", dict(self.attributes))  # type: ignore[misc]  # noqa: UP013
        return TypeAdapter(with_config(ConfigDict(strict=True, extra="forbid"))(shape))


MAIL = Kept(
    "mail",
    lambda: GraphStore(tenant_domain=mail_seed.TENANT),
    {"tenant_domain": str, "mailboxes": dict[str, Mailbox], "seq": int},
    (mail_seed, graph_store),
)
DRIVE = Kept(
    "drive",
    GoogleState,
    {"files": dict[str, DriveFile], "drives": dict[str, SharedDrive], "next_number": int},
    (drive_seed, google_state),
)
JIRA = Kept(
    "jira",
    JiraStore,
    {
        "users": dict[str, User],
        "servicedesks": dict[str, ServiceDesk],
        "issues": dict[str, Issue],
        "by_id": dict[str, str],
        "custom_fields": dict[str, str],
        "credentials": tuple[str, str] | None,
        "api_tokens": dict[str, str],
        "denied_permissions": set[str],
        "_next_issue": int,
        "_next_comment": int,
        "_next_history": int,
        "_next_request_type": int,
        "search_page_cap": int | None,
    },
    (jira_seed, jira_store),
    # Every site user is an account too (JiraStore.add_user): the very same User objects.
    aliases={"accounts": "users"},
)
MARKETPLACE = Kept(
    "marketplace",
    MarketplaceStore,
    {
        "vendor_id": int,
        "licenses": list[dict[str, Any]],
        "transactions": list[dict[str, Any]],
        "credentials": tuple[str, str] | None,
    },
    (marketplace_seed, marketplace_store),
)


def path_of(directory: Path, kept: Kept[Any]) -> Path:
    return directory / FOLDER / f"{kept.name}.json"


@cache
def _versions() -> bytes:
    python = ".".join(map(str, sys.version_info[:2]))
    return f"faker=={version('faker')};python=={python};profile={PROFILE}".encode()


def generator_key(kept: Kept[Any]) -> str:
    """What decides the generated state: the code that generates and holds it (and the demo
    subject's constants, in onprem_seed), the code here, and Faker's and Python's versions."""
    digest = hashlib.sha256()
    for module in (*kept.modules, onprem_seed, sys.modules[__name__]):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(_versions())
    return digest.hexdigest()


def seeded(
    directory: Path, kept: Kept[S], generate: Callable[[S], dict[str, int]]
) -> tuple[S, dict[str, int], bool]:
    """A store filled from ``directory``'s file when its key is the current one, else by
    ``generate`` (and the file rewritten). Returns the store, its counts and whether it was
    loaded."""
    path = path_of(directory, kept)
    key = generator_key(kept)
    loaded = load(path, kept, key)
    if loaded is not None:
        return loaded[0], loaded[1], True
    store = kept.new()
    counts = generate(store)
    # Not kept (say, a folder in the file's place): the next start generates again.
    with contextlib.suppress(OSError):
        save(path, kept, key, store, counts)
    return store, counts, False


def load(path: Path, kept: Kept[S], key: str) -> tuple[S, dict[str, int]] | None:
    """The kept store and counts, or None when the file is absent, of another generator, or
    in any way not what ``save`` wrote."""
    try:
        data = path.read_bytes()
        head, _, body = data.partition(b"\n")
        header = json.loads(head)
        if header["generator"] != key or header["sha256"] != hashlib.sha256(body).hexdigest():
            return None
        counts = {str(k): int(v) for k, v in header["counts"].items()}
        state = kept.state.validate_json(body)
        if set(state) != set(kept.attributes):
            return None
        store = kept.new()
        for name, value in state.items():
            setattr(store, name, value)
        for alias, original in kept.aliases.items():
            setattr(store, alias, dict(getattr(store, original)))
        return store, counts
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # regenerated; the store decoded so far is dropped with this frame


def save(path: Path, kept: Kept[S], key: str, store: S, counts: dict[str, int]) -> None:
    """Write the store's state (owner-only, replacing the file at once: never half a file)."""
    for alias, original in kept.aliases.items():
        copy, source = getattr(store, alias), getattr(store, original)
        if copy.keys() != source.keys() or any(copy[k] is not source[k] for k in source):
            raise ValueError(f"{kept.name}: {alias} is no longer a copy of {original}")
    body = kept.state.dump_json({name: getattr(store, name) for name in kept.attributes})
    header = {"generator": key, "counts": counts, "sha256": hashlib.sha256(body).hexdigest()}
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    write_private(path, json.dumps(header).encode("utf-8") + b"\n" + body)
