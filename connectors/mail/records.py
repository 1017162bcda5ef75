"""A confirmed message as a ``Record``: the parts the mapping asks for, each with its data
category, other people masked (Art. 15(4)) unless the mapping turns that off: participants,
and addresses and phone numbers written in the subject line and body, by the one rule of
``connectors.third_parties`` (the controller's own addresses are not other people's).

A record's ``native_id`` is the message's ``internetMessageId`` and its location is
``messages``: the same message in several mailboxes gives records with one id, which the merge
folds into one; each copy names its mailbox and folder in ``fields["locations"]``. A message
without an internetMessageId (a draft) is named by its mailbox and Graph id."""

from __future__ import annotations

from typing import Any

from connectors.mail.mapping import MailMapping, RecordPart
from connectors.mail.match import PARTICIPANT_FIELDS, Matcher, body_text, participants
from connectors.third_parties import ThirdParties, Whose
from dsrflow.records import Record

LOCATION = "messages"


class MessageRecords:
    """Builds the records of one discovery: ``matcher`` holds the subject's addresses,
    ``others`` says who else a message names."""

    def __init__(
        self, source: str, mapping: MailMapping, matcher: Matcher, others: ThirdParties
    ) -> None:
        self.source = source
        self.mapping = mapping
        self.matcher = matcher
        self.others = others
        self.mask = mapping.record.mask_other_participants

    def record(
        self,
        mailbox: str,
        folder: str,
        message: dict[str, Any],
        matched: set[str],
        via: str | None,
        attachments: list[dict[str, Any]] | None,
    ) -> Record:
        parts = set(self.mapping.record.parts)
        categories = self.mapping.field_categories
        internet_id = message.get("internetMessageId")
        fields: dict[str, Any] = {"locations": [f"{mailbox}/{folder}"]}
        cats: dict[str, str] = {"locations": categories.folder}
        if RecordPart.FOLDER in parts:
            fields |= {"mailbox": mailbox, "folder": folder}
            cats |= {"mailbox": categories.folder, "folder": categories.folder}
        others = self._others(message)
        if RecordPart.SUBJECT in parts:
            fields["subject"] = self._text(message.get("subject"), "subject", others)
            cats["subject"] = categories.subject
        timestamps = {}
        if RecordPart.DATES in parts:
            for name in ("sentDateTime", "receivedDateTime"):
                fields[name] = message.get(name)
                cats[name] = categories.dates
                if message.get(name):
                    timestamps[name] = message[name]
        if RecordPart.PARTICIPANTS in parts:
            for name in PARTICIPANT_FIELDS:
                fields[name] = self._people(message.get(name))
                cats[name] = categories.participants
        if RecordPart.BODY in parts:
            fields["body"] = self._text(body_text(message.get("body")), "body", others)
            cats["body"] = categories.body
        if RecordPart.ATTACHMENTS in parts:
            fields["attachments"] = attachments or []
            cats["attachments"] = categories.attachments
        native_id = (
            {"internetMessageId": internet_id}
            if internet_id
            else {"mailbox": mailbox, "id": message["id"]}
        )
        return Record(
            source=self.source,
            location=LOCATION,
            native_id=native_id,
            categories=cats,
            fields=fields,
            matched=tuple(sorted(f"email:{a}" for a in matched)),
            reached_via=via,
            timestamps=timestamps,
            shared=bool(others),
            shared_with=tuple(sorted(others)),
        )

    def _others(self, message: dict[str, Any]) -> set[str]:
        """The participant fields that name someone other than the subject or the controller
        (Art. 15(4)). A participant without a readable address is someone else."""
        others = set()
        for name in PARTICIPANT_FIELDS:
            if name == "sender":
                continue  # the sender is the from address, or a delegate acting for it
            for person in participants({name: message.get(name)}):
                if self.others.whose_address(person.get("address")) in (None, Whose.OTHER):
                    others.add(name)
        return others

    def _text(self, text: str | None, name: str, others: set[str]) -> str | None:
        """A text part, other people masked; one who is named there makes the message shared
        (``others`` gains the part's name)."""
        if not text:
            return text
        if self.others.others_in(text):
            others.add(name)
            return self.others.mask(text) if self.mask else text
        return text

    def _people(self, value: Any) -> Any:
        """Participants as ``{"name", "address"}``; other people masked unless the mapping
        turns that off."""
        people = [
            {"name": e.get("name"), "address": e.get("address")}
            for entry in (value if isinstance(value, list) else [value])
            if isinstance(entry, dict) and (e := entry.get("emailAddress"))
        ]
        out = []
        for person in people:
            whose = self.others.whose_address(person.get("address"))
            if self.mask and whose in (None, Whose.OTHER):
                name = str(person.get("name") or "")
                person = {
                    "name": f"{name[:1]}***" if name else None,
                    "address": self.others.masked_address(person.get("address")),
                }
            out.append(person)
        if isinstance(value, list):
            return out
        return out[0] if out else None
