"""Seed data for the sandbox's Graph emulator: generated mailboxes, or ``mail.json`` fixtures.

The generated tenant (``fjelltopp.example``) has support, sales and privacy mailboxes and a few
staff mailboxes, with a few hundred realistic messages: customers writing to support and sales,
replies, internal forwards, messages that reached several mailboxes (one internetMessageId, one
copy in each). The demo subject (``DEMO_SUBJECT``, the sandbox's documented one) has mail spread
over them: as sender, as cc, as bcc, stored in other casing, mentioned in a body, in the
``Contracts`` folder under a legal hold, with attachments. The look-alike addresses
(``LOOK_ALIKES``) have mail of their own that must never be found for her.

Fixture format (``mail.json``)::

    {"mailboxes": {"<mailbox address>": [message, ...]}}

each message in Graph's message resource shape (``id`` optional, ``subject``, ``from``, ``sender``,
``toRecipients``, ``ccRecipients``, ``bccRecipients``, ``replyTo``, ``receivedDateTime``,
``sentDateTime``, ``body: {contentType, content}``, ``internetMessageId``, ``conversationId``,
``parentFolderId`` or a ``folder`` display name (``Inbox/Contracts`` for a child folder),
``attachments``: fileAttachment objects with base64 ``contentBytes``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox import FixtureError
from sandbox.emulators.graph.store import GraphStore
from sandbox.onprem_seed import DEMO_SUBJECT, DEMO_SUBJECT_STORED_AS, LOOK_ALIKES

if TYPE_CHECKING:  # Faker is imported where data is generated, so that a start that
    # loads the kept seeds (sandbox/seed_cache.py) does not import it at all
    from faker import Faker

TENANT = "fjelltopp.example"
SUPPORT = f"support@{TENANT}"
SALES = f"sales@{TENANT}"
PRIVACY = f"privacy@{TENANT}"
STAFF = (f"ingrid.berg@{TENANT}", f"ola.hansen@{TENANT}", f"maria.lind@{TENANT}")
MAILBOXES = (SUPPORT, SALES, PRIVACY, *STAFF)
CONTRACTS_FOLDER = "Contracts"
# The large profile's benchmark subject, with an exactly known number of messages.
BENCH_SUBJECT = "bench-subject@example.com"
BENCH_LOOK_ALIKES = ("xbench-subject@example.com", "bench-subject@example.com.evil.org")
# Subjects for the erasure benchmark: each gets ``erase_messages`` messages, spread evenly.
ERASE_SUBJECTS = ("erase-one@example.com", "erase-two@example.com")

Message = dict[str, Any]


def person(address: str, name: str | None = None) -> dict[str, Any]:
    return {"emailAddress": {"name": name, "address": address}}


def load_fixture(store: GraphStore, path: Path) -> dict[str, int]:
    """Load ``mail.json`` into the store; messages per mailbox."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != {"mailboxes"}:
        raise FixtureError(f'{path}: expected {{"mailboxes": {{"<address>": [message, ...]}}}}')
    mailboxes = data["mailboxes"]
    if not isinstance(mailboxes, dict) or not all(isinstance(v, list) for v in mailboxes.values()):
        raise FixtureError(f"{path}: mailboxes must map an address to a list of messages")
    return store.load(mailboxes)


class _Writer:
    """Builds messages and files them in the mailboxes of their recipients."""

    def __init__(self, store: GraphStore, rng: random.Random, now: dt.datetime) -> None:
        self.store = store
        self.rng = rng
        self.now = now
        self.sequence = 0

    def when(self, days_back_max: int) -> str:
        moment = self.now - dt.timedelta(
            days=self.rng.randint(0, days_back_max), seconds=self.rng.randint(0, 86399)
        )
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def send(
        self,
        sender: tuple[str, str],
        to: Sequence[tuple[str, str]],
        subject: str,
        body: str,
        *,
        cc: Sequence[tuple[str, str]] = (),
        bcc: Sequence[tuple[str, str]] = (),
        when: str | None = None,
        html: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        folder_of: Callable[[str], str | None] = lambda _mailbox: None,
    ) -> int:
        """One message, with a copy in every tenant mailbox that sent or received it."""
        self.sequence += 1
        sent = when or self.when(700)
        message: Message = {
            "subject": subject,
            "from": person(sender[0], sender[1]),
            "sender": person(sender[0], sender[1]),
            "toRecipients": [person(a, n) for a, n in to],
            "ccRecipients": [person(a, n) for a, n in cc],
            "bccRecipients": [person(a, n) for a, n in bcc],
            "replyTo": [],
            "sentDateTime": sent,
            "receivedDateTime": sent,
            "body": {"contentType": "html" if html else "text", "content": body},
            "internetMessageId": f"<{self.sequence:06d}.{self.rng.getrandbits(40):x}@mail.gen>",
            "conversationId": f"AAQkAD{self.rng.getrandbits(64):016x}",
            "attachments": attachments or [],
        }
        copies = 0
        for address in dict.fromkeys(
            [sender[0]] + [a for a, _ in [*to, *cc, *bcc]]
        ):  # every tenant mailbox involved keeps its own copy
            if address not in MAILBOXES:
                continue
            folder = folder_of(address) or ("Sent Items" if address == sender[0] else "Inbox")
            self.store.add_message(address, {**message, "folder": folder})
            copies += 1
        return copies


def _attachment(name: str, content_type: str, content: bytes) -> dict[str, Any]:
    return {
        "name": name,
        "contentType": content_type,
        "contentBytes": base64.b64encode(content).decode("ascii"),
    }


def generate(
    store: GraphStore,
    *,
    customers: int = 120,
    seed: int = 2026,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """A tenant with a few hundred messages, the demo subject's and look-alikes' among them."""
    from faker import Faker  # here: a start with kept seeds never imports it

    fake = Faker(["no_NO", "en_GB", "de_DE"])
    Faker.seed(seed)
    rng = random.Random(seed)  # noqa: S311 - reproducible seed data, not secrets
    writer = _Writer(store, rng, now or dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC))
    for address in MAILBOXES:
        store.add_mailbox(address, address.split("@")[0].replace(".", " ").title())
    staff = [(a, a.split("@")[0].replace(".", " ").title()) for a in STAFF]
    support = (SUPPORT, "Fjelltopp Support")
    sales = (SALES, "Fjelltopp Sales")
    privacy = (PRIVACY, "Fjelltopp Privacy")
    topics = [
        "Licence renewal for {product}",
        "Invoice {number} question",
        "{product}: error after upgrade",
        "Quote for {users} users of {product}",
        "Data Center migration of {product}",
        "Request: SSO setup for {product}",
    ]
    products = ["Timesheet Pro", "Secure Forms", "Release Radar", "Backlog Insights"]

    def topic() -> str:
        return rng.choice(topics).format(
            product=rng.choice(products),
            number=f"2026-{rng.randint(1, 999):04d}",
            users=rng.choice([10, 50, 250, 1000]),
        )

    # Customers writing to support and sales, and the answers.
    people = []
    for _ in range(customers):
        name = fake.name()
        local = name.lower().replace(" ", ".").replace("'", "")
        local = "".join(c for c in local if c.isascii() and (c.isalnum() or c == "."))
        people.append((f"{local or 'customer'}@{fake.domain_name()}", name))
    for customer in people:
        for _ in range(rng.randint(1, 3)):
            subject = topic()
            desk = rng.choice([support, support, sales])
            writer.send(customer, [desk], subject, "\n\n".join(fake.paragraphs(rng.randint(1, 3))))
            if rng.random() < 0.6:
                writer.send(
                    desk,
                    [customer],
                    f"Re: {subject}",
                    f"Hi {customer[1].split()[0]},\n\n{fake.paragraph()}\n\n"
                    f"Best regards,\n{desk[1]}",
                    cc=[rng.choice(staff)] if rng.random() < 0.3 else [],
                )
    # Internal mail between staff, some with customers' addresses in the text.
    for _ in range(60):
        sender, receiver = rng.sample(staff, 2)
        customer = rng.choice(people)
        writer.send(
            sender,
            [receiver],
            f"FW: {topic()}",
            f"Can you follow up with {customer[1]} ({customer[0]})?\n\n{fake.paragraph()}",
        )
    subject_count = _demo_subject(writer, fake, staff, support, sales, privacy)
    look_alike_count = _look_alikes(writer, fake, support, sales)
    return {
        "mailboxes": len(MAILBOXES),
        "messages": store.count(),
        "demo_subject_messages": subject_count,
        "look_alike_messages": look_alike_count,
    }


def _demo_subject(
    writer: _Writer,
    fake: Faker,
    staff: list[tuple[str, str]],
    support: tuple[str, str],
    sales: tuple[str, str],
    privacy: tuple[str, str],
) -> int:
    """Kari Nordmann's mail, each kind of appearance at least once. Returns distinct messages."""
    kari = (DEMO_SUBJECT, "Kari Nordmann")
    kari_other_case = (DEMO_SUBJECT_STORED_AS, "Kari Nordmann")
    report = _attachment(
        "config-report.txt", "text/plain", b"Jira 9.12.4, 3 nodes, Timesheet Pro 5.2.1\n"
    )
    screenshot = _attachment("error.png", "image/png", bytes(range(256)) * 16)
    sends = [
        dict(
            sender=kari,
            to=[support],
            subject="Timesheet Pro: error after upgrade",
            body="<p>Hi,</p><p>after upgrading Jira, Timesheet Pro shows an error. "
            "Screenshot and configuration report attached.</p><p>Kari Nordmann<br>Acme AS</p>",
            html=True,
            attachments=[report, screenshot],
        ),
        dict(
            sender=support,
            to=[kari],
            subject="Re: Timesheet Pro: error after upgrade",
            body="Hi Kari,\n\nthanks for the report: version 5.2.2 fixes it.\n\nFjelltopp Support",
        ),
        dict(
            sender=kari_other_case,
            to=[sales, support],  # one message, a copy in both mailboxes
            subject="Quote for 250 users of Secure Forms",
            body="Hello, could you send us a quote for 250 users? Kari",
        ),
        dict(
            sender=sales,
            to=[("lars.vik@acme.example", "Lars Vik")],
            cc=[kari],
            subject="Re: Quote for 250 users of Secure Forms",
            body="Dear Lars, please find our quote below. Kari in cc.",
        ),
        dict(
            sender=("lars.vik@acme.example", "Lars Vik"),
            to=[support],
            subject="New Jira administrator",
            body=f"Hi, our new Jira administrator is Kari Nordmann ({DEMO_SUBJECT}). "
            "Please give her access to the support portal.",
        ),
        dict(
            sender=sales,
            to=[staff[0]],
            bcc=[kari],
            subject="Price list 2027",
            body="The new price list, for our customers' information.",
        ),
        dict(
            sender=kari,
            to=[sales],
            subject="Signed order form",
            body="Please find the signed order form attached.",
            attachments=[_attachment("order-form.pdf", "application/pdf", b"%PDF-1.4 order")],
            folder="Contracts",
        ),
        dict(
            sender=kari,
            to=[privacy],
            subject="Access request",
            body="I would like a copy of the personal data you hold about me.",
        ),
    ]
    for spec in sends:
        folder = spec.pop("folder", None)
        writer.send(
            spec.pop("sender"),  # type: ignore[arg-type]
            spec.pop("to"),  # type: ignore[arg-type]
            spec.pop("subject"),  # type: ignore[arg-type]
            spec.pop("body"),  # type: ignore[arg-type]
            when=writer.when(200),
            folder_of=(lambda mailbox, f=folder: f if mailbox == SALES else None)
            if folder
            else (lambda _mailbox: None),
            **spec,  # type: ignore[arg-type]
        )
    return len(sends)


def _look_alikes(
    writer: _Writer, fake: Faker, support: tuple[str, str], sales: tuple[str, str]
) -> int:
    count = 0
    for address in LOOK_ALIKES:
        for desk in (support, sales):
            writer.send(
                (address, fake.name()),
                [desk],
                "Question about my licence",
                f"{fake.paragraph()}\n\nSent from {address}",
            )
            count += 1
    return count


# -- the large profile (benchmarks) -----------------------------------------------------------


def generate_large(
    store: GraphStore,
    *,
    mailboxes: int = 20,
    per_mailbox: int = 10_000,
    subject_messages: int = 50,
    erase_messages: int = 0,
    seed: int = 2026,
    progress: Callable[[str], None] = lambda _message: None,
) -> dict[str, int]:
    """``mailboxes`` times ``per_mailbox`` messages, ``subject_messages`` of them BENCH_SUBJECT's
    (spread over the mailboxes), plus look-alike mail. Cheap text: pools, not Faker per message."""
    from faker import Faker  # here: a start with kept seeds never imports it

    fake = Faker("en_GB")
    Faker.seed(seed)
    rng = random.Random(seed)  # noqa: S311 - reproducible seed data, not secrets
    names = [fake.name() for _ in range(500)]
    domains = [fake.domain_name() for _ in range(100)]
    sentences = [fake.sentence(nb_words=12) for _ in range(400)]
    boxes = [f"agent{n:02d}@{TENANT}" for n in range(mailboxes)]
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    subject_slots = set(rng.sample(range(mailboxes * per_mailbox), subject_messages))
    look_alike_slots = set(rng.sample(range(mailboxes * per_mailbox), 10 * len(BENCH_LOOK_ALIKES)))
    slot = 0
    for box in boxes:
        store.add_mailbox(box)
        messages = []
        for n in range(per_mailbox):
            name = rng.choice(names)
            sender = f"{name.split()[0].lower()}.{n % 97}@{rng.choice(domains)}"
            if slot in subject_slots:
                sender, name = BENCH_SUBJECT, "Bench Subject"
            elif slot in look_alike_slots:
                sender = rng.choice(BENCH_LOOK_ALIKES)
            when = now - dt.timedelta(minutes=rng.randint(0, 1_000_000))
            stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            messages.append(
                {
                    "subject": rng.choice(sentences)[:60],
                    "from": person(sender, name),
                    "toRecipients": [person(box)],
                    "receivedDateTime": stamp,
                    "body": {"contentType": "text", "content": " ".join(rng.sample(sentences, 2))},
                    "internetMessageId": f"<{slot:08d}@bench.gen>",
                }
            )
            slot += 1
        for erase_subject in ERASE_SUBJECTS if erase_messages else ():
            share = erase_messages // mailboxes + (boxes.index(box) < erase_messages % mailboxes)
            messages += [
                {
                    "subject": f"Erase me {n}",
                    "from": person(erase_subject, "Erase Subject"),
                    "toRecipients": [person(box)],
                    "receivedDateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "body": {"contentType": "text", "content": rng.choice(sentences)},
                    "internetMessageId": f"<{erase_subject.split('@')[0]}.{box}.{n}@bench.gen>",
                }
                for n in range(share)
            ]
        store.load({box: messages})
        progress(f"mail: {box} seeded with {per_mailbox} messages")
    return {"mailboxes": mailboxes, "messages": store.count(), "subject_messages": subject_messages}
