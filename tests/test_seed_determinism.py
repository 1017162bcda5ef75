"""The sandbox's Jira data is the same whatever ran before it in the process.

A kept on-prem database (sandbox/onprem_reuse.py) skips the on-prem seed, which used to seed
Faker's shared random the Jira seed relied on for its locale choices.
"""

from __future__ import annotations

import subprocess
import sys

_SEED_AND_PRINT = r"""
import random, sys
from faker import Faker
from sandbox import jira_seed
from sandbox.emulators.jira.store import JiraStore

if sys.argv[1] == "after-other-faker-use":
    Faker.seed(12345)
    Faker(["no_NO"]).name()
    random.random()
store = JiraStore()
jira_seed.generate(store)
people = sorted((u.display_name, u.email) for u in store.users.values())
issues = [(key, issue.fields.get("summary")) for key, issue in store.issues.items()]
print(repr(people))
print(repr(issues))
"""


def _seeded(before: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _SEED_AND_PRINT, before], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_jira_seed_does_not_depend_on_what_ran_before_it() -> None:
    alone = _seeded("nothing")
    assert "kari.nordmann@example.com" in alone.lower()  # the demo subject is among them
    assert _seeded("after-other-faker-use") == alone
    assert _seeded("nothing") == alone
