"""The configuration of the controller the privacy policy describes (config/kantega.yaml): it
loads without its secrets, and names the controller's own addresses exactly."""

from __future__ import annotations

import pytest

from dsrflow.config import Controller, load_config
from tests.conftest import REPO

KANTEGA = REPO / "config" / "kantega.yaml"
SECRETS = (
    "DSRFLOW_KANTEGA_GRAPH_SECRET",
    "DSRFLOW_KANTEGA_GOOGLE_KEY",
    "DSRFLOW_KANTEGA_JIRA_TOKEN",
    "DSRFLOW_KANTEGA_ONPREM_URL",
    "DSRFLOW_KANTEGA_MASKING_KEY",
    "DSRFLOW_KANTEGA_LEDGER_KEY",
)


@pytest.fixture
def kantega(monkeypatch: pytest.MonkeyPatch):
    for name in SECRETS:  # validation of the file, never a connection or a secret
        monkeypatch.delenv(name, raising=False)
    return load_config(KANTEGA)


def test_loads_with_its_mappings_and_no_secret_set(kantega) -> None:
    assert set(kantega.sources) == {"onprem", "mail", "drive", "jira"}
    mappings = kantega.load_mappings()
    assert {m.kind for m in mappings.values()} == {"sql", "mail", "drive", "jira"}
    # Every secret is a reference to the environment, none a value.
    assert kantega.masking_key is not None and kantega.masking_key.env in SECRETS
    assert kantega.ledger_key is not None and kantega.ledger_key.env in SECRETS
    assert kantega.sources["mail"].client_secret.env in SECRETS
    assert kantega.sources["drive"].credentials.env in SECRETS
    assert kantega.sources["jira"].api_token.env in SECRETS
    assert kantega.sources["onprem"].url_env in SECRETS
    # Not under the repository: exports and the ledger hold personal data.
    assert not str(kantega.output_dir).startswith(str(REPO))


def test_both_contact_addresses_of_the_policy_are_the_controllers_own(kantega) -> None:
    controller = kantega.controller
    assert controller.contact_email == "support.atlassian@kantega.no"
    for address in ("support.atlassian@kantega.no", "atlassian.support@kantega.no"):
        assert controller.is_own_address(address)
        assert controller.is_own_address(f"  {address.upper()} ")  # the key, not the spelling
    assert controller.own_address_keys() == {
        "support.atlassian@kantega.no",
        "atlassian.support@kantega.no",
        "atle.prange@kantega.no",
    }


@pytest.mark.parametrize(
    "address",
    [
        "support@kantega.no",  # another address in the domain: the domain is not listed
        "xsupport.atlassian@kantega.no",
        "support.atlassian@kantega.no.evil.org",
        "support.atlassian+x@kantega.no",
        "\uff53upport.atlassian@kantega.no",  # FULLWIDTH s: a look-alike
        "support.atl\u0430ssian@kantega.no",  # CYRILLIC a
        "not an address",
        None,
    ],
)
def test_nothing_else_is_the_controllers_own(kantega, address) -> None:
    assert not kantega.controller.is_own_address(address)


def _controller(**extra) -> Controller:
    return Controller(name="C", address="A", contact_email="privacy@c.example", **extra)


def test_an_own_domain_covers_its_addresses_exactly() -> None:
    controller = _controller(own_domains=["Bücher.example"])
    assert controller.own_domains == ["xn--bcher-kva.example"]
    assert controller.is_own_address("kari@BÜCHER.example")
    assert controller.is_own_address("kari@xn--bcher-kva.example")
    assert not controller.is_own_address("kari@mail.bücher.example")  # a subdomain is listed
    assert not controller.is_own_address("kari@bücher.example.evil.org")
    assert not controller.is_own_address("k\u0430ri@bücher.example")  # look-alike local part


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("own_addresses", ["\uff53upport@c.example"], "look-alike"),
        ("own_addresses", ["not an address"], "not a valid e-mail address"),
        ("own_domains", ["support@c.example"], "use own_addresses"),
        ("own_domains", ["c\u3002example"], "IDNA"),
    ],
)
def test_own_addresses_and_domains_are_checked_strictly(field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        _controller(**{field: value})


def test_the_information_officer_is_named_with_a_valid_address() -> None:
    controller = _controller(information_officer={"name": "Ola", "email": " Ola@C.example "})
    assert controller.information_officer is not None
    assert controller.information_officer.email == "ola@c.example"
    assert controller.is_own_address("ola@c.example")
    with pytest.raises(ValueError, match="not a valid e-mail address"):
        _controller(information_officer={"name": "Ola", "email": "ola"})
