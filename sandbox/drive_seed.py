"""Seed data for the sandbox's Google Drive: generated spreadsheets, or ``drive.json`` fixtures.

Generated (``generate``): folders Analytics, Marketing and Sales with usage exports, webinar
attendee lists, leads, trial sign-ups, renewals and account notes; an Archive folder that the
sandbox mapping does not name (only full-text search finds what is in it). Some rows belong to
the demo subject (``onprem_seed.DEMO_SUBJECT``, once stored as ``Kari.Nordmann@Example.COM``,
once by phone only), some to her look-alikes (``onprem_seed.LOOK_ALIKES``), which must never be
taken for her. ``generate_large``: the benchmark profile, 200 spreadsheets x 2,000 rows in 10
folders.

Fixture file ``drive.json``::

    {
      "folders": [{"id": "fld-analytics", "name": "Analytics"}],
      "spreadsheets": [
        {"id": "ss-usage",                      # optional: generated when absent
         "name": "Usage export 2026-Q1",
         "parents": ["fld-analytics"],          # folder ids; absent: My Drive's root
         "sheets": [{"title": "Events",
                     "values": [["Day", "Email", "Product"],          # the header row
                                ["2026-01-02", "kari.nordmann@example.com", "Release Radar"]]}]}
      ]
    }

Cell values are strings, numbers or booleans, as the Sheets API carries them.

Optional, for shared drives and access: ``"shared_drives": [{"id": "0A-sales", "name": "Sales
team", "members": {"someone@fjelltopp.example": "reader"}}]`` (a folder's or spreadsheet's
``parents`` may name a shared drive's id); ``"shared_with": {"e-mail": "reader"|"writer"|...}``
on a folder or spreadsheet; on a sheet, ``"frozen_rows": 1``, ``"row_count": 3`` (the grid's
rows; default 1000) and ``"protected": [{"startRowIndex": 0, "endRowIndex": 1, "editors":
["e-mail"]}]`` (Sheets' GridRange members, end exclusive; only the editors may change those
cells); ``"delegated_user_access": false`` to give the
sandbox's delegated user only what the file says (by default it is given access as an admin
would set it up: ``grant``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

from sandbox import FixtureError
from sandbox.emulators.google import GoogleState
from sandbox.emulators.google.state import ProtectedRange
from sandbox.onprem_seed import (
    DEMO_PHONE,
    DEMO_SUBJECT,
    DEMO_SUBJECT_STORED_AS,
    LOOK_ALIKES,
    PRODUCTS,
)

FOLDERS = ("Analytics", "Marketing", "Sales")
DEMO_NAME = "Kari Nordmann"
EVENTS = ("page_view", "issue_created", "report_exported", "settings_changed", "login")


def counts(state: GoogleState) -> dict[str, int]:
    files = list(state.files.values())
    spreadsheets = [f for f in files if f.sheets]
    return {
        "folders": len(files) - len(spreadsheets),
        "spreadsheets": len(spreadsheets),
        "rows": sum(max(len(s.rows) - 1, 0) for f in spreadsheets for s in f.sheets),
    }


def load_fixture(state: GoogleState, path: Path, grant_to: str | None = None) -> dict[str, int]:
    """Load ``drive.json`` (format in the module docstring) into ``state``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {"folders", "spreadsheets", "shared_drives", "delegated_user_access"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise FixtureError(f"{path}: unknown keys {unknown}; known: {', '.join(sorted(known))}")
    folder_ids = set()
    for i, drive in enumerate(data.get("shared_drives", [])):
        if not drive.get("id") or not drive.get("name"):
            raise FixtureError(f"{path}: shared_drives[{i}] needs id and name")
        folder_ids.add(state.add_shared_drive(drive["name"], drive.get("members"), id=drive["id"]))
    for i, folder in enumerate(data.get("folders", [])):
        if not folder.get("id") or not folder.get("name"):
            raise FixtureError(f"{path}: folders[{i}] needs id and name")
        missing = [p for p in folder.get("parents", []) if p not in folder_ids]
        if missing:
            raise FixtureError(f"{path}: folders[{i}]: parents {missing} come later or not at all")
        folder_ids.add(
            state.add_folder(
                folder["name"],
                folder.get("parents"),
                id=folder["id"],
                shared_with=folder.get("shared_with"),
            )
        )
    for i, sheet in enumerate(data.get("spreadsheets", [])):
        where = f"{path}: spreadsheets[{i}]"
        if not sheet.get("name") or not sheet.get("sheets"):
            raise FixtureError(f"{where} needs name and sheets")
        parents = sheet.get("parents") or ["root"]
        missing = [p for p in parents if p != "root" and p not in folder_ids]
        if missing:
            raise FixtureError(f"{where}: parents {missing} are not among the folders")
        tabs = {}
        for tab in sheet["sheets"]:
            if not tab.get("title") or not isinstance(tab.get("values", []), list):
                raise FixtureError(f"{where}: every sheet needs a title and a values list")
            tabs[tab["title"]] = tab.get("values", [])
        file_id = state.add_spreadsheet(
            sheet["name"], tabs, parents, id=sheet.get("id"), shared_with=sheet.get("shared_with")
        )
        for tab, loaded in zip(sheet["sheets"], state.files[file_id].sheets, strict=True):
            loaded.frozen_rows = int(tab.get("frozen_rows", 0))
            if "row_count" in tab:  # a grid trimmed to its data (a new sheet has 1000 rows)
                loaded.row_count = max(int(tab["row_count"]), len(loaded.rows))
            loaded.protected = [_protected(p) for p in tab.get("protected", [])]
    if grant_to and data.get("delegated_user_access", True):
        grant(state, grant_to)
    return counts(state)


def _protected(grid: dict[str, Any]) -> ProtectedRange:
    """A ProtectedRange from its GridRange members (end indices exclusive) and ``editors``."""
    return ProtectedRange(
        start_row=int(grid.get("startRowIndex", 0)),
        end_row=grid.get("endRowIndex"),
        start_col=int(grid.get("startColumnIndex", 0)),
        end_col=grid.get("endColumnIndex"),
        editors=frozenset(e.lower() for e in grid.get("editors", [])),
    )


def grant(state: GoogleState, user: str) -> None:
    """Give ``user`` what a Workspace admin gives the account dsrflow acts for: editor on every
    top-level folder and spreadsheet of My Drive (shared with them; what is inside inherits it)
    and Content manager (``fileOrganizer``) of every shared drive. Without it Drive shows that
    user nothing, as it would."""
    with state.lock:
        for file in state.files.values():
            if file.drive_id is None and file.parents == ["root"]:
                file.permissions.setdefault(user.lower(), "writer")
        for drive in state.drives.values():
            drive.members.setdefault(user.lower(), "fileOrganizer")


def generate(state: GoogleState, *, seed: int = 2026) -> dict[str, int]:
    """The small sandbox: a few folders, a few dozen spreadsheets."""
    from faker import Faker  # here: a start with kept seeds never imports it

    fake = Faker(["no_NO", "en_GB", "de_DE"])
    Faker.seed(seed)
    rng = random.Random(seed)  # noqa: S311 - reproducible seed data, not secrets
    folder = {name: state.add_folder(name) for name in (*FOLDERS, "Archive")}

    def person() -> tuple[str, str, str, str]:
        name = fake.name()
        return name, fake.unique.email(), fake.phone_number(), fake.company()

    def day(year: int, quarter: int) -> str:
        start = dt.date(year, 3 * quarter - 2, 1)
        return (start + dt.timedelta(days=rng.randint(0, 89))).isoformat()

    def shuffled(header: list[Any], rows: list[list[Any]]) -> list[list[Any]]:
        rng.shuffle(rows)
        return [header, *rows]

    # Analytics: usage exports; the subject in three, once with other casing.
    for n, (year, quarter) in enumerate((y, q) for y in (2024, 2025, 2026) for q in (1, 2, 3, 4)):
        rows = [
            [
                day(year, quarter),
                person()[1],
                rng.choice(PRODUCTS),
                rng.choice(EVENTS),
                rng.randint(1, 300),
            ]
            for _ in range(rng.randint(40, 90))
        ]
        if n in (5, 8, 10):
            stored = DEMO_SUBJECT_STORED_AS if n == 8 else DEMO_SUBJECT
            rows += [[day(year, quarter), stored, "Release Radar", "report_exported", 12]]
        rows += [[day(year, quarter), LOOK_ALIKES[n % 4], rng.choice(PRODUCTS), "login", 3]]
        state.add_spreadsheet(
            f"Usage export {year}-Q{quarter}",
            {"Events": shuffled(["Day", "Email", "Product", "Event", "Count"], rows)},
            [folder["Analytics"]],
        )

    # Marketing: webinar attendees (two with the subject) and leads (one by phone only).
    for n, product in enumerate(PRODUCTS * 2):
        month = dt.date(2026, 1 + n, 1)
        rows = []
        for _ in range(rng.randint(20, 45)):
            name, email, _, company = person()
            rows.append(
                [
                    (month - dt.timedelta(days=rng.randint(1, 20))).isoformat(),
                    name,
                    email,
                    company,
                    f"{product} deep dive",
                    rng.choice(["yes", "no"]),
                ]
            )
        if n in (1, 6):
            rows.append(
                [
                    month.isoformat(),
                    DEMO_NAME,
                    DEMO_SUBJECT,
                    "Fjordsoft AS",
                    f"{product} deep dive",
                    "yes",
                ]
            )
        rows.append(
            [
                month.isoformat(),
                "Kari Nordmann",
                LOOK_ALIKES[(n + 1) % 4],
                "Evil Org",
                f"{product} deep dive",
                "no",
            ]
        )
        state.add_spreadsheet(
            f"Webinar attendees {month:%Y-%m} {product}",
            {
                "Attendees": shuffled(
                    ["Registered", "Name", "Email", "Company", "Webinar", "Attended"], rows
                )
            },
            [folder["Marketing"]],
        )
    for n, region in enumerate(("Nordics", "DACH", "UK & Ireland")):
        rows = [
            [*person(), rng.choice(["webinar", "trial", "event"])]
            for _ in range(rng.randint(30, 60))
        ]
        if n == 0:
            rows.append([DEMO_NAME, "", "+47 912 34 567", "Fjordsoft AS", "event"])
        state.add_spreadsheet(
            f"Leads 2026 {region}",
            {"Leads": shuffled(["Name", "E-mail address", "Phone", "Company", "Source"], rows)},
            [folder["Marketing"]],
        )

    # Sales: trial sign-ups (two sheets in one), renewals under the Bookkeeping Act, notes.
    for year in (2025, 2026):
        tabs = {}
        for product in PRODUCTS[:2]:
            rows = []
            for _ in range(rng.randint(25, 50)):
                name, email, phone, company = person()
                rows.append(
                    [
                        f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} 10:15",
                        name,
                        email,
                        phone,
                        company,
                        product,
                    ]
                )
            if year == 2026:
                rows.append(
                    [
                        f"{year}-03-04 09:30",
                        DEMO_NAME,
                        DEMO_SUBJECT,
                        DEMO_PHONE,
                        "Fjordsoft AS",
                        product,
                    ]
                )
                rows.append(
                    [
                        f"{year}-03-05 11:00",
                        "Kari Nordmann",
                        LOOK_ALIKES[2],
                        "",
                        "Fjordsoft AS",
                        product,
                    ]
                )
            tabs[product] = shuffled(
                ["Signed up", "Name", "Email", "Phone", "Company", "Product"], rows
            )
        state.add_spreadsheet(f"Trial sign-ups {year}", tabs, [folder["Sales"]])
    for year in (2024, 2025):
        rows = [
            [
                f"INV-{year}-{i:04d}",
                f"{year}-{rng.randint(1, 12):02d}-15",
                person()[3],
                person()[1],
                rng.choice(["120.00", "600.00", "2400.00"]),
            ]
            for i in range(rng.randint(20, 40))
        ]
        if year == 2024:
            rows.append(
                [f"INV-{year}-0999", f"{year}-06-15", "Fjordsoft AS", DEMO_SUBJECT, "2400.00"]
            )
        state.add_spreadsheet(
            f"Renewals {year}",
            {
                "Invoices": shuffled(
                    ["Invoice no", "Invoice date", "Company", "Billing email", "Amount"], rows
                )
            },
            [folder["Sales"]],
        )
    notes = [[fake.date_this_year().isoformat(), person()[3], fake.sentence()] for _ in range(15)]
    notes += [
        ["2026-02-11", "Fjordsoft AS", f"Call with {DEMO_SUBJECT_STORED_AS} about the renewal."],
        ["2026-02-12", "Fjordsoft AS", f"Intro from ola.nordmann@example.com to {DEMO_SUBJECT}"],
        ["2026-02-13", "Evil Org", f"Phishing attempt from {LOOK_ALIKES[1]}, ignore."],
    ]
    state.add_spreadsheet(
        "Account notes", {"Notes": shuffled(["Date", "Account", "Note"], notes)}, [folder["Sales"]]
    )

    # Archive (not in the mapping's folders): found only through full-text search.
    state.add_spreadsheet(
        "Meetup 2023 guest list",
        {"Guests": [["Email", "Name"], [DEMO_SUBJECT, DEMO_NAME], [LOOK_ALIKES[0], "A. Kari"]]},
        [folder["Archive"]],
    )
    state.add_spreadsheet(
        "Old newsletter list",
        {"List": [["Email"], *[[person()[1]] for _ in range(30)], [LOOK_ALIKES[3]]]},
        [folder["Archive"]],
    )
    return counts(state)


def generate_large(
    state: GoogleState, *, spreadsheets: int = 200, rows: int = 2000, folders: int = 10
) -> dict[str, int]:
    """The benchmark profile: ``spreadsheets`` usage exports of ``rows`` rows in ``folders``.

    Built without Faker (400,000 rows): synthetic addresses, the demo subject in every tenth
    spreadsheet and a look-alike in every fifth.
    """
    rng = random.Random(7)  # noqa: S311 - reproducible seed data
    folder_ids = [state.add_folder(f"Analytics {n + 1:02d}") for n in range(folders)]
    for n in range(spreadsheets):
        values: list[list[Any]] = [["Day", "Email", "Product", "Event", "Count"]]
        for r in range(rows):
            user = n * rows + r
            values.append(
                [
                    f"2026-{1 + r % 12:02d}-{1 + r % 28:02d}",
                    f"user{user:07d}@customer{user % 997}.example",
                    PRODUCTS[r % len(PRODUCTS)],
                    EVENTS[r % len(EVENTS)],
                    rng.randint(1, 300),
                ]
            )
        if n % 10 == 0:
            values[1 + rng.randrange(rows)][1] = DEMO_SUBJECT
        if n % 5 == 0:
            values[1 + rng.randrange(rows)][1] = LOOK_ALIKES[n % 4]
        state.add_spreadsheet(
            f"Usage export big {n:03d}", {"Events": values}, [folder_ids[n % folders]]
        )
    return counts(state)
