"""What a Jira site says about itself that does not change within a request: its deployment
and version (serverInfo), its fields' ids (``/field``) and its service desks. Read once and
shared by every connector of this process for the same site and account for
``metadata_cache_s`` seconds, so that a request's discovery rounds, its erasure and its
verification do not read them again.

With ``site_facts_file`` they are also kept between commands (each ``dsr`` command is a process
of its own, and would otherwise read all three again): one JSON file, owner-only (0600, its
folder 0700), the site known only by a hash of its URL, account and token hash, each entry
dropped when ``metadata_cache_s`` has passed since it was read from Jira. A file that is not
the owner's alone, or not in this shape, is ignored and replaced. It holds the version and
deployment type, field ids and names, desk ids and their projects' ids, keys and names: no
person's data, nor the site's address.

Never cached here: anything about people (users, customers, issues): those are read fresh by
every connector (a customer added a minute ago must be found). A mapped project or custom field
the cached facts lack makes the caller read them again before it concludes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
FILE_VERSION = 1
# What the file keeps of each answer: what the connector reads, no URL (the site's address is
# in serverInfo's baseUrl and the desks' links).
SERVER_INFO_KEPT = ("versionNumbers", "deploymentType")
DESK_KEPT = ("id", "projectId", "projectKey", "projectName")


@dataclass
class SiteFacts:
    """The cached facts of one site; each None until read. ``keep`` sets them (and writes the
    file, when there is one)."""

    server_info: dict[str, Any] | None = None
    fields: dict[str, str] | None = None  # JQL clause name -> field id
    servicedesks: list[dict[str, Any]] | None = None
    read_at: float = field(default_factory=time.monotonic)
    store: FactsFile | None = None

    def keep(self, **facts: Any) -> None:
        """Set the facts just read from Jira (``server_info``, ``fields``, ``servicedesks``)."""
        for name, value in facts.items():
            setattr(self, name, value)
        if self.store is not None:
            self.store.save(self)


@dataclass(frozen=True)
class FactsFile:
    """One site's entry in the owner-only facts file."""

    path: Path
    key: str  # the site key's hash: no URL, account or token in the file
    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time

    def load(self) -> SiteFacts | None:
        """The site's facts from the file, if there and younger than ``ttl_s``."""
        entry = _read(self.path).get(self.key)
        age = _age(entry, self.wall())
        if age is None or age > self.ttl_s:
            return None
        assert isinstance(entry, dict)  # _age says so
        server_info, fields, desks = (
            entry.get("server_info"),
            entry.get("fields"),
            entry.get("servicedesks"),
        )
        if not (
            isinstance(server_info, dict | None)
            and (fields is None or _str_map(fields))
            and (desks is None or (isinstance(desks, list) and all(map(_desk, desks))))
        ):
            return None
        # The in-process expiry counts from when Jira was read, not from this load.
        return SiteFacts(server_info, fields, desks, read_at=self.clock() - age, store=self)

    def save(self, facts: SiteFacts) -> None:
        """Write the site's facts into the file (expired entries of other sites dropped)."""
        now = self.wall()
        read_at = now - (self.clock() - facts.read_at)
        sites = {
            key: entry
            for key, entry in _read(self.path).items()
            if (age := _age(entry, now)) is not None and age <= self.ttl_s
        }
        sites[self.key] = {
            "read_at": read_at,
            "server_info": _only(facts.server_info, SERVER_INFO_KEPT),
            "fields": facts.fields,
            "servicedesks": [_only(d, DESK_KEPT) for d in facts.servicedesks]
            if facts.servicedesks is not None
            else None,
        }
        try:
            _write(self.path, {"version": FILE_VERSION, "sites": sites})
        except OSError as exc:  # only a cache: the next command reads Jira again
            log.warning("Jira site facts not kept in %s: %s", self.path, exc.strerror or exc)


def _only(value: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    return None if value is None else {k: value[k] for k in keys if k in value}


def _age(entry: object, now: float) -> float | None:
    """Seconds since the entry was read from Jira; None for an entry not in the file's shape
    or read "in the future" (a clock set back)."""
    if not isinstance(entry, dict):
        return None
    read_at = entry.get("read_at")
    if not isinstance(read_at, int | float) or isinstance(read_at, bool):
        return None
    age = now - read_at
    return age if age >= 0 else None


def _desk(value: object) -> bool:
    return isinstance(value, dict) and "id" in value and isinstance(value.get("projectKey"), str)


def _str_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _read(path: Path) -> dict[str, Any]:
    """The file's sites; nothing when it is missing, unreadable, in another shape, or readable
    or owned by anyone but this user (then it is not trusted, and the next save replaces it)."""
    try:
        with path.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if status.st_uid != os.geteuid() or status.st_mode & 0o077:
                return {}
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        return {}
    sites = data.get("sites")
    return sites if isinstance(sites, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically, owner-only from its first byte; a temporary file of its
    own per writer, so two commands saving at once cannot mix their bytes."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_lock = threading.Lock()
_sites: dict[str, SiteFacts] = {}


def site_key(url: str, account: str, secret: str) -> str:
    """The cache key of a site as one account sees it (what it may see depends on who asks);
    the secret enters only as a hash."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return f"{url.rstrip('/')}|{account}|{digest}"


def facts(
    key: str,
    ttl_s: float,
    clock: Callable[[], float] = time.monotonic,
    *,
    path: Path | None = None,
    wall: Callable[[], float] = time.time,
) -> SiteFacts:
    """The site's facts, empty when none are cached (in this process, or in the file at
    ``path``) or they are older than ``ttl_s`` (0: not shared: a fresh, private ``SiteFacts``)."""
    if ttl_s <= 0:
        return SiteFacts()
    store = None
    if path is not None:
        hashed = hashlib.sha256(key.encode()).hexdigest()
        store = FactsFile(path, hashed, ttl_s, clock, wall)
    with _lock:
        cached = _sites.get(key)
        if cached is None or clock() - cached.read_at > ttl_s:
            cached = (store.load() if store else None) or SiteFacts(read_at=clock(), store=store)
            _sites[key] = cached
        elif cached.store is None:
            cached.store = store
        return cached


def forget_all() -> None:
    """Drop every cached site of this process (tests that change a site's fields or desks
    under one URL); a facts file is the caller's."""
    with _lock:
        _sites.clear()
