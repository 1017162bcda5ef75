"""Files only their owner may read: exports, plans, receipts, manual answers hold personal data."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Create or replace a file readable by its owner only, never briefly wider."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)  # the umask can only narrow; make it exact
    tmp.replace(path)
