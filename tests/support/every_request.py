"""Run every request type once through Prefect, as the UI's run form starts them (identifiers
and corrections in the run's parameters), in a Prefect home of its own: the subject of
tests/test_at_rest.py, which then scans that home. ``python -m tests.support.every_request
FOLDER`` (a fresh process: Prefect reads its home once, at import)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from dsrflow.local_prefect import private_home
from dsrflow.run_settings import run_settings


def main(folder: Path) -> None:
    private_home(folder)  # Prefect's home: folder/prefect
    from dsrflow.local_prefect import prefect_server
    from flows.access import access_request
    from flows.approval import at_terminal
    from flows.erasure import erasure_request
    from flows.other_rights import consent_withdrawal, rectification_request, restriction_request
    from flows.private import scrub_run_logs
    from flows.retention import retention_sweep
    from sandbox.onprem_seed import DEMO_PHONE, DEMO_SUBJECT
    from sandbox.runtime import start

    scrub_run_logs()
    with (
        start(folder / "sandbox") as box,
        prefect_server(progress=print),
        run_settings(box.config_path),
    ):
        who = {"subject_emails": [DEMO_SUBJECT], "subject_phones": [DEMO_PHONE]}
        states = {}
        states["access"] = access_request(request_id="DSR-2026-70000001", return_state=True, **who)
        states["invalid"] = access_request(
            request_id="DSR-2026-70000002",
            subject_emails=[DEMO_SUBJECT.replace("@", "@@")],
            return_state=True,
        )
        # A source that refuses: the vendor's error carries the request's query.
        drive = box.parts["drive"].sources["drive"]["api_url"]
        refuse = {"fail_path": "/drive/v3/files", "fail_status": 500, "fail_count": 10_000}
        httpx.post(f"{drive}/_emulator/faults", json=refuse).raise_for_status()
        states["source_down"] = access_request(
            request_id="DSR-2026-70000003", return_state=True, **who
        )
        httpx.post(f"{drive}/_emulator/faults", json={}).raise_for_status()
        with at_terminal("Ingrid"):
            states["rectification"] = rectification_request(
                request_id="DSR-2026-70000004",
                corrections=["name=Kari Nyenavn Nordmann"],
                return_state=True,
                **who,
            )
            states["restriction"] = restriction_request(
                request_id="DSR-2026-70000005", return_state=True, **who
            )
            states["consent"] = consent_withdrawal(
                request_id="DSR-2026-70000006",
                purpose="analytics",
                return_state=True,
                **who,
            )
            states["erasure"] = erasure_request(
                request_id="DSR-2026-70000007", return_state=True, **who
            )
        states["sweep"] = retention_sweep(dry_run=True, return_state=True)
        states.update(intake_and_confirm(box.config_path))
    for name, state in states.items():
        print(f"{name}: {state.type.value}")
        print(f"  ({state.message})")


def intake_and_confirm(config: Path) -> dict[str, Any]:
    """The intake (the sandbox's desk and mailbox), and one request confirmed through its
    pause form, answered through Prefect's API; no deployment is registered here, so neither
    starts the next run."""
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from flows.intake import confirm_request, intake

    states: dict[str, Any] = {}
    with run_settings(config, start_runs=False):
        states["intake"] = intake(return_state=True)
    opened = states["intake"].result().opened

    def confirm() -> None:
        with run_settings(config, start_runs=False):  # a new thread starts with an empty context
            states.update(confirm=confirm_request(request_id=opened[0], return_state=True))

    thread = threading.Thread(target=confirm)
    thread.start()
    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while True:
            runs = [r for r in client.read_flow_runs() if r.name == f"confirm-{opened[0]}"]
            if runs and runs[0].state and runs[0].state.is_paused():
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the confirm-request run did not pause")
            time.sleep(0.3)
    answer = {"request_type": "access", "officer": "Ingrid", "note": "customer account"}
    resume_flow_run(runs[0].id, run_input=answer)
    thread.join(timeout=120)
    return states


if __name__ == "__main__":
    main(Path(sys.argv[1]))
