"""The Marketplace connector over real HTTP against the emulator: discovery by exact address
(the API's text search returns look-alikes), paging past the API's cap, 429 with Retry-After,
a failing source that fails loudly, refused credentials, and the plan (always kept)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connectors.base import Capability, SourceUnavailable, capabilities
from connectors.marketplace.client import MarketplaceClient, MarketplaceRequestError
from connectors.marketplace.connector import MarketplaceConnector
from connectors.marketplace.mapping import MarketplaceMapping
from connectors.marketplace.settings import MarketplaceSource
from dsrflow.config import load_config
from dsrflow.identifiers import email_key
from dsrflow.plan import Action
from dsrflow.preflight import preflight
from dsrflow.request import Subject
from sandbox import marketplace_seed
from sandbox.emulators.faults import Faults, FaultSettings
from sandbox.emulators.marketplace import MarketplaceEmulator, MarketplaceStore
from sandbox.emulators.server import EmulatorServer
from sandbox.marketplace_part import marketplace_source
from sandbox.onprem_seed import DEMO_SUBJECT, LOOK_ALIKES
from sandbox.runtime import write_config

MAPPING = Path(__file__).resolve().parents[1] / "mappings" / "marketplace.yaml"


@pytest.fixture
def store() -> MarketplaceStore:
    store = MarketplaceStore()
    marketplace_seed.generate(store)
    return store


@pytest.fixture
def faults() -> Faults:
    return Faults()


def serve(store: MarketplaceStore, faults: Faults | None = None) -> EmulatorServer:
    return EmulatorServer(MarketplaceEmulator(store, faults).app, name="marketplace")


@pytest.fixture
def url(store: MarketplaceStore, faults: Faults) -> Iterator[str]:
    with serve(store, faults) as url:
        yield url


def licence_of(number: str, technical_email: str) -> dict[str, Any]:
    """A licence whose technical contact has ``technical_email``, as the API shapes it."""
    return {
        "addonLicenseId": number,
        "licenseId": f"SEN-L{number}",
        "addonKey": "com.fjelltopp.timesheet",
        "contactDetails": {
            "company": f"Company {number}",
            "technicalContact": {"email": technical_email, "name": f"Person {number}"},
        },
    }


def settings(url: str, monkeypatch: pytest.MonkeyPatch, **values: Any) -> MarketplaceSource:
    monkeypatch.setenv("MP_TOKEN", values.pop("token", marketplace_seed.SANDBOX_TOKEN))
    return MarketplaceSource.model_validate(
        {
            "kind": "marketplace",
            "mapping": str(MAPPING),
            "url": url,
            "vendor_id": marketplace_seed.VENDOR_ID,
            "email": marketplace_seed.SANDBOX_EMAIL,
            "api_token": {"env": "MP_TOKEN"},
            **values,
        }
    )


def mapping() -> MarketplaceMapping:
    return MarketplaceMapping.model_validate(yaml.safe_load(MAPPING.read_text("utf-8")))


def connector(
    url: str, monkeypatch: pytest.MonkeyPatch, sleeps: list[float] | None = None, **values: Any
) -> MarketplaceConnector:
    source = settings(url, monkeypatch, **values)
    waits = sleeps if sleeps is not None else []
    client = MarketplaceClient("marketplace", source, sleep=waits.append)
    return MarketplaceConnector("marketplace", mapping(), source, client)


SUBJECT = Subject.from_raw([DEMO_SUBJECT])


def test_finds_the_subject_as_technical_and_billing_contact_and_no_look_alike(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connector(url, monkeypatch) as mp:
        # The API's text search is a substring match: it returns the look-alikes' records too.
        hits = list(mp.client.report("licenses", DEMO_SUBJECT))
        assert len(hits) > 1
        records = list(mp.discover(SUBJECT))
    found = {r.record_id: r for r in records}
    assert set(found) == {
        f"marketplace:licenses:addonLicenseId={marketplace_seed.DEMO_LICENSE}",
        f"marketplace:transactions:transactionId={marketplace_seed.DEMO_TRANSACTION}",
    }
    licence = found[f"marketplace:licenses:addonLicenseId={marketplace_seed.DEMO_LICENSE}"]
    assert licence.fields["technical_contact"]["email"] == "Kari.Nordmann@Example.COM"
    assert "billing_contact" not in licence.fields  # someone else's: by role only
    assert licence.fields["other_contacts"] == ["billing_contact"]
    assert licence.shared and licence.matched == (f"email:{DEMO_SUBJECT}",)
    paid = found[f"marketplace:transactions:transactionId={marketplace_seed.DEMO_TRANSACTION}"]
    assert paid.fields["billing_contact"]["email"] == DEMO_SUBJECT
    assert "purchase" in paid.fields and "technical_contact" not in paid.fields
    text = repr(records)
    for other in LOOK_ALIKES:
        assert other not in text.lower()


@pytest.mark.parametrize("address", LOOK_ALIKES)
def test_a_look_alike_finds_only_its_own_records(
    url: str, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    with connector(url, monkeypatch) as mp:
        records = list(mp.discover(Subject.from_raw([address])))
    assert records, address
    for record in records:
        assert record.matched == (f"email:{address}",)
        emails = [
            v["email"] for v in record.fields.values() if isinstance(v, dict) and "email" in v
        ]
        assert emails and all(email_key(e) == address for e in emails)


def test_pages_past_the_cap_by_following_next(
    store: MarketplaceStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = store.licenses[0]
    for n in range(120):
        copy = {**template, "addonLicenseId": str(2000000 + n), "licenseId": f"SEN-L{n}"}
        store.licenses.append(copy)
    # The emulator caps limit at 50: asked for 100, a page holds 50 and links the next.
    answer = httpx.get(
        f"{url}/rest/2/vendors/{marketplace_seed.VENDOR_ID}/reporting/licenses",
        params={"limit": 100, "text": DEMO_SUBJECT},
        auth=(marketplace_seed.SANDBOX_EMAIL, marketplace_seed.SANDBOX_TOKEN),
    ).json()
    assert len(answer["licenses"]) == 50 and "next" in answer["_links"]
    with connector(url, monkeypatch, page_size=7) as mp:
        records = list(mp.discover(Subject.from_raw([DEMO_SUBJECT])))
        requests = mp.client.requests
    licences = [r for r in records if r.location == "licenses"]
    assert len(licences) == 121
    assert requests >= 121 // 7 + 1


def test_throttling_waits_retry_after_and_finishes(
    url: str, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults.settings = FaultSettings(throttle_every=2, retry_after_s=3)
    sleeps: list[float] = []
    with connector(url, monkeypatch, sleeps) as mp:
        records = list(mp.discover(SUBJECT))
    assert len(records) == 2
    assert sleeps and set(sleeps) == {3.0}


def test_a_retry_after_longer_than_allowed_fails_the_source(
    url: str, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults.settings = FaultSettings(throttle_every=1, retry_after_s=600)
    with (
        connector(url, monkeypatch, max_retry_wait_s=60) as mp,
        pytest.raises(SourceUnavailable, match="HTTP 429"),
    ):
        list(mp.discover(SUBJECT))


def test_a_failing_source_fails_loudly_never_as_nothing_found(
    url: str, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults.settings = FaultSettings(fail_path="/reporting/sales/", fail_status=500, fail_count=9)
    sleeps: list[float] = []
    with (
        connector(url, monkeypatch, sleeps, max_retries=2) as mp,
        pytest.raises(SourceUnavailable, match="HTTP 500 after 3") as failed,
    ):
        list(mp.discover(SUBJECT))
    assert DEMO_SUBJECT not in str(failed.value)  # no address in the message
    assert len(sleeps) == 2


def test_a_5xx_that_heals_is_retried(
    url: str, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults.settings = FaultSettings(fail_path="/reporting/licenses", fail_status=503, fail_count=1)
    with connector(url, monkeypatch, max_retries=2) as mp:
        assert len(list(mp.discover(SUBJECT))) == 2


def test_refused_credentials_fail_the_source(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        connector(url, monkeypatch, token="wrong") as mp,
        pytest.raises(MarketplaceRequestError, match="HTTP 401") as refused,
    ):
        list(mp.discover(SUBJECT))
    assert refused.value.status == 401
    with (
        connector(url, monkeypatch, vendor_id=999) as mp,
        pytest.raises(MarketplaceRequestError, match="HTTP 403"),
    ):
        list(mp.discover(SUBJECT))


def test_the_emulator_refuses_requests_without_basic_auth(url: str) -> None:
    path = f"{url}/rest/2/vendors/{marketplace_seed.VENDOR_ID}/reporting/licenses"
    answer = httpx.get(path)
    assert answer.status_code == 401
    assert answer.json() == {"errors": [{"message": "Authentication required"}]}
    bad = httpx.get(
        path,
        params={"offset": "-1"},
        auth=(marketplace_seed.SANDBOX_EMAIL, marketplace_seed.SANDBOX_TOKEN),
    )
    assert bad.status_code == 400


def test_it_only_discovers_and_plans_keep_with_what_the_subject_can_do(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connector(url, monkeypatch) as mp:
        assert capabilities(mp) == {Capability.DISCOVER}
        records = list(mp.discover(SUBJECT))
    plan = mapping()
    for record in records:
        action = plan.plan_erasure(record, dt.date(2026, 12, 6))
        assert action.action == Action.KEEP
        assert "Atlassian" in (action.reason or "") and "privacy" in (action.reason or "")
        fix = plan.plan_rectification(record, {"email": "new@example.com"})
        assert fix is not None and fix.action == Action.NOT_APPLICABLE
        assert plan.collected_from(record.location).startswith("the Atlassian Marketplace")


def test_erasure_and_consent_withdrawal_do_not_need_a_source_that_only_keeps(
    url: str, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(marketplace_seed.SANDBOX_TOKEN)
    token.chmod(0o600)
    config_path = tmp_path / "dsrflow.yaml"
    write_config(config_path, marketplace_source(url, token), tmp_path / "exports")
    config = load_config(config_path)
    for right in ("erasure", "consent_withdrawal", "access", "restriction"):
        checked = preflight(config, right)
        assert checked.problems == [], right
        assert checked.ready == ["marketplace"]
