"""Erasures acknowledged, and the wait until no file holds them: what both stores share.

A store counts each DELETE that must leave no byte behind (`_deleted`, under its own lock) and
implements `_scrub(upto)`: one pass that waits on nobody for long, True once erasure number `upto` is
gone from every file (store.py: VACUUM and a WAL checkpoint; pgstore.py: VACUUM of the tables). This
class retries the pass for as long as the reader may wait, hands the rest to a background thread, and
makes a last bounded try at close.
"""
from __future__ import annotations

import enum
import logging
import threading
import time

logger = logging.getLogger(__name__)

ERASE_WAIT = 2.0  # seconds an unsubscribe waits for a reader of the store before answering "pending"


class Erasure(enum.Enum):
    """What `remove` did: the caller tells the reader exactly this."""
    ABSENT = "absent"    # the address was not subscribed
    ERASED = "erased"    # out of the list and in no byte of the store's files
    PENDING = "pending"  # out of the list; its old bytes go as soon as a reader of the store is done


class Erasures:
    """The waiting half of a store's erasures; the store provides `_scrub` and sets RETRIED."""

    RETRIED: tuple[type[Exception], ...] = ()  # a pass's errors the background thread outlives (disk full, a restart)

    def _init_erasures(self) -> None:
        self._scrub_lock = threading.Lock()  # one erasure pass at a time
        self._deleted = self._erased = 0     # erasures counted, gone from disk
        self._finisher: threading.Thread | None = None
        self._closed = threading.Event()

    def _scrub(self, upto: int) -> bool:
        raise NotImplementedError

    def _erase(self, mine: int, wait: float) -> Erasure:
        """Wait up to `wait` seconds for erasure number `mine` to be gone from every file."""
        deadline, pause = time.monotonic() + wait, 0.005
        while not self._scrub(mine):
            if time.monotonic() >= deadline:
                self._finish_in_background()
                return Erasure.PENDING
            time.sleep(pause)  # the store is free meanwhile: confirmations go on
            pause = min(pause * 2, 0.1)
        return Erasure.ERASED

    def erasure_pending(self) -> bool:
        """True while an acknowledged erasure still has bytes on disk."""
        return self._erased < self._deleted

    def wait_erased(self, timeout: float) -> bool:
        """Wait (without blocking the store) until every erasure is complete; False on timeout."""
        deadline, pause = time.monotonic() + timeout, 0.005
        while not self._scrub(self._deleted):
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        return True

    def _finish_in_background(self) -> None:
        """A thread that retries until every erasure is complete, then ends."""
        with self._scrub_lock:
            if self._finisher is not None and self._finisher.is_alive():
                return
            self._finisher = threading.Thread(target=self._finish, name="store-erasure", daemon=True)
            self._finisher.start()

    def _finish(self) -> None:
        pause = 0.02
        while not self._closed.is_set():
            try:
                if self._scrub(self._deleted):
                    return
            except self.RETRIED as exc:  # keep trying; the warning names the kind of error only
                logger.warning("erasure not finished yet: %s", type(exc).__name__)
            self._closed.wait(pause)
            pause = min(pause * 2, 1.0)

    def _close_erasures(self) -> None:
        """At close: the background thread stopped, then a last bounded try at any erasure still pending
        (the next open finishes it otherwise)."""
        self._closed.set()
        if self._finisher is not None:
            self._finisher.join()
        if self.erasure_pending():
            try:
                self.wait_erased(ERASE_WAIT)
            except self.RETRIED:
                pass  # the database is unusable now: the next open finishes the erasure
