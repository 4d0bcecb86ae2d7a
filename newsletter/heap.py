"""The garbage collector of a long-running process (the service, its mail process), set once started.

Python's cyclic collector runs every 700 allocations, and its full passes walk every object alive:
the modules, the templates, the app, built at start and never freed. Under a signup wave those passes
were the service's slowest answers (p99 60–90 ms at 50 connections; 46–58 ms with this). After start,
`settle()` moves what exists to a generation the collector no longer walks (gc.freeze(), as Instagram
and gunicorn's users do) and collects the young generation 70 times less often: the requests' objects
are freed by reference counting anyway, and cycles are still collected, a little later.
"""
from __future__ import annotations

import gc

YOUNG = 50_000  # allocations between two collections of the young generation (Python's default: 700)


def settle() -> None:
    """Call once the process has built what it keeps."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
