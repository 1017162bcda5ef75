"""What a Drive source must grant before a request runs (``DriveConnector.preflight``)."""

from __future__ import annotations

from connectors.base import SourceUnavailable
from connectors.drive.client import SCOPES
from connectors.drive.listing import Listing
from dsrflow.request import RequestType

# Rights whose plans change cells: the delegated user must be able to edit what is mapped.
WRITING_RIGHTS = frozenset(
    {RequestType.ERASURE, RequestType.RECTIFICATION, RequestType.CONSENT_WITHDRAWAL}
)


def preflight_problems(listing: Listing, right: RequestType) -> list[str]:
    """A token for the scopes the connector asks for (with domain-wide delegation, Google
    refuses it unless the Admin console grants the service account every one of them), then
    every mapped folder and spreadsheet readable. Reads and writes use the same scopes, but
    a right that changes cells also needs the delegated user to be an editor of what is
    mapped (Drive's ``capabilities.canEdit``): a reader would see every write refused only
    after the officer approved the plan."""
    source = listing.client.source
    token = listing.client.token_problem()
    if token is not None and token.refused:
        who = f" as {source.delegated_user}" if source.delegated_user else ""
        return [
            f"the service account gets no token{who} ({token.detail}): check its key and "
            f"that domain-wide delegation grants {', '.join(SCOPES)}"
        ]
    if token is not None:
        return [f"cannot be reached: the token request failed ({token.detail})"]
    found = []
    where = f"mapping {source.mapping}"
    by_id = [(i, ref.id) for i, ref in enumerate(listing.mapping.folders) if ref.id]
    readable = listing.readable_folders([f for _, f in by_id])
    for (index, folder), ok in zip(by_id, readable, strict=True):
        if not ok:
            found.append(f"{where} folders.{index}: no folder {folder} readable here")
    try:
        named = listing.named_folder_ids()
        sheets = [f["id"] for f in listing.named_by_id()]
        sheets += [f["id"] for f in listing.named_by_name()]
    except SourceUnavailable as exc:
        found.append(f"{where}: {exc.reason}")
        return found
    if right in WRITING_RIGHTS and not found:
        folders = [f for _, f in by_id] + named
        found += [
            f"{where}: {listing.who()} may read but not edit {what} {file_id}, so "
            f"{right.value} would fail there: share it with them as an editor"
            for what, ids in (("folder", folders), ("spreadsheet", sheets))
            for file_id in listing.not_editable(ids)
        ]
    return found
