"""One exception base: what a person can act on is one line and exit status 2; a bug keeps
its traceback (it must not pass for the user's mistake)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import dsrflow.preflight
from connectors.base import SourceUnavailable
from connectors.masking import MaskingKeyMissing
from dsrflow.cli import app
from dsrflow.config import ConfigError
from dsrflow.errors import DsrflowError
from dsrflow.identifiers import IdentifierError
from dsrflow.ledger import LedgerError, UnknownRequest
from dsrflow.local_prefect import PrefectUnavailable
from dsrflow.mapping import MappingError
from dsrflow.planning import CorrectionError
from dsrflow.preflight import PreflightError
from dsrflow.secrets import SecretUnavailable
from dsrflow.stack import StackError
from flows.approval import FourEyesError
from flows.changes import IncompleteError
from flows.discovery import ExpansionError
from sandbox import FixtureError

runner = CliRunner()


@pytest.mark.parametrize(
    "kind",
    [
        SourceUnavailable,
        MaskingKeyMissing,
        ConfigError,
        IdentifierError,
        LedgerError,
        UnknownRequest,
        PrefectUnavailable,
        MappingError,
        CorrectionError,
        PreflightError,
        SecretUnavailable,
        StackError,
        FourEyesError,
        IncompleteError,
        ExpansionError,
        FixtureError,
    ],
)
def test_every_error_a_person_meets_has_the_one_base(kind: type[Exception]) -> None:
    assert issubclass(kind, DsrflowError)


def access(config, *extra: str):
    return runner.invoke(
        app,
        [
            "access",
            "--subject",
            "al@example.com",
            "--config",
            str(config),
            "--out",
            str(config.parent / "out"),
            *extra,
        ],
    )


def test_a_malformed_request_is_one_line(onprem_config) -> None:
    result = access(onprem_config, "--request-id", "REQ-1")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "error: request: request id 'REQ-1' must look like DSR-2026-0042"
    )


def test_a_bug_keeps_its_traceback(onprem_config, monkeypatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("an internal bug")  # e.g. a model built wrongly inside dsrflow

    monkeypatch.setattr(dsrflow.preflight, "preflight", broken)
    result = access(onprem_config, "--request-id", "DSR-2026-0042")
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)
    assert "error:" not in result.output
