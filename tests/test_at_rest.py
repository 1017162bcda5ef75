"""Nothing of the subject at rest in Prefect's home after every kind of request.

Every request type runs once through Prefect as the UI's run form starts it (the subject's
identifiers and corrections in the run's parameters), including a refused identifier and a
source that answers 500 (the vendor's error carries the query). Then every file of that Prefect
home (the database with its WAL, result storage, logs) is read byte by byte for anything that
names the subject or anyone else in the data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.onprem_seed import DEMO_PHONE, DEMO_SUBJECT

ROOT = Path(__file__).resolve().parents[1]
# What would identify a person: the subject's address (also URL-encoded), her phone without
# its "+", her name and the corrected name, and any address of the data's example domains.
FORBIDDEN = [
    re.compile(re.escape(DEMO_SUBJECT.encode()), re.I),
    re.compile(re.escape(DEMO_SUBJECT.replace("@", "%40").encode()), re.I),
    re.compile(re.escape(DEMO_PHONE.lstrip("+").encode())),
    re.compile(rb"kari\W{0,3}nordmann", re.I),
    re.compile(rb"nyenavn", re.I),
    re.compile(rb"[\w.+-]+(@|%40)[\w-]+\.example\b", re.I),
    re.compile(rb"[\w.+-]+(@|%40)example\.(com|org|net|no)\b", re.I),
]


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("at-rest")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    ran = subprocess.run(
        [sys.executable, "-m", "tests.support.every_request", str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return folder / "prefect", ran.stdout


def test_every_request_type_ran_as_expected(prefect_home):
    _, output = prefect_home
    states = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert states["access"] == "COMPLETED"
    assert states["invalid"] == "FAILED"
    assert states["source_down"] == "FAILED"
    for name in ("rectification", "restriction", "consent", "erasure", "sweep", "intake"):
        assert states[name] == "COMPLETED", (name, output[-2000:])
    assert states["confirm"] == "COMPLETED", output[-2000:]


def test_nothing_in_prefects_home_names_a_person(prefect_home):
    home, _ = prefect_home
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.startswith("prefect.db") for p in files), files
    found = []
    for path in files:
        data = path.read_bytes()
        for pattern in FORBIDDEN:
            for match in pattern.finditer(data):
                found.append((path.relative_to(home), pattern.pattern, match.group()[:60]))
    assert found == []


def test_no_result_was_persisted(prefect_home):
    home, _ = prefect_home
    storage = home / "storage"
    assert not storage.exists() or not any(storage.iterdir())
