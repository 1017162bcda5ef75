"""Letters to the subject (`dsr letter`): every kind in bokmål and English, with the facts of a
real ledger request (its deadline as the ledger computed it, the controller, the officer, an
extension's reason, a refusal's reason), owner-only in the case folder; a letter whose facts the
case does not hold yet is refused with one line and exit status 2. The answers are written from
an access export and an erasure receipt made by the real flows (SQL fixture, Prefect harness).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
from pathlib import Path

import pytest
import yaml
from dateutil.relativedelta import relativedelta
from typer.testing import CliRunner

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger, Status
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from dsrflow.run_settings import run_settings

SUBJECT = "al@example.com"
OFFICER = {"name": "Ingrid Berg", "email": "ingrid.berg@fjelltopp.example"}
MONTHS_NB = ["januar", "februar", "mars", "april", "mai", "juni", "juli", "august",
             "september", "oktober", "november", "desember"]  # fmt: skip
LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}|\bNone\b|Undefined|\[\]")
# Received a few days ago, so the first month still runs (an extension is allowed).
RECEIVED = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(microsecond=0)


def nb(day: dt.date) -> str:
    return f"{day.day}. {MONTHS_NB[day.month - 1]} {day.year}"


def en(day: dt.date) -> str:
    return f"{day.day} {day:%B} {day.year}"


@pytest.fixture
def config(onprem_config: Path) -> Path:
    data = yaml.safe_load(onprem_config.read_text())
    data["controller"]["information_officer"] = OFFICER
    onprem_config.write_text(yaml.safe_dump(data))
    return onprem_config


def ledger_of(config: Path) -> Ledger:
    return Ledger(load_config(config).ledger_url)


def open_request(config: Path, request_id: str, kind: RequestType = RequestType.ACCESS) -> None:
    with ledger_of(config) as ledger:
        ledger.open_request(
            DataSubjectRequest(
                id=request_id, type=kind, subject=Subject.from_raw([SUBJECT]), received_at=RECEIVED
            )
        )


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def letter(config: Path, request_id: str, kind: str, *options: str):
    return cli("letter", request_id, kind, *options, "--config", str(config))


def written(config: Path, request_id: str, kind: str, lang: str) -> tuple[str, str]:
    folder = load_config(config).output_dir / request_id
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    texts = []
    for suffix in ("txt", "md"):
        path = folder / f"letter-{kind}.{lang}.{suffix}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        text = path.read_text(encoding="utf-8")
        assert not LEFTOVER.search(text), (path, LEFTOVER.search(text))
        texts.append(text)
    return texts[0], texts[1]


def test_acknowledgement_states_the_ledgers_deadline_in_both_languages(config):
    open_request(config, "DSR-2026-0701")
    due = (RECEIVED + relativedelta(months=1)).date()  # Art. 12(3): one month from receipt
    with ledger_of(config) as ledger:
        assert ledger.request_row("DSR-2026-0701")["due_at"] == due
    for lang, day in (("nb", nb), ("en", en)):
        result = letter(config, "DSR-2026-0701", "acknowledgement", "--lang", lang)
        assert result.exit_code == 0, result.output
        text, markdown = written(config, "DSR-2026-0701", "acknowledgement", lang)
        for body in (text, markdown):
            assert day(due) in body
            assert day(RECEIVED.date()) in body
            assert "DSR-2026-0701" in body
            assert "Fjelltopp Apps AS" in body and "Ingrid Berg" in body
            assert "privacy@fjelltopp.example" in body
    nb_text, nb_md = written(config, "DSR-2026-0701", "acknowledgement", "nb")
    assert nb_text.startswith("Vi har mottatt forespørselen din (DSR-2026-0701)\n\nHei,")
    assert "innsyn i personopplysningene dine" in nb_text
    assert nb_md.startswith("**Vi har mottatt forespørselen din (DSR-2026-0701)**")
    en_text, _ = written(config, "DSR-2026-0701", "acknowledgement", "en")
    assert "access to your personal data" in en_text


def test_identification_in_both_languages_with_the_officers_ask(config):
    open_request(config, "DSR-2026-0702", RequestType.ERASURE)
    ask = "Please answer with the licence number (SEN) on your *last* invoice."
    assert (
        letter(config, "DSR-2026-0702", "identification", "--lang", "en", "--note", ask).exit_code
        == 0
    )
    assert letter(config, "DSR-2026-0702", "identification", "--lang", "nb").exit_code == 0
    en_text, en_md = written(config, "DSR-2026-0702", "identification", "en")
    nb_text, _ = written(config, "DSR-2026-0702", "identification", "nb")
    assert ask in en_text and "reply to this message" not in en_text  # the ask replaces ours
    assert "your \\*last\\* invoice" in en_md  # the officer's text is text, not markup
    assert "Article 12(6)" in en_text and "artikkel 12 nr. 6" in nb_text
    assert "sletting av personopplysningene dine" in nb_text
    assert "Svar på denne meldingen fra den e-postadressen" in nb_text


def test_extension_needs_the_ledgers_extension_and_gives_its_reason(config):
    open_request(config, "DSR-2026-0703")
    refused = letter(config, "DSR-2026-0703", "extension", "--lang", "nb")
    assert refused.exit_code == 2
    assert "has not been extended" in refused.output and "dsr extend" in refused.output
    assert not (load_config(config).output_dir / "DSR-2026-0703").exists()
    reason = "the request covers eleven years of support mail in three systems"
    extended = cli("extend", "DSR-2026-0703", "--reason", reason, "--config", str(config))
    assert extended.exit_code == 0, extended.output
    first = (RECEIVED + relativedelta(months=1)).date()
    due = (RECEIVED + relativedelta(months=3)).date()
    for lang, day in (("nb", nb), ("en", en)):
        assert letter(config, "DSR-2026-0703", "extension", "--lang", lang).exit_code == 0
        text, _ = written(config, "DSR-2026-0703", "extension", lang)
        assert reason in text
        assert day(first) in text and day(due) in text
        assert "Datatilsynet" in text
    assert "2 måneder" in written(config, "DSR-2026-0703", "extension", "nb")[0]
    assert "2 months" in written(config, "DSR-2026-0703", "extension", "en")[0]


def test_refusal_names_datatilsynet_and_the_reason(config):
    open_request(config, "DSR-2026-0704")
    refused = letter(config, "DSR-2026-0704", "refusal", "--lang", "en")
    assert refused.exit_code == 2 and "needs the reason (Art. 12(4))" in refused.output
    reason = "the same request was answered in full on 1 November, and nothing has changed since"
    result = letter(config, "DSR-2026-0704", "refusal", "--lang", "nb", "--reason", reason)
    assert result.exit_code == 0, result.output
    text, markdown = written(config, "DSR-2026-0704", "refusal", "nb")
    assert reason in text and reason in markdown
    assert "Datatilsynet, Postboks 458 Sentrum, 0105 Oslo, Norway" in text
    assert "https://www.datatilsynet.no" in text
    assert "artikkel 12 nr. 4" in text and "domstolene" in text
    # a request the officer rejected with a reason: the ledger's reason is the letter's
    open_request(config, "DSR-2026-0705")
    with ledger_of(config) as ledger:
        ledger.close_request(
            "DSR-2026-0705",
            Status.REJECTED,
            "Ingrid",
            reason="manifestly excessive: the 40th request this month",
        )
    assert letter(config, "DSR-2026-0705", "refusal", "--lang", "en").exit_code == 0
    text, _ = written(config, "DSR-2026-0705", "refusal", "en")
    assert "manifestly excessive: the 40th request this month" in text
    assert "lodge a complaint with Datatilsynet" in text and "Article 79" in text


def test_letters_are_in_the_ledger_without_their_text_and_keep_the_requests_language(config):
    open_request(config, "DSR-2026-0706")
    assert letter(config, "DSR-2026-0706", "acknowledgement", "--lang", "en").exit_code == 0
    # no --lang: the request's earlier letter chose English over the config's bokmål
    assert load_config(config).language == "nb"
    result = letter(config, "DSR-2026-0706", "refusal", "--reason", "a secret-ish reason")
    assert result.exit_code == 0, result.output
    assert "letter-refusal.en.txt" in result.output
    with ledger_of(config) as ledger:
        entries = [e for e in ledger.entries("DSR-2026-0706") if e.event == "letter_written"]
        assert [(e.details["kind"], e.details["language"]) for e in entries] == [
            ("acknowledgement", "en"),
            ("refusal", "en"),
        ]
        assert "secret-ish" not in json.dumps([e.details for e in entries])
        assert ledger.verify() == []


def test_what_cannot_be_written_is_one_line_and_exit_2(config):
    open_request(config, "DSR-2026-0707")
    cases = {
        ("DSR-2026-0707", "apology"): "no letter 'apology'",
        ("DSR-2026-0799", "acknowledgement"): "no request DSR-2026-0799 in the ledger",
        ("DSR-2026-0707", "answer"): "DSR-2026-0707 is open, not answered yet",
    }
    for (request_id, kind), message in cases.items():
        result = letter(config, request_id, kind)
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert result.output.count("error:") == 1
    bad_lang = letter(config, "DSR-2026-0707", "acknowledgement", "--lang", "nn")
    assert bad_lang.exit_code == 2 and "no language 'nn'" in bad_lang.output


def test_access_answer_names_what_could_not_be_searched(config):
    """Never silently partial: the export's not_searched travels into the answer."""
    import pandas as pd

    from dsrflow.export import build_export, write_export

    open_request(config, "DSR-2026-0710")
    loaded = load_config(config)
    with ledger_of(config) as ledger:
        request = ledger.request("DSR-2026-0710")
        note = "1 mailbox(es) could not be searched (no Exchange Online mailbox): o***@x.example"
        document = build_export(
            request, loaded, {}, pd.DataFrame(columns=["record_id"]), not_searched={"mail": [note]}
        )
        write_export(document, loaded.output_dir / "DSR-2026-0710")
        ledger.set_status("DSR-2026-0710", Status.COMPLETED)
    for lang in ("nb", "en"):
        assert letter(config, "DSR-2026-0710", "answer", "--lang", lang).exit_code == 0
    nb_text, nb_md = written(config, "DSR-2026-0710", "answer", "nb")
    en_text, _ = written(config, "DSR-2026-0710", "answer", "en")
    assert "Vi fant ingen oppføringer om deg i kildene vi søkte i." in nb_text
    assert f"ikke fikk søkt i:\n- mail: {note}" in nb_text
    assert f"could not be searched:\n- mail: {note}" in en_text
    assert "o\\*\\*\\*@x.example" in nb_md  # escaped in Markdown


def test_no_refusal_of_a_request_already_answered(config):
    open_request(config, "DSR-2026-0711")
    with ledger_of(config) as ledger:
        ledger.set_status("DSR-2026-0711", Status.COMPLETED)
    result = letter(config, "DSR-2026-0711", "refusal", "--reason", "too late")
    assert result.exit_code == 2
    assert "DSR-2026-0711 is completed: there is nothing to refuse" in result.output


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_access_answer_says_what_the_export_holds(config):
    from flows.access import access_request

    with run_settings(config):
        state = access_request(
            request_id="DSR-2026-0708",
            subject_emails=[SUBJECT],
            received_at=RECEIVED,
            return_state=True,
        )
    assert state.is_completed(), state.message
    export = json.loads((Path(state.result().export_dir) / "export.json").read_text())
    assert export["total_records"] > 0
    for lang in ("nb", "en"):
        result = letter(config, "DSR-2026-0708", "answer", "--lang", lang)
        assert result.exit_code == 0, result.output
    nb_text, _ = written(config, "DSR-2026-0708", "answer", "nb")
    en_text, _ = written(config, "DSR-2026-0708", "answer", "en")
    assert f"Vi fant {export['total_records']} oppføring(er) om deg i onprem." in nb_text
    assert f"We found {export['total_records']} record(s) about you in onprem." in en_text
    assert "export.html" in nb_text and "export.json" in en_text
    assert "ikke fikk søkt i" not in nb_text  # everything was searched: no such note


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "masking_key")
def test_erasure_answer_says_what_the_receipt_says(config):
    result = cli(
        "erase", "--subject", SUBJECT, "--approve", "--officer", "Ingrid", "--received-at",
        RECEIVED.isoformat(), "--request-id", "DSR-2026-0709", "--config", str(config),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = load_config(config).output_dir / "DSR-2026-0709"
    receipt = json.loads((folder / "receipt.json").read_text())
    deleted = sum(1 for line in receipt["changed"] if line["action"] == "delete")
    redacted = sum(1 for line in receipt["changed"] if line["action"] == "redact")
    invoices = next(line for line in receipt["kept"] if line["location"] == "invoices")
    for lang in ("nb", "en"):
        answered = letter(config, "DSR-2026-0709", "answer", "--lang", lang)
        assert answered.exit_code == 0, answered.output
    nb_text, _ = written(config, "DSR-2026-0709", "answer", "nb")
    en_text, _ = written(config, "DSR-2026-0709", "answer", "en")
    assert f"- Slettet: {deleted} oppføring(er)." in nb_text
    assert (
        f"resten beholdt fordi oppføringen også gjelder andre: {redacted} oppføring(er)" in nb_text
    )
    assert f"- Deleted: {deleted} record(s)." in en_text
    keep_until = dt.date.fromisoformat(invoices["keep_until"])
    assert f"(kan slettes fra {nb(keep_until)})" in nb_text
    assert f"(erasable from {en(keep_until)})" in en_text
    assert invoices["reason"].rstrip(". ") in en_text
    assert "receipt.html" in nb_text
    # the receipt page itself is in both languages too
    page = (folder / "receipt.html").read_text()
    assert "Kvittering for sletting" in page and "Erasure receipt" in page


def test_an_unconfirmed_intake_request_can_be_acknowledged(config):
    """The intake opens a request whose right is not clear yet; it is acknowledged at once."""
    with ledger_of(config) as ledger:
        assert ledger.receive(
            "DSR-2026-0790",
            "mail",
            "conversation-1",
            Subject.from_raw([SUBJECT]),
            RECEIVED,
            "unclear",
        )
    for lang in ("nb", "en"):
        result = letter(config, "DSR-2026-0790", "acknowledgement", "--lang", lang)
        assert result.exit_code == 0, result.output
    nb_text, _ = written(config, "DSR-2026-0790", "acknowledgement", "nb")
    en_text, _ = written(config, "DSR-2026-0790", "acknowledgement", "en")
    assert "rettighetene dine etter personvernforordningen" in nb_text
    assert "exercising your rights under the GDPR" in en_text
