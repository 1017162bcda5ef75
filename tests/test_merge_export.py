import json

from dsrflow.export_model import export_json_schema_text
from dsrflow.merge import merge, records_frame, summary
from dsrflow.records import Record
from tests.conftest import REPO


def record(**overrides):
    values = {
        "source": "onprem",
        "location": "contacts",
        "native_id": {"id": 1},
        "categories": {"email": "user.contact.email"},
        "fields": {"email": "al@example.com"},
        "matched": ("email:al@example.com",),
        "timestamps": {"created_at": "2024-01-01T10:00:00+01:00"},
    }
    return Record(**{**values, **overrides})


def test_duplicates_fold_into_one_record():
    frame = merge(
        records_frame(
            [
                record(),
                record(
                    matched=("phone:+4791234567",), shared=True, shared_with=("orders.customer_id",)
                ),
                record(native_id={"id": 2}, matched=(), reached_via="contacts.customer_id -> x"),
            ]
        )
    )
    assert list(frame["record_id"]) == ["onprem:contacts:id=1", "onprem:contacts:id=2"]
    first = frame.iloc[0]
    assert first["matched"] == {"email:al@example.com", "phone:+4791234567"}
    assert bool(first["shared"]) is True
    assert first["shared_with"] == {"orders.customer_id"}
    assert frame.iloc[1]["reached_via"] == "contacts.customer_id -> x"


def test_timestamps_normalised_to_utc():
    frame = merge(
        records_frame(
            [
                record(
                    timestamps={
                        "a": "2024-01-01T10:00:00+01:00",
                        "b": "2024-06-01T08:00:00",
                        "c": "2024-06-01",
                    }
                )
            ]
        )
    )
    assert frame.iloc[0]["timestamps"] == {
        "a": "2024-01-01T09:00:00Z",
        "b": "2024-06-01T08:00:00Z",
        "c": "2024-06-01",
    }


def test_summary_counts_per_location():
    frame = merge(
        records_frame(
            [record(), record(native_id={"id": 2}, shared=True), record(location="invoices")]
        )
    )
    assert summary(frame).to_dict("records") == [
        {"source": "onprem", "location": "contacts", "records": 2, "shared": 1},
        {"source": "onprem", "location": "invoices", "records": 1, "shared": 0},
    ]
    assert summary(merge(records_frame([]))).empty


def test_published_export_schema_is_current():
    committed = (REPO / "dsrflow" / "schemas" / "export.schema.json").read_text()
    assert committed == export_json_schema_text(), (
        "run: dsr schema export > dsrflow/schemas/export.schema.json"
    )
    assert "records" in json.loads(committed)["required"]


def test_html_escapes_record_contents(tmp_path):
    import datetime as dt

    from dsrflow.config import Controller
    from dsrflow.export import render_html
    from dsrflow.export_model import AccessExport, Art15Information, RecordPart, RequestInfo

    doc = AccessExport(
        request=RequestInfo(
            id="DSR-2026-0001",
            type="access",
            received_at="2026-01-01",
            due_at="2026-02-01",
            generated_at=dt.datetime.now(dt.UTC).isoformat(),
        ),
        controller=Controller(name="C", address="A", contact_email="c@example.com"),
        subject={"emails": ["al@example.com"]},
        information=Art15Information(
            purposes=[],
            categories=[],
            recipients=[],
            retention=[],
            rights=[],
            complaint={"name": "D", "url": "u", "address": "a"},
            sources=[],
            automated_decision_making="none",
        ),
        summary=[],
        total_records=1,
        records={
            "onprem": {
                "user.name": [
                    RecordPart(
                        record="onprem:contacts:id=1",
                        location="contacts",
                        native_id={"id": 1},
                        fields={"name": "<script>alert(1)</script>"},
                        timestamps={},
                        matched=[],
                        reached_via=None,
                        shared=False,
                        shared_with=[],
                    )
                ]
            }
        },
    )
    html = render_html(doc)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_same_message_in_two_mailboxes_keeps_both_locations():
    first = record(
        location="messages",
        native_id={"internetMessageId": "<m1@x>"},
        fields={"subject": "Hi", "locations": [{"mailbox": "support@x"}]},
    )
    second = record(
        location="messages",
        native_id={"internetMessageId": "<m1@x>"},
        fields={"subject": "Hi", "locations": [{"mailbox": "sales@x"}]},
    )
    (merged,) = merge(records_frame([first, second]))["fields"]
    assert merged["locations"] == [{"mailbox": "sales@x"}, {"mailbox": "support@x"}]
