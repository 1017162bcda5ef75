"""No traffic leaves the machine unasked: every entry point turns Prefect's analytics off
before Prefect reads its settings, whatever the environment it was started from."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

READ_SETTING = (
    "import {module}\n"
    "from prefect.settings import get_current_settings\n"
    "print(get_current_settings().server.analytics_enabled)\n"
)


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that would turn analytics off for us."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK")
    }


@pytest.mark.parametrize("module", ["dsrflow.cli", "flows.access", "flows.retention"])
def test_the_entry_point_turns_prefect_analytics_off(module):
    out = subprocess.run(
        [sys.executable, "-c", READ_SETTING.format(module=module)],
        cwd=REPO,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr


def test_prefect_would_send_them_otherwise():
    """The check above can fail: without dsrflow, Prefect's default is on."""
    out = subprocess.run(
        [sys.executable, "-c", READ_SETTING.format(module="prefect")],
        cwd=REPO,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr
