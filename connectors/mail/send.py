"""Sending one message from a mailbox of the tenant: Graph's ``POST /users/{id}/sendMail``
(https://learn.microsoft.com/graph/api/user-sendmail) through msgraph-sdk, as the app (the
application permission ``Mail.Send``). Graph answers 202 Accepted with no body and, with
``saveToSentItems``, keeps the message in the sender's Sent Items.

A send is a write that is never repeated blindly: the SDK's retry handler is off for it; a 429
(refused before it ran) is sent again after its Retry-After, and a lost answer (a connection
failure or a 5xx) is reported as such, so that the officer checks Sent Items before sending
again.

File attachments go inline up to 3 MB; a larger file needs an upload session
(https://learn.microsoft.com/graph/outlook-large-attachments), which is not implemented here:
such a message is refused before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)

from connectors.base import SourceUnavailable
from connectors.mail.client import GraphError, GraphSession
from connectors.mail.settings import MailSource
from connectors.writes import AmbiguousWrite

INLINE_ATTACHMENT_LIMIT = 3 * 1024 * 1024  # bytes; Graph: "files up to 3 MB"


class SendRefused(SourceUnavailable):
    """Graph refused the message, or its answer was lost; the message says which."""


@dataclass(frozen=True)
class Attachment:
    name: str
    content: bytes
    content_type: str = "application/octet-stream"


def _message(to: str, subject: str, text: str, attachments: list[Attachment]) -> Message:
    message = Message(
        subject=subject,
        body=ItemBody(content_type=BodyType.Text, content=text),
        to_recipients=[Recipient(email_address=EmailAddress(address=to))],
    )
    if attachments:
        message.attachments = [
            FileAttachment(name=a.name, content_type=a.content_type, content_bytes=a.content)
            for a in attachments
        ]
    return message


def send_mail(
    source_name: str,
    settings: MailSource,
    sender: str,
    to: str,
    subject: str,
    text: str,
    attachments: list[Attachment] | None = None,
) -> None:
    """Send ``text`` from ``sender``'s mailbox to ``to``, saved to the sender's Sent Items."""
    attachments = attachments or []
    for attachment in attachments:
        if len(attachment.content) > INLINE_ATTACHMENT_LIMIT:
            raise SendRefused(
                source_name,
                f"{attachment.name} is {len(attachment.content)} bytes: Graph takes attachments "
                "inline up to 3 MB and larger ones only through an upload session, which dsrflow "
                "does not do; deliver through the service desk instead",
            )
    body = SendMailPostRequestBody(
        message=_message(to, subject, text, attachments), save_to_sent_items=True
    )
    # One send: the SDK's retry handler would repeat it on 503/504, which may follow a send.
    options = RequestConfiguration(options=[RetryHandlerOption(should_retry=False)])  # type: ignore[var-annotated]
    session = GraphSession(source_name, settings)
    try:
        builder = session.client.users.by_user_id(sender).send_mail
        session.run(
            session.call(sender, "send_mail", lambda: builder.post(body, options), write=True)
        )
    except AmbiguousWrite as exc:
        raise SendRefused(
            source_name,
            f"the answer to sending from {sender} was lost ({exc.problem}): the message may or "
            f"may not have gone; look in that mailbox's Sent Items before sending again",
        ) from None
    except APIError as exc:
        raise SendRefused(
            source_name, f"Graph refused sending from {sender}: {GraphError.of(exc).describe()}"
        ) from None
    finally:
        session.close()
