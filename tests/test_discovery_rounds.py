"""How discovery plans a later round (flows/discovery.py), from the sandbox's own mappings:
who can look up which kind, who is judged again, what is reported over rounds. The searches
themselves, over real HTTP, are in tests/test_discovery_expansion.py."""

from __future__ import annotations

import pytest

from dsrflow.identifiers import Identifier
from dsrflow.mapping import BaseMapping, load_mapping
from dsrflow.records import Record
from dsrflow.request import Subject
from flows.discovery import _folded_across_rounds, _note_gaps, masked_in, plan_round
from tests.conftest import REPO

KINDS = ("onprem", "jira", "mail", "drive", "marketplace", "analytics")
EMAIL = Identifier(kind="email", value="kari.nordmann@example.com")
PHONE = Identifier(kind="phone", value="+4791234567")
ACCOUNT = Identifier(kind="jira_account_id", value="557058:f58131cb")


@pytest.fixture(scope="module")
def mappings() -> dict[str, BaseMapping]:
    return {name: load_mapping(REPO / "mappings" / f"{name}.yaml") for name in KINDS}


def record(source: str, n: int, **values: object) -> Record:
    fields = values.pop("fields", {"note": "x"})
    return Record(
        source=source,
        location="t",
        native_id={"id": n},
        categories={"note": "user"},
        fields=fields,  # type: ignore[arg-type]
        **values,  # type: ignore[arg-type]
    )


def test_each_kind_says_what_it_looks_people_up_by(mappings: dict[str, BaseMapping]) -> None:
    kinds = {name: m.lookup_kinds() for name, m in mappings.items()}
    assert kinds == {
        "onprem": {"email", "phone"},
        "jira": {"email", "jira_account_id"},
        "mail": {"email"},
        "drive": {"email", "phone"},
        "marketplace": {"email"},
        "analytics": {"analytics_client_id", "analytics_user_id"},
    }


def test_round_two_asks_only_who_can_look_the_new_ones_up_and_with_them_alone(
    mappings: dict[str, BaseMapping],
) -> None:
    subject = Subject(emails=(EMAIL.value,), phones=(PHONE.value,))
    asked = {name: {EMAIL} for name in mappings}
    plan = plan_round(2, mappings, subject, asked, {})
    assert plan.searched == ["onprem", "drive"]
    for search in plan.searches:
        if search.subject is not None:
            assert search.subject.identifiers == {PHONE}  # the new one alone
            assert search.known == subject  # judged against all of them
    why = {s.source: s.why for s in plan.searches}
    assert why["mail"] == why["jira"] == "cannot look up by phone"
    assert "mail (cannot look up by phone)" in plan.describe()
    assert PHONE.value not in plan.describe() and EMAIL.value not in plan.describe()


def test_a_source_that_shows_a_new_number_masked_is_judged_again_with_all(
    mappings: dict[str, BaseMapping],
) -> None:
    subject = Subject(emails=(EMAIL.value,), phones=(PHONE.value,))
    asked = {name: {EMAIL} for name in mappings}
    kept = {"mail": [record("mail", 1, fields={"body": "call me on ***67"})]}
    assert masked_in(kept["mail"], {PHONE, EMAIL}) == {PHONE}
    plan = plan_round(2, mappings, subject, asked, kept)
    (mail,) = [s for s in plan.searches if s.source == "mail"]
    assert mail.subject == subject and mail.known is None
    assert masked_in([record("mail", 1, fields={"body": "***68"})], {PHONE}) == set()


def test_jira_is_not_asked_again_for_the_accounts_it_found_itself(
    mappings: dict[str, BaseMapping],
) -> None:
    subject = Subject(emails=(EMAIL.value,), others=(ACCOUNT,))
    asked = {name: {EMAIL} for name in mappings}
    asked["jira"] |= {ACCOUNT}  # what discover_everywhere adds for resolves_kinds
    assert mappings["jira"].resolves_kinds == {"jira_account_id"}
    assert mappings["onprem"].resolves_kinds == frozenset()
    plan = plan_round(2, mappings, subject, asked, {})
    assert plan.searched == []
    # An account another source found is looked up in Jira, by itself.
    asked["jira"] = {EMAIL}
    plan = plan_round(2, mappings, subject, asked, {})
    (jira,) = [s for s in plan.searches if s.subject is not None]
    assert jira.source == "jira" and jira.subject is not None
    assert jira.subject.identifiers == {ACCOUNT} and jira.subject.emails == ()


def test_a_delete_only_source_is_given_every_id_it_names(
    mappings: dict[str, BaseMapping],
) -> None:
    client = Identifier(kind="analytics_client_id", value="1197596843.1673515099")
    subject = Subject(emails=(EMAIL.value,), others=(client,))
    plan = plan_round(2, mappings, subject, {name: {EMAIL} for name in mappings}, {})
    (analytics,) = [s for s in plan.searches if s.subject is not None]
    assert analytics.source == "analytics" and analytics.subject == subject


def test_gaps_of_every_round_stay_unless_searched_again_whole() -> None:
    gaps: dict[str, list[str]] = {}
    _note_gaps(gaps, "mail", ["mailbox a: not reachable"], replace=False)
    _note_gaps(gaps, "mail", [], replace=False)  # round two: searched other addresses
    _note_gaps(gaps, "mail", ["mailbox b: not reachable"], replace=False)
    assert gaps == {"mail": ["mailbox a: not reachable", "mailbox b: not reachable"]}
    _note_gaps(gaps, "mail", ["mailbox b: not reachable"], replace=True)
    assert gaps == {"mail": ["mailbox b: not reachable"]}


def test_a_record_found_in_two_rounds_is_one_record() -> None:
    first = record("onprem", 1, matched=("email:a@example.com",))
    again = record("onprem", 1, matched=("phone:+4791234567",), shared=True, shared_with=("x",))
    other = record("onprem", 2)
    folded = _folded_across_rounds([[first, other], [again]])
    assert [r.record_id for r in folded] == [first.record_id, other.record_id]
    assert set(folded[0].matched) == {"email:a@example.com", "phone:+4791234567"}
    assert folded[0].shared and folded[0].shared_with == ("x",)
    assert folded[1] == other  # found once: passed on as it is
