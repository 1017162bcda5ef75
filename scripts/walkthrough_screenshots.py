"""Copy the walk-through's screenshots (tests/test_browser_walkthrough.py writes them to
``.artifacts/browser/``) to ``docs/walkthrough/``, where README's "A request from ticket to
answer" shows them.

    .venv/bin/python scripts/walkthrough_screenshots.py

Each PNG is re-compressed losslessly (its image data deflated again at zlib's highest level;
the pixels stay as Chromium took them) and must come out under ``LIMIT`` bytes: the test takes
them in a 1280-pixel wide window so that they do. Standard library only (no Pillow in the project).
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / ".artifacts" / "browser"
TARGET = REPO / "docs" / "walkthrough"
LIMIT = 150_000
# The README's steps, in order (the test's names without the ``walkthrough-`` prefix).
CHOSEN = (
    "01-intake-quick-run",
    "02-intake-artifact",
    "03-confirm-paused",
    "04-confirm-form",
    "05-access-completed",
    "06-case-page-answered",
    "07-case-page-delivered",
)
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    found, at = [], len(SIGNATURE)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        found.append((kind, data[at + 8 : at + 8 + length]))
        at += 12 + length
    return found


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def recompress(data: bytes) -> bytes:
    """The same PNG with its IDAT data deflated at level 9, in one chunk; other chunks kept."""
    parts = chunks(data)
    pixels = zlib.decompress(b"".join(body for kind, body in parts if kind == b"IDAT"))
    out, written = [SIGNATURE], False
    for kind, body in parts:
        if kind == b"IDAT":
            if not written:
                out.append(chunk(b"IDAT", zlib.compress(pixels, 9)))
                written = True
            continue
        out.append(chunk(kind, body))
    return b"".join(out)


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    problems = []
    for name in CHOSEN:
        source = SOURCE / f"walkthrough-{name}.png"
        if not source.exists():
            problems.append(f"{source} is missing: run tests/test_browser_walkthrough.py first")
            continue
        data = recompress(source.read_bytes())
        smaller = min(data, source.read_bytes(), key=len)
        if len(smaller) > LIMIT:
            problems.append(f"{source.name} is {len(smaller)} bytes, over {LIMIT}")
            continue
        target = TARGET / f"{name}.png"
        target.write_bytes(smaller)
        print(f"{target.relative_to(REPO)}: {len(smaller)} bytes")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
