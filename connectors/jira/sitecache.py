"""What a Jira site says about itself that does not change within a request: its deployment
and version (serverInfo), its fields' ids (``/field``) and its service desks. Read once and
shared by every connector of this process for the same site and account for
``metadata_cache_s`` seconds, so that a request's discovery rounds, its erasure and its
verification do not read them again.

Never cached here: anything about people (users, customers, issues): those are read fresh by
every connector (a customer added a minute ago must be found). A mapped project or custom field
the cached facts lack makes the caller read them again before it concludes anything.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SiteFacts:
    """The cached facts of one site; each None until read."""

    server_info: dict[str, Any] | None = None
    fields: dict[str, str] | None = None  # JQL clause name -> field id
    servicedesks: list[dict[str, Any]] | None = None
    read_at: float = field(default_factory=time.monotonic)


_lock = threading.Lock()
_sites: dict[str, SiteFacts] = {}


def site_key(url: str, account: str, secret: str) -> str:
    """The cache key of a site as one account sees it (what it may see depends on who asks);
    the secret enters only as a hash."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return f"{url.rstrip('/')}|{account}|{digest}"


def facts(key: str, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> SiteFacts:
    """The site's facts, empty when none are cached or they are older than ``ttl_s`` (0: not
    shared: a fresh, private ``SiteFacts``)."""
    if ttl_s <= 0:
        return SiteFacts()
    with _lock:
        cached = _sites.get(key)
        if cached is None or clock() - cached.read_at > ttl_s:
            cached = SiteFacts(read_at=clock())
            _sites[key] = cached
        return cached


def forget_all() -> None:
    """Drop every cached site (tests that change a site's fields or desks under one URL)."""
    with _lock:
        _sites.clear()
