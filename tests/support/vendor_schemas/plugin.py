"""The pytest plugin: every answer of every emulator in every test is checked against the
vendor's own schema, and a test whose emulators answered anything the schema does not allow
fails. Passing here must mean working at the vendor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.emulators.server import OBSERVERS
from tests.support import vendor_schemas

OBSERVERS.append(vendor_schemas.observe)


@pytest.fixture(autouse=True)
def emulators_answer_as_the_vendors_do() -> Iterator[None]:
    vendor_schemas.take()
    yield
    found = vendor_schemas.take()
    assert not found, "emulator answers the vendor's schema does not allow:\n" + "\n".join(
        found[:20]
    )
