"""One post over several SMTP connections at once (NEWSLETTER_SMTP_CONNECTIONS, spread over SMTP_URL's relays).

Why ranges, not a shared queue of readers: a queue's progress is a set of addresses, which would have
to be stored to resume; a range's progress is one number. When a post's send starts, the subscriber
ids after the post's start position are cut into ranges of about equal count (lo excluded, hi
included; the last range has no end, so a reader who confirms during the send gets the post, as with
one connection), stored all at once (`store.start_ranges`). Each range is walked in id order by one
connection and checkpointed after every message: a kill -9 leaves at most one message in flight per
connection, and only those are sent twice on resume.

A resumed send reuses its stored ranges whatever NEWSLETTER_SMTP_CONNECTIONS says now: N workers take
the unfinished ranges one after another. A send interrupted before ranges existed (its position in
`sends` only) is cut from that position, like a fresh one.

NEWSLETTER_RATE stays one limit for the whole send: a single token bucket (`Pacer`) shared by every
connection.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

PAGE = 5000  # ids read at a time while counting and cutting: memory stays flat whatever the list size

Range = tuple[int, int | None, int]  # (lo, hi, position reached): ids in (lo, hi], mailed up to position


def remaining(store, position: int, upto: int | None = None, lists=None) -> int:
    """How many subscribers (on one of `lists`, when given) are after `position` (up to `upto`), counted
    page by page."""
    count = 0
    while True:
        page = store.subscribers_after(position, PAGE, upto, lists)
        if not page:
            return count
        count += len(page)
        position = page[-1][0]


def to_go(store, ranges: list[Range], lists=None) -> int:
    """How many subscribers (on one of `lists`, when given) are still to mail in these ranges."""
    return sum(remaining(store, position, hi, lists) for _, hi, position in ranges)


def cut(store, start: int, n: int, lists=None) -> list[tuple[int, int | None]]:
    """The ids after `start`, cut into at most `n` contiguous ranges of about equal count, as (lo, hi);
    the last is open-ended. Two walks in pages (count, then cut): nothing held but the bounds."""
    total = remaining(store, start, lists=lists)
    n = max(1, min(n, total))
    ends = [total * k // n for k in range(1, n)]  # rank (from 1) of the last id of each range but the last
    bounds, lo, rank, position = [], start, 0, start
    while ends:
        page = store.subscribers_after(position, PAGE, lists=lists)
        if not page:
            break  # readers left since the count: fewer, larger ranges still cover every id
        for position, _ in page:
            rank += 1
            if ends and rank == ends[0]:
                bounds.append((lo, position))
                lo = position
                ends.pop(0)
    return bounds + [(lo, None)]


class Pacer:
    """One token bucket for every connection: the n-th message overall leaves no earlier than
    (n - 1) / rate seconds after the first. Each caller reserves the next slot, then sleeps until it."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            slot = now if self._next is None else max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


def run_ranges(ranges: list[Range], relays: list, connections: int,
               connect: Callable[[object], AbstractContextManager],
               walk: Callable[[object, Range, threading.Event], None]) -> None:
    """Walk every range with min(connections, ranges) workers, one connection each (`connect(relay)`),
    worker i on relay i modulo the pool. The first error stops every worker after its current message
    (its checkpoint saved) and is raised here; so is Ctrl-C, once the workers have stopped."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in ranges:
        todo.put(item)
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(relay) -> None:
        try:
            with connect(relay) as mailer:
                while not stop.is_set():
                    try:
                        item = todo.get_nowait()
                    except queue.Empty:
                        return
                    walk(mailer, item, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=worker, args=(relays[i % len(relays)],), name=f"send-{i + 1}")
               for i in range(max(1, min(connections, len(ranges))))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
