import pytest
from pydantic import ValidationError

from dsrflow.secrets import SecretRef


def test_env_secret(monkeypatch):
    monkeypatch.setenv("DSRFLOW_TEST_SECRET", "s3cret")
    assert SecretRef(env="DSRFLOW_TEST_SECRET").resolve() == "s3cret"
    monkeypatch.delenv("DSRFLOW_TEST_SECRET")
    with pytest.raises(LookupError, match="environment variable DSRFLOW_TEST_SECRET is not set"):
        SecretRef(env="DSRFLOW_TEST_SECRET").resolve()


def test_file_secret_must_be_owner_only(tmp_path):
    path = tmp_path / "token"
    path.write_text("tok\n")
    path.chmod(0o644)
    with pytest.raises(LookupError, match="readable by others; chmod 600"):
        SecretRef(file=path).resolve()
    path.chmod(0o600)
    assert SecretRef(file=path).resolve() == "tok"
    with pytest.raises(LookupError, match="cannot be read"):
        SecretRef(file=tmp_path / "absent").resolve()


def test_exactly_one_place():
    with pytest.raises(ValidationError, match="exactly one of env, file and prefect_secret"):
        SecretRef(env="A", prefect_secret="b")
    with pytest.raises(ValidationError, match="exactly one"):
        SecretRef()


def test_relative_paths_in_a_config_are_relative_to_it(tmp_path):
    import yaml

    from dsrflow.config import load_config
    from sandbox.runtime import CONTROLLER

    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "dsrflow.yaml").write_text(
        yaml.safe_dump(
            {
                "controller": CONTROLLER,
                "sources": {
                    "drive": {
                        "kind": "drive",
                        "mapping": "maps/drive.yaml",
                        "credentials_file": "keys/sa.json",
                    },
                    "jira": {
                        "kind": "jira",
                        "mapping": "maps/jira.yaml",
                        "url": "https://j.example",
                        "email": "a@example.com",
                        "api_token": {"file": "keys/token"},
                    },
                },
            }
        )
    )
    config = load_config(folder / "dsrflow.yaml")
    assert config.sources["drive"].mapping == folder / "maps" / "drive.yaml"
    assert config.sources["drive"].credentials_file == folder / "keys" / "sa.json"
    assert config.sources["jira"].api_token.file == folder / "keys" / "token"
    assert config.ledger_url == f"sqlite:///{folder / 'ledger.db'}"
