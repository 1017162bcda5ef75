"""The languages dsrflow writes to the subject in (Norwegian bokmål and English), and dates as a
letter writes them in each."""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

Language = Literal["nb", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

_MONTHS: dict[Language, tuple[str, ...]] = {
    "nb": (
        "januar", "februar", "mars", "april", "mai", "juni",
        "juli", "august", "september", "oktober", "november", "desember",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip


def long_date(value: dt.date | dt.datetime | str, language: Language) -> str:
    """``2026-12-06`` -> "6. desember 2026" (nb, as Språkrådet writes dates) / "6 December 2026"
    (en). A datetime or an ISO text counts by its date as written (UTC in dsrflow's files)."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    elif isinstance(value, dt.datetime):
        value = value.date()
    month = _MONTHS[language][value.month - 1]
    return (
        f"{value.day}. {month} {value.year}"
        if language == "nb"
        else f"{value.day} {month} {value.year}"
    )
