"""The descriptions of the parameters the request flows share, written once.

A deployment's run form (Run → Custom run in the Prefect UI) describes each parameter with its
entry in the Args section of the flow's docstring (Prefect reads the docstring with
``inspect.getdoc``, Google style). A request flow's docstring describes only its own
parameters; ``shared_parameter_docs`` writes the entries of the shared ones into its Args
section, in the order of the flow's signature, before ``@flow`` reads it.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# As they stand in an Args section (continuation lines indented): the run form shows them so.
SHARED_ARGS = """\
request_id: The request's id, e.g. DSR-2026-0001. A request opened before (by the
    intake or `dsr`) needs no identifiers here.
subject_emails: The subject's e-mail addresses; leave empty for a request already in
    the ledger. Moved out of Prefect once read.
subject_phones: The subject's phone numbers, national or with the country code.
received_at: When the request was received: the one-month deadline counts from it.
    Empty: now; a request opened before keeps its time.
dry_run: Plan only: the plan is written and nothing changes; the request stays a
    draft.
subject_analytics_client_ids: The subject's Google Analytics client ids (the _ga
    cookie's value, e.g. GA1.1.123.456); only with an e-mail address.
subject_analytics_user_ids: The subject's user ids in Google Analytics (the site's own
    ids); only with an e-mail address.
"""


def _entries(section: str) -> dict[str, list[str]]:
    """An Args section's entries (without the section's indentation), by parameter name."""
    entries: dict[str, list[str]] = {}
    entry: list[str] | None = None
    for line in textwrap.dedent(section).splitlines():
        if line and not line[0].isspace():  # "name: description", continued below it
            entry = []
            entries[line.split(":", 1)[0]] = entry
        if entry is not None:
            entry.append(line)
        elif line.strip():
            raise ValueError(f"not an Args entry: {line!r}")
    return entries


_SHARED = _entries(SHARED_ARGS)


def shared_parameter_docs(fn: F) -> F:
    """Give ``fn``'s docstring an Args section describing every parameter, in the order of its
    signature: its own entries (Args must be the docstring's last section), else the shared
    ones above. A parameter described nowhere, or an entry for none, is an error here rather
    than a blank in the run form."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    head, _, section = doc.partition("\nArgs:\n")
    if section and not all(line[:1].isspace() for line in section.splitlines() if line):
        raise ValueError(f"{fn.__qualname__}: Args must be the last section of the docstring")
    own = _entries(section)
    lines: list[str] = []
    for name in inspect.signature(fn).parameters:
        entry = own.pop(name, None) or _SHARED.get(name)
        if entry is None:
            raise ValueError(f"{fn.__qualname__}: parameter {name} is described nowhere")
        lines += [f"    {line}" if line else line for line in entry]
    if own:
        raise ValueError(f"{fn.__qualname__}: Args describes {sorted(own)}, not parameters")
    fn.__doc__ = head.rstrip("\n") + "\n\nArgs:\n" + "\n".join(lines)
    return fn
