"""Full snapshots of every sandbox source, read through the API each one serves (for tests).

Each snapshot is everything a source holds, as plain JSON-able data keyed by names that stay the
same from one sandbox to the next (mailbox + internetMessageId + folder, spreadsheet name, issue
key), so that two sandboxes seeded alike can be compared. Values that a sandbox makes up anew
each time (Graph message ids, Drive file ids, the emulators' ports) are left out or replaced by
stable names; nothing else is dropped.

* SQL: every row of every table (SQLAlchemy, as the connector reads it).
* mail: every message of every mailbox, in any folder (``GET /users``, ``GET
  /users/{id}/messages?$expand=attachments``, folder names by ``GET …/mailFolders/{id}``).
* drive: every file's metadata, every spreadsheet's sheets with their grid size and values
  (google-api-python-client with the sandbox's service-account key).
* jira: every issue with all its fields and all its comments, every service desk with its
  customers, and every user that a user search finds (Jira Cloud REST over httpx).
* marketplace: every licence and transaction the vendor's reports hold, by ``addonLicenseId``
  and ``transactionId`` (the reporting API over httpx, following ``next``).
* analytics: the user deletion requests filed, by ``propertyId/type/userId`` (the API cannot
  read a property's data; the emulator's ``GET /_emulator/analytics`` lists what was filed).
"""

from __future__ import annotations

import base64
import string
from typing import Any

import httpx
import sqlalchemy as sa

from connectors.analytics.settings import AnalyticsSource
from connectors.drive.settings import DriveSource
from connectors.jira.settings import JiraSource
from connectors.mail.settings import MailSource
from connectors.marketplace.settings import MarketplaceSource
from connectors.sql.settings import SqlSource
from dsrflow.config import Config

Snapshot = dict[str, Any]


# -- SQL --------------------------------------------------------------------------------------


def sql_snapshot(url: str) -> Snapshot:
    """table -> {primary key (as text) -> row}."""
    engine = sa.create_engine(url)
    tables: Snapshot = {}
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for name in sorted(inspector.get_table_names()):
                keys = inspector.get_pk_constraint(name).get("constrained_columns") or []
                rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).mappings().all()
                table: dict[str, dict[str, Any]] = {}
                for row in rows:
                    data = {k: _plain(v) for k, v in row.items()}
                    key = ",".join(f"{k}={data[k]}" for k in keys) if keys else repr(data)
                    assert key not in table, f"{name}: duplicate key {key}"
                    table[key] = data
                tables[name] = table
    finally:
        engine.dispose()
    return tables


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


# -- mail (Microsoft Graph) -------------------------------------------------------------------


def _graph_pages(client: httpx.Client, url: str, params: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    next_url: str | None = url
    query: dict[str, str] | None = params
    while next_url:
        response = client.get(next_url, params=query)
        response.raise_for_status()
        body = response.json()
        items += body["value"]
        next_url, query = body.get("@odata.nextLink"), None
    return items


def mail_snapshot(source: MailSource) -> Snapshot:
    """``mailbox address`` -> {``internetMessageId | folder name`` -> message with attachments}.

    Graph ids (new at every seeding, and at every move) are replaced by the folder's name.
    """
    base = str(source.base_url).rstrip("/")
    headers = {"Authorization": "Bearer snapshot"}
    boxes: Snapshot = {}
    with httpx.Client(headers=headers, timeout=30) as client:
        users = _graph_pages(client, f"{base}/users", {"$top": "999"})
        for user in sorted(users, key=lambda u: str(u["mail"])):
            address = str(user["mail"]).lower()
            messages = _graph_pages(
                client,
                f"{base}/users/{user['id']}/messages",
                {"$top": "1000", "$expand": "attachments"},
            )
            folders: dict[str, str] = {}
            box: dict[str, Any] = {"user": {k: v for k, v in user.items() if k != "id"}}
            for message in messages:
                folder_id = message["parentFolderId"]
                if folder_id not in folders:
                    answer = client.get(f"{base}/users/{user['id']}/mailFolders/{folder_id}")
                    answer.raise_for_status()
                    folders[folder_id] = answer.json()["displayName"]
                item = {k: v for k, v in message.items() if k not in ("id", "parentFolderId")}
                item["folder"] = folders[folder_id]
                item["attachments"] = sorted(
                    ({k: v for k, v in a.items() if k != "id"} for a in message["attachments"]),
                    key=repr,
                )
                key = f"{message.get('internetMessageId')} | {item['folder']}"
                assert key not in box, f"{address}: two copies of {key}"
                box[key] = item
            boxes[address] = box
    return boxes


# -- Google Drive and Sheets ------------------------------------------------------------------


def drive_snapshot(name: str, source: DriveSource) -> Snapshot:
    """``file name`` -> {metadata, and for a spreadsheet its sheets: properties and values}.

    File ids are made up at seeding: parents are given by name, ids and links are left out.
    """
    from connectors.drive.client import GoogleClient

    client = GoogleClient(name, source)
    members = "id,name,mimeType,parents,trashed,starred,createdTime,modifiedTime,version"
    files: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = client.call(
            client.files.list(
                pageSize=1000, pageToken=token, fields=f"nextPageToken,files({members})"
            ),
            "list_pages",
        )
        files += page.get("files", [])
        token = page.get("nextPageToken")
        if not token:
            break
    names = {f["id"]: f["name"] for f in files}
    snapshot: Snapshot = {}
    for file in files:
        item = {k: v for k, v in file.items() if k not in ("id", "parents")}
        item["parents"] = [names.get(p, p) for p in file.get("parents", [])]
        if file["mimeType"] == "application/vnd.google-apps.spreadsheet":
            meta = client.call(client.spreadsheets.get(spreadsheetId=file["id"]), "metadata_reads")
            titles = [s["properties"]["title"] for s in meta["sheets"]]
            values = client.call(
                client.values.batchGet(
                    spreadsheetId=file["id"], ranges=[_a1(t) for t in titles], majorDimension="ROWS"
                ),
                "values_reads",
            )
            item["sheets"] = {
                sheet["properties"]["title"]: {
                    "properties": sheet["properties"],
                    "values": [list(r) for r in answer.get("values", [])],
                }
                for sheet, answer in zip(meta["sheets"], values["valueRanges"], strict=True)
            }
        assert file["name"] not in snapshot, f"two files named {file['name']!r}"
        snapshot[file["name"]] = item
    return snapshot


def _a1(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


# -- Jira Service Management ------------------------------------------------------------------


def jira_snapshot(source: JiraSource) -> Snapshot:
    """Issues (by key, all fields, all comments), service desks with customers, users."""
    base = str(source.url).rstrip("/")
    token = source.api_token.resolve() if source.api_token else ""
    auth = (str(source.email), token)
    snapshot: Snapshot = {"issues": {}, "servicedesks": {}, "users": {}}
    with httpx.Client(base_url=base, auth=auth, timeout=30) as client:

        def get(path: str, **params: Any) -> Any:
            response = client.get(path, params=params)
            response.raise_for_status()
            return _unbased(response.json(), base)

        start = 0
        while True:  # Data Center's search takes a JQL without restriction: every issue
            page = get(
                "/rest/api/2/search",
                jql="ORDER BY key",
                fields="*all",
                startAt=start,
                maxResults=100,
            )
            for issue in page["issues"]:
                fields = dict(issue["fields"])
                fields.pop("comment")  # inline: at most 20; all of them below
                comments = get(f"/rest/api/2/issue/{issue['key']}/comment", maxResults=5000)
                assert comments["total"] == len(comments["comments"])
                snapshot["issues"][issue["key"]] = {
                    "id": issue["id"],
                    "fields": fields,
                    "comments": comments["comments"],
                }
            start += len(page["issues"])
            if not page["issues"] or start >= page["total"]:
                break
        accounts: set[str] = set()
        desks = get("/rest/servicedeskapi/servicedesk", limit=100)
        assert desks["isLastPage"]
        for desk in desks["values"]:
            customers: list[Any] = []
            offset = 0
            while True:
                page = get(
                    f"/rest/servicedeskapi/servicedesk/{desk['id']}/customer",
                    start=offset,
                    limit=100,
                )
                customers += page["values"]
                offset += page["size"]
                if page["isLastPage"]:
                    break
            accounts |= {c["accountId"] for c in customers}
            snapshot["servicedesks"][desk["id"]] = {**desk, "customers": customers}
        # No route lists every user: search by every first letter, then by every account
        # seen anywhere (reporters, participants, authors, customers).
        for query in string.ascii_lowercase + string.digits:
            for user in get("/rest/api/2/user/search", query=query, maxResults=1000):
                snapshot["users"][user["accountId"]] = user
        accounts |= _accounts_in(snapshot["issues"])
        for account in sorted(accounts - set(snapshot["users"])):
            for user in get("/rest/api/2/user/search", accountId=account, maxResults=1000):
                snapshot["users"][user["accountId"]] = user
    return snapshot


def _accounts_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["accountId"]} if isinstance(value.get("accountId"), str) else set()
        for item in value.values():
            found |= _accounts_in(item)
        return found
    if isinstance(value, list):
        return set().union(*(_accounts_in(v) for v in value)) if value else set()
    return set()


def _unbased(value: Any, base: str) -> Any:
    """The emulator's own URL (its port changes every start) replaced by ``<jira>``."""
    if isinstance(value, str):
        return value.replace(base, "<jira>")
    if isinstance(value, dict):
        return {k: _unbased(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_unbased(v, base) for v in value]
    return value


# -- all sources -------------------------------------------------------------------------------


def marketplace_snapshot(source: MarketplaceSource) -> Snapshot:
    """report -> {its id -> the item as served}."""
    reports = {
        "licenses": ("reporting/licenses", "addonLicenseId"),
        "transactions": ("reporting/sales/transactions", "transactionId"),
    }
    auth = (source.email, source.api_token.resolve())
    everything: Snapshot = {}
    with httpx.Client(base_url=source.url, auth=auth, timeout=30) as http:
        for name, (path, key) in reports.items():
            items: dict[str, Any] = {}
            url: str | None = f"/rest/2/vendors/{source.vendor_id}/{path}?limit=50"
            while url:
                answer = http.get(url)
                answer.raise_for_status()
                page = answer.json()
                for item in page[name]:
                    items[str(item[key])] = item
                url = (page["_links"].get("next") or {}).get("href")
            everything[name] = items
    return everything


def analytics_snapshot(source: AnalyticsSource) -> Snapshot:
    """``propertyId/type/userId`` -> deletionRequestTime, as the emulator holds them."""
    answer = httpx.get(f"{source.api_url}/_emulator/analytics", timeout=30)
    answer.raise_for_status()
    return {
        f"{d['propertyId']}/{d['type']}/{d['userId']}": d["deletionRequestTime"]
        for d in answer.json()["deletions"]
    }


def snapshot_all(config: Config) -> Snapshot:
    """Every source of ``config``, by source name."""
    everything: Snapshot = {}
    for name, source in config.sources.items():
        if isinstance(source, SqlSource):
            everything[name] = sql_snapshot(source.database_url())
        elif isinstance(source, MailSource):
            everything[name] = mail_snapshot(source)
        elif isinstance(source, DriveSource):
            everything[name] = drive_snapshot(name, source)
        elif isinstance(source, JiraSource):
            everything[name] = jira_snapshot(source)
        elif isinstance(source, MarketplaceSource):
            everything[name] = marketplace_snapshot(source)
        elif isinstance(source, AnalyticsSource):
            everything[name] = analytics_snapshot(source)
        else:  # pragma: no cover - a new kind of source needs its snapshot here
            raise TypeError(f"no snapshot for {name}: {type(source).__name__}")
    return everything
