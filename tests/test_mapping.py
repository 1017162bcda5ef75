"""A broken mapping of each kind gives a clear error naming file, path, line and problem."""

import json
import re
import textwrap
from pathlib import Path

import pytest

from dsrflow.mapping import (
    MappingError,
    load_mapping,
    mapping_json_schema,
    mapping_json_schema_text,
    parse_mapping,
)

REPO = Path(__file__).resolve().parents[1]

VALID = """\
kind: sql
categories:
  user.contact:
    purposes: [support]
    legal_basis: contract
    retention: 3 years
  system.operations:
    purposes: [operations]
    legal_basis: contract
    retention: as the record
tables:
  people:
    primary_key: [id]
    identities:
      - {column: email, kind: email}
    columns:
      email: {category: user.contact.email}
  orders:
    primary_key: [order_id, line]
    references:
      - {column: person_id, target: people.id, direction: from}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(MappingError) as caught:
        parse_mapping(textwrap.dedent(text), Path("mappings/broken.yaml"))
    assert "mappings/broken.yaml" in str(caught.value)
    return caught.value.problems


def test_valid_mapping_parses_with_composite_key():
    mapping = parse_mapping(VALID, Path("m.yaml"))
    assert mapping.tables["orders"].primary_key == ["order_id", "line"]
    assert mapping.use_of("user.contact.email").purposes == ["support"]
    assert mapping.tables["people"].category_of("name") == "system.operations"


def test_shipped_mappings_are_valid():
    mapping = load_mapping(REPO / "mappings" / "onprem.yaml")
    assert mapping.tables["invoices"].legal_hold.duration.years == 5
    aggregate = mapping.tables["usage_events"].retention.aggregate
    assert (aggregate.into, aggregate.level_column) == ("usage_statistics", "level")


def test_yaml_syntax_error_names_line():
    (problem,) = problems_of(
        VALID.replace(
            "legal_basis: contract\n    retention: 3 years",
            "legal_basis: [contract\n    retention: 3 years",
        )
    )
    assert "not valid YAML" in problem
    assert "line " in problem


def test_misspelt_key_is_an_error_with_path_and_line():
    problems = problems_of(
        VALID.replace("primary_key: [order_id, line]", "primary_kay: [order_id, line]")
    )
    assert problems == [
        "tables.orders.primary_key (line 19): required but missing",
        "tables.orders.primary_kay (line 19): unknown key (misspelt?)",
    ]


def test_missing_primary_key():
    problems = problems_of(VALID.replace("    primary_key: [id]\n", ""))
    assert problems == ["tables.people.primary_key (line 13): required but missing"]


def test_bad_category_name():
    (problem,) = problems_of(
        VALID.replace("{category: user.contact.email}", "{category: User Contact}")
    )
    assert problem.startswith("tables.people.columns.email.category (line 17)")
    assert "not a data category" in problem


def test_undeclared_category():
    (problem,) = problems_of(
        VALID.replace("{category: user.contact.email}", "{category: user.financial}")
    )
    assert "tables.people.columns.email.category: 'user.financial' is not declared" in problem


def test_reference_to_unknown_table():
    (problem,) = problems_of(VALID.replace("target: people.id", "target: persons.id"))
    assert "tables.orders.references.0.target: table 'persons' is not in this mapping" in problem


def test_bad_direction():
    (problem,) = problems_of(VALID.replace("direction: from", "direction: sideways"))
    assert problem.startswith("tables.orders.references.0.direction (line 21)")
    assert "'to', 'from' or 'both'" in problem


def test_fixed_text_needs_value():
    (problem,) = problems_of(
        VALID.replace(
            "{category: user.contact.email}",
            "{category: user.contact.email, erase: {strategy: fixed_text}}",
        )
    )
    assert "tables.people.columns.email.erase" in problem
    assert "fixed_text needs a value" in problem


def test_consent_basis_needs_purpose():
    (problem,) = problems_of(
        VALID.replace(
            "legal_basis: contract\n    retention: 3 years",
            "legal_basis: consent\n    retention: 3 years",
        )
    )
    assert problem.startswith("categories.user.contact (line 4)")
    assert "consent_purpose" in problem


def test_unknown_kind():
    (problem,) = problems_of(VALID.replace("kind: sql", "kind: mainframe"))
    assert "kind" in problem
    assert "'sql'" in problem


def test_no_identities_anywhere():
    (problem,) = problems_of(
        VALID.replace("    identities:\n      - {column: email, kind: email}\n", "")
    )
    assert "no table has identities" in problem


def test_bad_hold_duration():
    text = VALID.replace(
        "  orders:\n",
        "  orders:\n    legal_hold: {reason: law, duration: {}, counts_from: day}\n",
    )
    (problem,) = problems_of(text)
    assert "tables.orders.legal_hold.duration" in problem
    assert "needs years, months or days" in problem


def test_unreadable_file(tmp_path):
    with pytest.raises(MappingError, match="cannot be read"):
        load_mapping(tmp_path / "absent.yaml")


def test_not_an_object():
    assert problems_of("- just\n- a list\n") == [
        "(top level): a mapping must be a YAML object with a kind"
    ]


def test_published_json_schema_is_current():
    committed = (REPO / "mappings" / "mapping.schema.json").read_text(encoding="utf-8")
    assert committed == mapping_json_schema_text(), (
        "run: dsr schema mapping > mappings/mapping.schema.json"
    )
    assert json.loads(committed)["title"] == mapping_json_schema()["title"]


def test_the_c_loader_reads_every_mapping_and_config_as_the_python_loader_does():
    """The config and mappings are read with libyaml's loader (dsrflow/yaml_safe.py): it must
    give the same data as PyYAML's pure-Python safe loader on every file the project ships."""
    import yaml

    from dsrflow.yaml_safe import SAFE_LOADER, safe_load

    assert SAFE_LOADER is yaml.CSafeLoader  # PyYAML's wheels ship libyaml
    files = sorted(REPO.glob("mappings/**/*.yaml")) + sorted(REPO.glob("config/*.yaml"))
    files += sorted(REPO.glob("tests/fixtures/**/*.yaml"))
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert safe_load(text) == yaml.safe_load(text), path


def test_c_loader_errors_still_name_the_line(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(VALID.replace("retention: 3 years", "retention: [3 years"), encoding="utf-8")
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    assert "not valid YAML" in exc.value.problems[0]
    assert re.search(r"line \d+, column \d+", exc.value.problems[0])
