"""The request flows' shared parameters are described once (flows/parameters.py) and still
reach each run form (Prefect reads the Args section of the flow's docstring)."""

from __future__ import annotations

import pytest
from prefect.utilities.callables import parameter_schema

from flows.access import access_request
from flows.erasure import erasure_request
from flows.other_rights import consent_withdrawal, rectification_request, restriction_request
from flows.parameters import shared_parameter_docs

FLOWS = [access_request, erasure_request, rectification_request, consent_withdrawal]


@pytest.mark.parametrize("flow", [*FLOWS, restriction_request], ids=lambda f: f.name)
def test_every_parameter_of_a_request_flow_is_described_in_its_run_form(flow):
    properties = parameter_schema(flow).properties
    assert properties
    assert [name for name, field in properties.items() if not field.get("description")] == []


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_the_shared_descriptions_are_the_same_in_every_form(flow):
    described = parameter_schema(flow).properties
    assert described["request_id"]["description"].startswith("The request's id, e.g. DSR-")
    assert described["subject_emails"]["description"] == (
        "The subject's e-mail addresses; leave empty for a request already in\n"
        "the ledger. Moved out of Prefect once read."
    )


def test_a_flows_own_entries_stay_and_take_their_place_in_signature_order():
    def flow(request_id: str, lift: bool = False, subject_phones: list[str] | None = None):
        """Restrict.

        Args:
            lift: Lift it instead.
        """

    shared_parameter_docs(flow)
    assert flow.__doc__ is not None
    args = flow.__doc__.split("Args:\n", 1)[1].splitlines()
    assert [line.split(":")[0].strip() for line in args if not line.startswith(" " * 8)] == [
        "request_id",
        "lift",
        "subject_phones",
    ]
    assert "    lift: Lift it instead." in args
    assert parameter_schema(flow).properties["lift"]["description"] == "Lift it instead."


def test_a_parameter_described_nowhere_is_refused():
    def flow(request_id: str, colour: str = "red"):
        """Paint."""

    with pytest.raises(ValueError, match="parameter colour is described nowhere"):
        shared_parameter_docs(flow)


def test_an_entry_for_no_parameter_is_refused():
    def flow(request_id: str):
        """Paint.

        Args:
            colour: Which colour.
        """

    with pytest.raises(ValueError, match=r"Args describes \['colour'\]"):
        shared_parameter_docs(flow)
