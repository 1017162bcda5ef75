"""The emulators' generated seed data is kept between sandbox starts (sandbox/seed_cache.py,
issue 18): a later start loads exactly what generating gave, without Faker; another generator,
or a file that is not exactly what was written, generates anew."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox import drive_seed, jira_seed, mail_seed, marketplace_seed, seed_cache
from sandbox.onprem_seed import DEMO_SUBJECT
from sandbox.runtime import start

GENERATORS: dict[str, tuple[seed_cache.Kept[Any], Callable[[Any], dict[str, int]]]] = {
    "mail": (seed_cache.MAIL, mail_seed.generate),
    "drive": (seed_cache.DRIVE, drive_seed.generate),
    "jira": (seed_cache.JIRA, jira_seed.generate),
    "marketplace": (seed_cache.MARKETPLACE, marketplace_seed.generate),
}
LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def everything(value: Any) -> Any:
    """A store's whole state, every attribute of every object in it (locks aside), in a form
    that compares by value and by type: an attribute the cache forgot shows as a difference."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {k: everything(v) for k, v in vars(value).items()})
    if isinstance(value, dict):
        return (type(value).__name__, [(k, everything(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [everything(v) for v in value])
    if isinstance(value, set | frozenset):
        return (type(value).__name__, sorted(map(repr, map(everything, value))))
    if isinstance(value, LOCK_TYPES):
        return "lock"
    if hasattr(value, "__dict__"):
        return (type(value).__name__, {k: everything(v) for k, v in vars(value).items()})
    return (type(value).__name__, value)


def spy(generate: Callable[[Any], dict[str, int]]) -> tuple[Callable[..., Any], list[int]]:
    calls: list[int] = []

    def counted(store: Any) -> dict[str, int]:
        calls.append(1)
        return generate(store)

    return counted, calls


@pytest.mark.parametrize("name", GENERATORS)
def test_a_loaded_store_is_exactly_the_generated_one(tmp_path: Path, name: str) -> None:
    kept, generate = GENERATORS[name]
    generated, counts, loaded = seed_cache.seeded(tmp_path, kept, generate)
    assert not loaded
    again, counts_again, loaded = seed_cache.seeded(tmp_path, kept, generate)
    assert loaded
    assert again is not generated
    assert counts_again == counts
    assert everything(again) == everything(generated)
    # Mail messages incl. ids and attachments, Drive files and cells, Jira issues: non-empty.
    assert sum(counts.values()) > 0 and counts == generate(kept.new())
    if name == "drive":  # the admin's sharing, given after loading as after generating
        for state in (generated, again):
            drive_seed.grant(state, "dsr-officer@fjelltopp.example")
        assert everything(again) == everything(generated)
    if name == "jira":  # a site user and its account are one object, as after add_user
        assert again.users and all(again.accounts[k] is u for k, u in again.users.items())


def test_the_stores_hold_what_the_demo_needs(tmp_path: Path) -> None:
    """A guard that ``everything`` compares the data itself: these are in it."""
    seed_cache.seeded(tmp_path, *GENERATORS["mail"])
    mail, _, _ = seed_cache.seeded(tmp_path, *GENERATORS["mail"])
    attachments = [a for _, stored in mail.all_messages() for a in stored.attachments]
    assert {"config-report.txt", "error.png", "order-form.pdf"} <= {a["name"] for a in attachments}
    seed_cache.seeded(tmp_path, *GENERATORS["drive"])
    drive, _, _ = seed_cache.seeded(tmp_path, *GENERATORS["drive"])
    cells = {v for f in drive.files.values() for s in f.sheets for row in s.rows for v in row}
    assert DEMO_SUBJECT in cells


def test_the_file_is_owner_only_json(tmp_path: Path) -> None:
    seed_cache.seeded(tmp_path, *GENERATORS["jira"])
    path = seed_cache.path_of(tmp_path, seed_cache.JIRA)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    head, _, body = path.read_bytes().partition(b"\n")
    assert json.loads(head)["generator"] == seed_cache.generator_key(seed_cache.JIRA)
    assert set(json.loads(body)) == set(seed_cache.JIRA.attributes)


def test_another_generator_generates_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept, generate = GENERATORS["mail"]
    seed_cache.seeded(tmp_path, kept, generate)
    counted, calls = spy(generate)
    monkeypatch.setattr(seed_cache, "generator_key", lambda _kept: "a newer generator")
    _, _, loaded = seed_cache.seeded(tmp_path, kept, counted)
    assert not loaded and calls == [1]
    _, _, loaded = seed_cache.seeded(tmp_path, kept, counted)  # rewritten under the new key
    assert loaded and calls == [1]


def test_the_key_follows_the_generating_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    before = seed_cache.generator_key(seed_cache.MAIL)
    changed = tmp_path / "mail_seed.py"
    changed.write_bytes(Path(str(mail_seed.__file__)).read_bytes() + b"\n# one more line\n")
    monkeypatch.setattr(mail_seed, "__file__", str(changed))
    assert seed_cache.generator_key(seed_cache.MAIL) != before
    assert seed_cache.generator_key(seed_cache.DRIVE) == seed_cache.generator_key(seed_cache.DRIVE)


def _rehash(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change the state and give it a matching digest: only the decoding can refuse it."""
    head, _, body = path.read_bytes().partition(b"\n")
    state = json.loads(body)
    edit(state)
    body = json.dumps(state).encode()
    header = {**json.loads(head), "sha256": hashlib.sha256(body).hexdigest()}
    path.write_bytes(json.dumps(header).encode() + b"\n" + body)


def _directory_in_place(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _too_deep(path: Path) -> None:
    """Lists in lists past Python's recursion limit, under a valid header."""
    head, _, _ = path.read_bytes().partition(b"\n")
    body = b'{"seq":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    header = {**json.loads(head), "sha256": hashlib.sha256(body).hexdigest()}
    path.write_bytes(json.dumps(header).encode() + b"\n" + body)


def _first_mailbox(state: dict[str, Any]) -> dict[str, Any]:
    return next(iter(state["mailboxes"].values()))


CORRUPTIONS: dict[str, Callable[[Path], object]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "a byte changed": lambda p: p.write_bytes(p.read_bytes().replace(b"Kari", b"Kara", 1)),
    "header not JSON": lambda p: p.write_bytes(b"{not json\n" + p.read_bytes()),
    "empty": lambda p: p.write_bytes(b""),
    "a directory": lambda p: _directory_in_place(p),
    "a field of the wrong type": lambda p: _rehash(p, lambda s: s.update(seq="many")),
    "a field missing": lambda p: _rehash(p, lambda s: _first_mailbox(s).pop("address")),
    "an unknown field": lambda p: _rehash(p, lambda s: _first_mailbox(s).update(extra=1)),
    "an attribute missing": lambda p: _rehash(p, lambda s: s.pop("tenant_domain")),
    "nested too deep": lambda p: _too_deep(p),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_broken_file_generates_anew(tmp_path: Path, corruption: str) -> None:
    kept, generate = GENERATORS["mail"]
    generated, _, _ = seed_cache.seeded(tmp_path, kept, generate)
    path = seed_cache.path_of(tmp_path, kept)
    CORRUPTIONS[corruption](path)
    counted, calls = spy(generate)
    store, _, loaded = seed_cache.seeded(tmp_path, kept, counted)
    assert not loaded and calls == [1]
    # Generated whole (the Graph ids drawn at random differ; the messages do not).
    assert store.count() == generated.count()
    if path.is_dir():
        shutil.rmtree(path)
    else:
        again, _, loaded = seed_cache.seeded(tmp_path, kept, counted)  # and written again
        assert loaded and calls == [1]
        assert everything(again) == everything(store)


_WARM_START = r"""
import sys
from pathlib import Path
from sandbox.runtime import start
with start(Path(sys.argv[1])) as box:
    print(box.counts["mail.messages"], "faker" in sys.modules)
"""


def test_a_warm_start_neither_generates_nor_imports_faker(tmp_path, monkeypatch):
    box = tmp_path / "sandbox"
    with start(box) as cold:
        counts = cold.counts
    for module in (drive_seed, jira_seed, mail_seed, marketplace_seed):

        def refuse(*_args: Any, **_kwargs: Any) -> dict[str, int]:
            raise AssertionError("generated again on a warm start")

        monkeypatch.setattr(module, "generate", refuse)
    with start(box) as warm:
        assert warm.counts == counts
    done = subprocess.run(
        [sys.executable, "-c", _WARM_START, str(box)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.split() == [str(counts["mail.messages"]), "False"]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_demo_request_on_a_warm_sandbox_finds_the_63_records(tmp_path, monkeypatch):
    from flows.access import access_request

    box = tmp_path / "sandbox"
    start(box).stop()  # the first start generates and keeps the seeds
    for module in (drive_seed, jira_seed, mail_seed, marketplace_seed):
        monkeypatch.setattr(module, "generate", None)  # a warm start that called one would fail
    with start(box) as warm:
        monkeypatch.setenv("DSRFLOW_CONFIG", str(warm.config_path))
        result = access_request(request_id="DSR-2026-0001", subject_emails=[DEMO_SUBJECT])
    export = json.loads((Path(result.export_dir) / "export.json").read_text())
    assert export["total_records"] == 63  # as `dsr demo` on a fresh folder (README: make demo)
    assert {"mail", "drive", "jira", "marketplace"} <= set(export["records"])
