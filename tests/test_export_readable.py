"""The export written for the subject: a spreadsheet row is one record on the page (not one
fragment per category), with plain-language category names and readable ids in bokmål and
English; export.json's whole-record view validates against the schema, holds the same fields as
the by-category view, and `dsr export verify` catches the two disagreeing.

The records come from the real Drive connector (google-api-python-client) over HTTP against the
sandbox's Drive emulator, seeded with tests/fixtures/drive/drive.json.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import jinja2
import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from dsrflow.categories import NAMES, category_name, has_own_name
from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.export import build_export, export_problems, write_export
from dsrflow.language import long_date
from dsrflow.merge import merge, records_frame
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from tests.conftest import REPO
from tests.test_drive_connector import KARI, connector, kari, sandbox  # noqa: F401 (fixture)

CODE = re.compile(r"^(user|system)(\.[a-z][a-z0-9_]*)*$")


def _codes(node: object) -> set[str]:
    """Every category code a mapping file names (as a value or a key)."""
    if isinstance(node, dict):
        keys = {k for k in node if isinstance(k, str) and CODE.match(k)}
        return keys.union(*(_codes(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_codes(v) for v in node))
    return {node} if isinstance(node, str) and CODE.match(node) else set()


def test_every_category_the_mappings_use_has_a_plain_name():
    used = set().union(
        *(_codes(yaml.safe_load(p.read_text())) for p in (REPO / "mappings").glob("*.yaml"))
    )
    assert {"user.contact.email", "user.name", "system.operations"} <= used
    assert sorted(c for c in used if not has_own_name(c)) == []
    assert category_name("user.contact.email", "nb") == "E-postadresse"
    assert category_name("user.contact.email", "en") == "E-mail address"


def test_an_unlisted_code_reads_as_its_parent_never_an_invented_name():
    assert "user.contact.fax" not in NAMES
    assert category_name("user.contact.fax", "nb") == "Kontaktopplysninger"
    assert category_name("user.contact.fax", "en") == "Contact details"
    assert category_name("partner.secret", "en") == "partner.secret"


def test_dates_as_letters_write_them():
    assert long_date(dt.date(2026, 12, 6), "nb") == "6. desember 2026"
    assert long_date("2027-01-31T09:30:00+00:00", "en") == "31 January 2027"


@pytest.fixture
def drive_export(sandbox, onprem_config, tmp_path):  # noqa: F811
    drive = connector(sandbox)
    records = list(drive.discover(kari()))
    frame = merge(records_frame(records))
    config = load_config(onprem_config)
    request = DataSubjectRequest(
        id="DSR-2026-0501",
        type=RequestType.ACCESS,
        subject=Subject.from_raw([KARI]),
        received_at=dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC),
    )
    document = build_export(request, config, {"drive": drive.mapping}, frame)
    files = write_export(document, tmp_path / "out" / request.id, "nb")
    return records, document, files


def _rows_of(page: str, section: str) -> list[str]:
    body = page.split(f'<section class="language" id="{section}"', 1)[1].split("</section>")[0]
    records = body.split("<h2>", 3)[3]  # the records' section comes third
    return re.findall(r'<tr(?: class="shared")?>\s*<td>\d+</td>', records)


def test_one_row_per_spreadsheet_record_in_both_languages(drive_export):
    records, document, files = drive_export
    split_parts = sum(len(p) for c in document.records.values() for p in c.values())
    assert len(records) >= 2
    assert split_parts > len(records)  # the by-category view splits rows into fragments
    page = files.export_html.read_text()
    for lang in ("nb", "en"):
        assert len(_rows_of(page, lang)) == len(records), lang
    # a Name column says what it holds in plain words, in each language
    assert "Name<small>Navn</small>" in page and "Name<small>Name</small>" in page
    assert "E-postadresse" in page and "E-mail address" in page
    assert "user.contact.email" not in page  # no taxonomy code shown
    # readable ids: the spreadsheet's and sheet's names and the row, not digests
    record = records[0]
    nb_id = f"regneark {record.native_id['spreadsheet']}, ark {record.native_id['sheet']}, "
    assert html.escape(nb_id) + f"rad {record.native_id['row']}" in page
    assert f"row {record.native_id['row']}" in page
    assert record.native_id["content"] not in page.replace(html.escape(record.record_id), "")
    assert "Dine personopplysninger hos" in page and "Your personal data held by" in page
    assert page.index('id="nb"') < page.index('id="en"')  # the config's language first


def test_whole_record_view_validates_and_matches_the_records(drive_export):
    records, _, files = drive_export
    written = json.loads(files.export_json.read_text())
    schema = json.loads(files.schema.read_text())
    jsonschema.Draft202012Validator(schema).validate(written)
    whole = {r["record"]: r for r in written["whole_records"]}
    assert len(written["whole_records"]) == len(records) == written["total_records"]
    for record in records:
        entry = whole[record.record_id]
        assert [f["name"] for f in entry["fields"]] == list(record.fields)
        for f in entry["fields"]:
            assert f["value"] == record.fields[f["name"]]
            assert f["category"] == record.categories[f["name"]]
            # the same field sits under the same category in the by-category view
            parts = written["records"]["drive"][f["category"]]
            assert any(
                p["record"] == record.record_id and p["fields"][f["name"]] == f["value"]
                for p in parts
            )
    assert export_problems(files.directory) == []


def test_export_verify_names_views_that_disagree(drive_export, tmp_path):
    _, _, files = drive_export
    runner = CliRunner()
    assert runner.invoke(app, ["export", "verify", str(files.directory)]).exit_code == 0
    written = json.loads(files.export_json.read_text())
    field = written["whole_records"][0]["fields"][0]
    field["value"] = "someone else"
    files.export_json.write_text(json.dumps(written))
    # rewrite the manifest's sum, as someone editing both files would
    manifest = json.loads(files.manifest.read_text())
    import hashlib

    for entry in manifest["files"]:
        if entry["name"] == "export.json":
            entry["sha256"] = hashlib.sha256(files.export_json.read_bytes()).hexdigest()
    files.manifest.write_text(json.dumps(manifest))
    result = runner.invoke(app, ["export", "verify", str(files.directory)])
    assert result.exit_code == 1
    assert f"{field['name']} ({field['category']}) is in whole_records only" in result.output
    assert "is in records only" in result.output


def test_an_export_from_before_the_whole_record_view_still_reads(drive_export, tmp_path):
    """Old exports (no whole_records) verify, and their page puts the parts together again."""
    from dsrflow.export import render_html
    from dsrflow.export_model import AccessExport

    records, document, _ = drive_export
    old = AccessExport.model_validate(document.model_dump(exclude={"whole_records"}))
    assert old.whole_records == []
    page = render_html(old, "en")
    assert len(_rows_of(page, "en")) == len(records)
    directory = write_export(old, tmp_path / "old")
    assert export_problems(directory.directory) == []


def test_the_compiled_page_is_kept_owner_only_for_the_next_process(tmp_path):
    """The next command loads the page's compiled code instead of compiling it again; the
    folder holding it is the user's alone (jinja2 refuses one that is not)."""
    import os
    import stat
    import subprocess
    import sys

    from dsrflow.export import _templates

    env = _templates()
    cache = env.bytecode_cache
    assert isinstance(cache, jinja2.FileSystemBytecodeCache)
    _, filename, _ = env.loader.get_source(env, "export.html")  # type: ignore[union-attr]
    kept = Path(cache.directory) / (cache.pattern % cache.get_cache_key("export.html", filename))
    kept.unlink(missing_ok=True)
    program = "from dsrflow.export import _templates; _templates().get_template('export.html')"
    subprocess.run([sys.executable, "-c", program], check=True, cwd=tmp_path)
    assert kept.is_file(), "the compiled page was not kept for the next process"
    folder = os.stat(cache.directory)
    assert folder.st_uid == os.getuid()
    assert stat.S_IMODE(folder.st_mode) & 0o077 == 0
