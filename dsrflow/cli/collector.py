"""What the cyclic garbage collector traverses in a ``dsr`` command (issue 18).

A command imports Prefect, pandas and the vendors' SDKs and loads the sandbox's seed data:
some 230,000 objects the collector tracks, nearly all alive until the command exits. Every full
collection traverses them again: one in the middle of a small access flow took ~0.2 s (found
by cProfile in whatever allocation triggered it), and the interpreter's collections while it
finalizes its modules at exit took ~0.7 s of CPU after the work was done (``perf record``:
``gc_collect_main``, ``visit_decref``). ``gc.freeze`` moves what exists into a generation the
collector leaves alone: it is still released as its references go, and what was cyclic garbage
at that moment stays until the process ends — one command, one request. Python never promised
to finalize objects still alive at exit (the data model, ``object.__del__``).
"""

from __future__ import annotations

import atexit
import gc

_one_command = False  # set by the console script only: the tests run commands in their process


def one_command_per_process() -> None:
    """Say this process runs one command (``dsr``'s entry point), and freeze the collector at
    exit. Exit handlers run last-registered first, so call this before anything registers its
    own: those (Prefect's drains of events and logs) run before the freeze."""
    global _one_command
    _one_command = True
    atexit.register(_freeze)


def settle() -> None:
    """What the command has built so far lives until it exits: not traversed again. Nothing
    in a process that runs more than one command (a test session would keep its garbage)."""
    if _one_command:
        gc.freeze()


def _freeze() -> None:
    gc.disable()
    gc.freeze()
