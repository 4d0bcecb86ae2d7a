"""A log that a flood cannot fill: each message at most BURST times a WINDOW, then one count.

Under attack the same line repeats (a refused accept(), an invalid request): 153 MB of « Too many open
files » in 40 s filled a disk once. The filter keys on the message template, never on its arguments,
and keeps only counts.
"""
from __future__ import annotations

import logging
import time

BURST = 5
WINDOW = 60.0
MAX_KEYS = 1000


class Throttle(logging.Filter):
    """Lets the first BURST records of a template through per WINDOW; the next one let through says
    how many were dropped in between."""

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self.clock = clock
        self.seen: dict[tuple[str, str], list] = {}  # (logger, template) -> [window start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        entry = self.seen.get(key)
        if entry is None or now - entry[0] >= WINDOW:
            if len(self.seen) >= MAX_KEYS:
                self.seen.clear()
            dropped = entry[2] if entry else 0
            self.seen[key] = entry = [now, 0, 0]
            if dropped:
                record.msg = f"{record.msg} [{dropped} more like this in the last {WINDOW:.0f} s, not shown]"
        if entry[1] >= BURST:
            entry[2] += 1
            return False
        entry[1] += 1
        return True


def install() -> None:
    """Throttle every handler that a server's lines reach (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())  # else Python's last-resort handler, which no filter reaches
    handlers = list(root.handlers)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncio"):
        handlers += logging.getLogger(name).handlers
    for handler in handlers:
        if not any(isinstance(f, Throttle) for f in handler.filters):
            handler.addFilter(Throttle())
