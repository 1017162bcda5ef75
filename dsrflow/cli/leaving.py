"""Leaving the process without the interpreter's last garbage collections.

A command imports Prefect, pandas and the vendors' SDKs: some 230,000 objects the cyclic
collector tracks. While the interpreter finalizes its modules at exit it traverses them all
again, which cost every ``dsr`` command about 0.7 s of CPU after its work was done (issue 18;
``perf record`` shows ``gc_collect_main`` and ``visit_decref``). Frozen (``gc.freeze``) once every
other exit handler has run (Prefect's drain its events and logs first), they are not
traversed: objects are still released as their references go, and Python never promised to
finalize objects still alive at exit (the data model, ``object.__del__``).
"""

from __future__ import annotations

import atexit
import gc


def skip_final_collections() -> None:
    """Freeze the collector at exit. Exit handlers run last-registered first, so call this
    before anything registers its own: those then run before the freeze."""
    atexit.register(_freeze)


def _freeze() -> None:
    gc.disable()
    gc.freeze()
