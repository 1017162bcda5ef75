"""Seed data for the Jira emulator: generated service desk requests, or a ``jira.json`` fixture.

Generated data (``generate``): one service desk (project ``SUP``) with a few hundred customer
requests from Faker customers, answered by a handful of agents. One agent and one customer in
five hide their address in their profile (Jira leaves ``emailAddress`` out). The demo subject
(``DEMO_SUBJECT``, Kari Nordmann) reports some requests, is a request participant on others,
comments on others and is mentioned in others (by address and by ``[~accountid:…]``); the
look-alike addresses of the on-prem seed (``LOOK_ALIKES``) have accounts and requests of their
own and are written into texts, so that fuzzy ``text ~`` hits must be confirmed exactly.
``generate_large`` makes the benchmark profile: 50,000 requests with 3 comments each.

Fixture format (``jira.json``), in Jira's REST shapes::

    {
      "users": [{"accountId": "5b10…", "emailAddress": "al@example.com", "displayName": "Al"}],
      "servicedesks": [{"id": "1", "projectKey": "SUP", "projectName": "Support",
                        "customers": ["5b10…"]}],
      "issues": [{
        "key": "SUP-1",
        "fields": {"summary": "…", "description": "… plain text, Jira wiki style …",
                   "status": {"name": "Open"}, "created": "2026-01-05T10:00:00Z",
                   "reporter": {"accountId": "5b10…"}, "labels": ["billing"],
                   "customfield_10010": {"requestType": {"name": "Get help"}},
                   "customfield_10050": "any custom field, text or JSON"},
        "participants": ["5b10…"],
        "comments": [{"id": "10001", "author": {"accountId": "5b10…"}, "body": "…",
                      "created": "2026-01-05T11:00:00Z"}]
      }]
    }

``projectName``, ``status``, ``created``, ``labels``, custom fields, ``participants``, comment
``id`` and ``created`` are optional. A user may carry ``accountType`` (``customer`` or
``atlassian``; default from the id's shape) and ``emailVisible: false`` (the emulator's own key:
the user's profile hides the address, so Jira leaves ``emailAddress`` out). A subtask names its
parent with ``"parent": {"key": "SUP-1"}`` among its fields. Timestamps are ISO 8601 (a
missing zone means UTC). Users not listed but referenced show up as "Former user". The
service desk of an issue is the one whose ``projectKey`` is the prefix of its key.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.emulators.jira.store import REQUEST_TYPE_FIELD, JiraStore
from sandbox.onprem_seed import DEMO_SUBJECT, LOOK_ALIKES

if TYPE_CHECKING:  # Faker is imported where data is generated, so that a start that
    # loads the kept seeds (sandbox/seed_cache.py) does not import it at all
    from faker import Faker

SANDBOX_EMAIL = "sandbox-admin@fjelltopp.example"
# The emulator's own credential, not a secret of any real site.
SANDBOX_TOKEN = "sandbox-api-token"  # noqa: S105
# Kari's own API token: she raises a request on the desk as herself (Create customer request).
DEMO_CUSTOMER_TOKEN = "kari-customer-api-token"  # noqa: S105
PROJECT = "SUP"
DESK_ID = "1"
DEMO_NAME = "Kari Nordmann"
REQUEST_TYPES = ("Get help", "Report a bug", "Licensing question", "Billing question")
STATUSES = ("Waiting for support", "Waiting for customer", "Resolved", "Closed")
TOPICS = (
    "Timesheet Pro export fails",
    "Secure Forms licence renewal",
    "Release Radar shows no data",
    "Backlog Insights is slow",
    "Invoice address change",
    "Cannot log in after SSO change",
)
# Requests _demo_subject adds besides its ``extra_reported`` ones.
DEMO_REQUESTS = 14
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def account_id(rng: random.Random, customer: bool) -> str:
    """Jira Cloud's shapes: 24 hex digits for Atlassian accounts, ``qm:…`` for portal customers."""
    if customer:
        return f"qm:{uuid.UUID(int=rng.getrandbits(128))}:{uuid.UUID(int=rng.getrandbits(128))}"
    return f"{rng.getrandbits(96):024x}"


def load_fixture(store: JiraStore, path: Path) -> dict[str, int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for user in data.get("users", []):
        store.add_user(
            user["accountId"],
            user.get("emailAddress"),
            user.get("displayName", ""),
            user.get("accountType"),
            email_visible=user.get("emailVisible", True),
        )
    for desk in data.get("servicedesks", []):
        store.add_servicedesk(
            str(desk["id"]),
            desk["projectKey"],
            desk.get("projectName", desk["projectKey"]),
            desk.get("customers", []),
            desk.get("requestTypes", []),
        )
    for issue in data.get("issues", []):
        store.add_issue(
            issue["key"], issue["fields"], issue.get("participants", []), issue.get("comments", [])
        )
    return counts(store)


def counts(store: JiraStore) -> dict[str, int]:
    return {
        "users": len(store.users),
        "servicedesks": len(store.servicedesks),
        "issues": len(store.issues),
        "comments": sum(len(i.comments) for i in store.issues.values()),
    }


def generate(store: JiraStore, *, requests: int = 300, seed: int = 7) -> dict[str, int]:
    """The small profile: a service desk with hundreds of requests; see the module docstring."""
    rng = random.Random(seed)  # noqa: S311 - reproducible seed data, not security
    from faker import Faker  # here: a start with kept seeds never imports it

    fake = Faker(["en_GB", "no_NO"])
    # A multi-locale Faker picks each call's locale with Faker's shared random, which only
    # Faker.seed seeds: without it the data would depend on what ran before in the process
    # (the on-prem seed, or nothing when a kept on-prem database is reused).
    Faker.seed(seed)
    fake.seed_instance(seed)
    _people(store, rng, fake, customers=80)
    _requests(store, rng, fake, requests, comments=(0, 4))
    _demo_subject(store, rng, fake)
    _privacy_request(store)
    return counts(store)


def generate_large(store: JiraStore, *, requests: int = 50_000, seed: int = 11) -> dict[str, int]:
    """The benchmark profile: 50,000 requests with 3 comments each, the demo subject in ~20."""
    rng = random.Random(seed)  # noqa: S311 - reproducible seed data, not security
    from faker import Faker  # here: a start with kept seeds never imports it

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    _people(store, rng, fake, customers=2_000)
    extra = 14  # the demo subject then reports 17 requests and takes part in 3 more
    _requests(store, rng, fake, requests - DEMO_REQUESTS - extra, comments=(3, 3))
    _demo_subject(store, rng, fake, extra_reported=extra)
    return counts(store)


def _people(store: JiraStore, rng: random.Random, fake: Faker, customers: int) -> None:
    store.add_user(account_id(rng, False), SANDBOX_EMAIL, "Sandbox Admin")
    for n in range(5):
        name = fake.name()
        email = f"{name.split()[0].lower()}.{rng.randrange(100)}@fjelltopp.example"
        # As on a real site, some people hide their address in their profile.
        store.add_user(account_id(rng, False), email, name, email_visible=n != 4)
    desk = store.add_servicedesk(DESK_ID, PROJECT, "Fjelltopp Customer Support")
    for n in range(customers):
        user = store.add_user(
            account_id(rng, True),
            f"customer{n}.{fake.user_name()}@{fake.free_email_domain()}",
            fake.name(),
            email_visible=n % 5 != 0,
        )
        desk.customers.append(user.account_id)
    store.credentials = (SANDBOX_EMAIL, SANDBOX_TOKEN)


PRIVACY_REQUEST_TYPE = "Privacy request"


def _privacy_request(store: JiraStore) -> None:
    """The desk's privacy request type with one request in it, for the intake flow: from a
    customer of its own (no random draws, so the rest of the seed stays as it was)."""
    store.request_type_id(PROJECT, PRIVACY_REQUEST_TYPE)
    ola = store.add_user("qm:privacy-demo:ola", "ola.hansen@example.net", "Ola Hansen")
    store.servicedesks[DESK_ID].customers.append(ola.account_id)
    store.add_issue(
        _next_key(store),
        {
            "summary": "Sletting av personopplysninger",
            "description": "Jeg ønsker at dere sletter alle opplysninger dere har om meg.",
            "status": {"name": "Waiting for support"},
            "created": (NOW - dt.timedelta(days=3)).isoformat(),
            "reporter": {"accountId": ola.account_id},
            REQUEST_TYPE_FIELD: {"requestType": {"name": PRIVACY_REQUEST_TYPE}},
        },
    )


def _agents(store: JiraStore) -> list[str]:
    return [
        u.account_id
        for u in store.users.values()
        if u.email and u.email.endswith("@fjelltopp.example")
    ]


def _customers(store: JiraStore) -> list[str]:
    return list(store.servicedesks[DESK_ID].customers)


def _fields(
    rng: random.Random, fake: Faker, reporter: str, summary: str, description: str, age_days: int
) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "status": {"name": rng.choice(STATUSES)},
        "created": (NOW - dt.timedelta(days=age_days, minutes=rng.randrange(1440))).isoformat(),
        "reporter": {"accountId": reporter},
        "labels": [],
        REQUEST_TYPE_FIELD: {"requestType": {"name": rng.choice(REQUEST_TYPES)}},
    }


def _next_key(store: JiraStore) -> str:
    return f"{PROJECT}-{len(store.issues) + 1}"


def _requests(
    store: JiraStore, rng: random.Random, fake: Faker, n: int, comments: tuple[int, int]
) -> None:
    agents = _agents(store)[1:]
    customers = _customers(store)
    sentences = [fake.sentence(nb_words=10) for _ in range(200)]
    for _ in range(n):
        reporter = rng.choice(customers)
        body = [
            {
                "author": {"accountId": rng.choice([*agents, reporter])},
                "body": rng.choice(sentences),
            }
            for _ in range(rng.randint(*comments))
        ]
        store.add_issue(
            _next_key(store),
            _fields(
                rng,
                fake,
                reporter,
                rng.choice(TOPICS),
                " ".join(rng.sample(sentences, 2)),
                rng.randrange(1, 900),
            ),
            [],
            body,
        )


def _demo_subject(
    store: JiraStore, rng: random.Random, fake: Faker, extra_reported: int = 0
) -> None:
    """Kari's own requests, her traces in others', and the look-alikes' near misses."""
    desk = store.servicedesks[DESK_ID]
    agents = _agents(store)[1:]
    customers = _customers(store)
    kari = store.add_user(account_id(rng, True), "Kari.Nordmann@Example.COM", DEMO_NAME)
    desk.customers.append(kari.account_id)
    store.api_tokens[str(kari.email).lower()] = DEMO_CUSTOMER_TOKEN
    look_alikes = []
    for email in LOOK_ALIKES:
        user = store.add_user(account_id(rng, True), email, fake.name())
        desk.customers.append(user.account_id)
        look_alikes.append(user)
    agent = agents[0]

    def request(
        reporter: str,
        summary: str,
        description: str,
        *,
        participants: tuple[str, ...] = (),
        comments: tuple[tuple[str, str], ...] = (),
        days: int = 60,
    ) -> None:
        store.add_issue(
            _next_key(store),
            _fields(rng, fake, reporter, summary, description, days),
            participants,
            [{"author": {"accountId": a}, "body": b} for a, b in comments],
        )

    kari_id = kari.account_id
    request(
        kari_id,
        "Timesheet Pro export fails for our team",
        f"Hi, the CSV export stops at 1000 rows. Please reply to {DEMO_SUBJECT}. "
        "My colleague Ola (ola.hansen@acme.example) sees it too.",
        comments=(
            (agent, "Thanks Kari, we are looking into it."),
            (kari_id, "Any news? You can call me on +47 912 34 567."),
        ),
        days=400,
    )
    request(
        kari_id,
        "Licence renewal for Secure Forms",
        "We want to renew the licence for 50 users.",
        comments=((agent, "Renewal quote attached."),),
        days=200,
    )
    request(
        kari_id,
        "Invoice address change",
        "Please send invoices to Nordlys Consulting from now on.",
        days=30,
    )
    for n in range(extra_reported):
        request(
            kari_id,
            f"{rng.choice(TOPICS)} ({n + 1})",
            "Another question from our team.",
            days=10 + n,
        )
    colleague = customers[0]
    request(
        colleague,
        "SSO login loop for the whole company",
        "Everyone at Acme gets a login loop since Monday.",
        participants=(kari_id,),
        comments=((agent, f"Adding [~accountid:{kari_id}] as she administers the site."),),
    )
    request(
        colleague,
        "Backlog Insights is slow",
        "Dashboards take a minute to load.",
        participants=(kari_id, customers[1]),
    )
    request(
        customers[2],
        "Release Radar shows no data",
        "No releases appear since the upgrade.",
        comments=(
            (kari_id, "Same problem here, happy to help test a fix."),
            (agent, "Fixed in 4.2.1."),
        ),
    )
    request(
        customers[3],
        "Who is the admin for Acme?",
        f"Our admin is {DEMO_SUBJECT}, please confirm with her before changing anything.",
    )
    request(
        customers[4],
        "Question about data retention",
        "Asking on behalf of our DPO.",
        comments=((customers[4], "Please copy kari.nordmann@EXAMPLE.com on the answer."),),
    )
    # The look-alikes: their own requests, and their addresses in other people's texts.
    for user in look_alikes:
        request(
            user.account_id,
            "Cannot log in after SSO change",
            f"I am {user.email}, locked out since yesterday.",
            comments=((agent, "Please try again now."),),
        )
    request(
        customers[5],
        "Forwarded mail",
        f"From {LOOK_ALIKES[1]}: please reset kari.nordmann+support@example.com too.",
    )
    request(customers[6], "Typo in our contact", f"Our contact is {LOOK_ALIKES[3]} (not Kari N.).")
