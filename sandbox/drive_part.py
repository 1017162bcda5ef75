"""The sandbox's Google Drive part: the Drive + Sheets emulator on a loopback port, seeded, a
throwaway service-account key whose ``token_uri`` is the emulator's ``POST /token``, and the
config entry of the ``drive`` source.

The key is generated at start (RSA 2048, ``cryptography``) and written to
``<sandbox dir>/drive-service-account.json`` (mode 0600); only its public half is registered in
the emulator, which verifies the JWT that google-auth signs with it, as Google does. With the
large profile or a fixtures directory the spreadsheets sit in other folders than the sandbox
mapping names, so the part writes ``drive-mapping.yaml`` next to the key: the sandbox mapping
with ``folders`` (and ``spreadsheets`` outside any folder) replaced by what was loaded.

Drive shows a user only what is shared with them: the delegated user is given access to the
seeded folders and shared drives as a Workspace admin would (``drive_seed.grant``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import drive_seed, seed_cache
from sandbox.emulators.faults import Faults
from sandbox.emulators.google import FOLDER, GoogleState, create_app
from sandbox.emulators.server import EmulatorServer

if TYPE_CHECKING:  # sandbox.runtime imports this module for PARTS
    from sandbox.runtime import PartStarted, SandboxContext

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
SERVICE_ACCOUNT = "dsrflow-sandbox@dsrflow-sandbox.iam.gserviceaccount.com"
DELEGATED_USER = "dsr-officer@fjelltopp.example"
# What the sandbox's "admin" grants the service account for domain-wide delegation: the scopes
# README tells a real admin to grant (connectors/drive_client.SCOPES). A token for more fails.
DELEGATED_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/drive.readonly",
        "https://www.googleapis.com/auth/spreadsheets",
    }
)


def write_service_account(state: GoogleState, url: str, path: Path) -> Path:
    """A fresh key pair: the private key file for the client, the public key for the emulator."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    state.service_accounts[SERVICE_ACCOUNT] = key.public_key()
    state.delegations[SERVICE_ACCOUNT] = DELEGATED_SCOPES
    info = {
        "type": "service_account",
        "project_id": "dsrflow-sandbox",
        "private_key_id": "sandbox",
        "private_key": pem,
        "client_email": SERVICE_ACCOUNT,
        "client_id": "100000000000000000001",
        "token_uri": f"{url}/token",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(info, out, indent=2)
    return path


def mapping_for_loaded(state: GoogleState, path: Path) -> Path:
    """The sandbox mapping, pointed at the folders (and loose spreadsheets) actually loaded."""
    mapping: dict[str, Any] = yaml.safe_load((MAPPINGS / "drive.yaml").read_text("utf-8"))
    folders = [f.id for f in state.files.values() if f.mime_type == FOLDER]
    loose = [f.id for f in state.files.values() if f.sheets and f.parents == ["root"]]
    mapping["folders"] = [{"id": i} for i in folders]
    mapping["spreadsheets"] = [{"id": i} for i in loose]
    header = "# Written by the sandbox: mappings/drive.yaml with the loaded folders.\n"
    path.write_text(header + yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


def drive_source(url: str, key_file: Path, mapping: Path) -> dict[str, dict[str, Any]]:
    """The config entry of a Drive emulator at ``url``."""
    return {
        "drive": {
            "kind": "drive",
            "mapping": str(mapping),
            "credentials_file": str(key_file),
            "delegated_user": DELEGATED_USER,
            "api_url": url,
        }
    }


def start_drive(context: SandboxContext) -> PartStarted:
    """Generated data, the large profile, or ``drive.json`` from the fixtures directory."""
    from sandbox.runtime import PartStarted

    state = GoogleState()
    fixture = context.fixtures / "drive.json" if context.fixtures else None
    mapping = MAPPINGS / "drive.yaml"
    if fixture and fixture.exists():
        counts = drive_seed.load_fixture(state, fixture, grant_to=DELEGATED_USER)
    elif context.fixtures:
        counts = drive_seed.counts(state)  # a fixtures directory without drive.json: empty
    elif context.profile == "large":
        context.progress("drive: generating 200 spreadsheets x 2,000 rows")
        counts = drive_seed.generate_large(state)
    else:
        state, counts, _ = seed_cache.seeded(
            context.directory, seed_cache.DRIVE, drive_seed.generate
        )
    if not (fixture and fixture.exists()):
        drive_seed.grant(state, DELEGATED_USER)  # the admin's sharing (load_fixture does it)
    if context.fixtures or context.profile == "large":
        mapping = mapping_for_loaded(state, context.directory / "drive-mapping.yaml")
    server = EmulatorServer(create_app(state, Faults(context.faults)), name="google")
    url = server.start()
    key_file = write_service_account(state, url, context.directory / "drive-service-account.json")
    return PartStarted(
        sources=drive_source(url, key_file, mapping),
        counts={f"drive.{k}": v for k, v in counts.items()},
        stop=server.stop,
    )
