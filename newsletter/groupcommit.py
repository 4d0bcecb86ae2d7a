"""Confirmations stored together: the ones that arrive while a commit is on disk share the next one.

Each commit of the store waits for the disk (SQLite, synchronous=FULL: an fsync), and one at a time: a
wave of confirmations queued behind each other's fsync (250 a second, p99 0.7 s). Here, while one
transaction commits, the addresses confirmed meanwhile gather and go in the next one (store.confirm_many:
all or nothing), so a reader is still told « confirmé » only once their address is on disk. The lists
each newly added reader is now on (for the welcome mail) come back from the same call
(store.confirm_many): one hand-over per batch, not one per reader.

Confirmations is the whole of a confirmation: stored so, then the welcome mail queued. Under `python -m
newsletter.server` the mail process (mailproc.py) runs it, committing on its event loop's own thread: a
writer thread in the service took the GIL from the loop answering HTTP, dozens of times a second, and one
in the mail process waited for the GIL behind that loop's mails (POST confirm, 3 alternating pairs:
4,513-5,067 req/s committed so, against 3,527-4,485 with the service's thread; 3,194-3,830 with a thread
of the mail process). The commit holds the mail process's loop for its fsync, which its mails can wait: a relay's
answers queue meanwhile. In the service's own process (tests, `--mail-process no`), a thread commits.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .store import WHOLE_BLOG

logger = logging.getLogger(__name__)


class GroupCommit:
    """`submit(email, lists)`: a future set once its transaction is committed, to every list the reader is
    now on if the address or one of its lists was new, None if the reader was already on all of them."""

    def __init__(self, store, thread: bool = True):
        self.store = store
        self._pending: list[tuple[str, tuple[str, ...], asyncio.Future]] = []
        self._committing: asyncio.Task | None = None
        # One thread of its own: commits go one at a time anyway, and a plain executor costs the loop
        # less per batch than starlette's run_in_threadpool (anyio's limiter and cancel scopes).
        # None: on the loop's thread, which waits for each commit (see the module's docstring).
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="newsletter-group-commit") if thread else None

    def submit(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> asyncio.Future:
        outcome = asyncio.get_running_loop().create_future()
        self._pending.append((email, tuple(lists), outcome))
        if self._committing is None:
            self._committing = asyncio.get_running_loop().create_task(self._commit())
        return outcome

    async def close(self) -> None:
        """After the last request: every confirmation submitted committed (or failed), then the thread ended."""
        while self._committing is not None:
            await asyncio.shield(self._committing)
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    async def _commit(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, []
                groups: dict[tuple[str, ...], list[tuple[str, asyncio.Future]]] = {}
                for email, lists, outcome in pending:  # one transaction per set of lists (most: the whole blog)
                    groups.setdefault(lists, []).append((email, outcome))
                for lists, batch in sorted(groups.items()):
                    await self._commit_batch(batch, lists)
        finally:
            self._committing = None

    async def _commit_batch(self, batch: list[tuple[str, asyncio.Future]], lists: tuple[str, ...]) -> None:
        # One order for every instance on a shared PostgreSQL: two batches never wait on each other
        # in opposite orders (a deadlock, one of them aborted).
        batch.sort(key=lambda item: item[0].lower())

        def commit() -> list[list[str] | None]:
            return self.store.confirm_many([email for email, _ in batch], lists)

        try:
            if self._writer is None:
                results = commit()
            else:
                results = await asyncio.get_running_loop().run_in_executor(self._writer, commit)
        except Exception as exc:  # nothing of this batch is stored: each request answers the error
            for _, outcome in batch:
                if not outcome.done():
                    outcome.set_exception(exc)
            return
        for (_, outcome), now_on in zip(batch, results):
            if not outcome.done():  # the request may have been cancelled (client gone)
                outcome.set_result(now_on)


class Confirmations:
    """`confirm(email, lists)`: a future, True once the address is stored on those lists (and, if that put
    the reader on one, the welcome mail naming all of theirs queued), False if the store failed."""

    def __init__(self, store, outgoing, catalogue, thread: bool = True):
        self.commits, self.outgoing, self.catalogue = GroupCommit(store, thread), outgoing, catalogue

    def confirm(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()

        def stored(commit: asyncio.Future) -> None:
            if commit.exception() is not None:
                logger.error("confirmation not stored: %s", type(commit.exception()).__name__)
            elif (now_on := commit.result()) is not None:
                self.outgoing.welcome(email, [self.catalogue.name(key) for key in now_on])  # not awaited
            if not done.done():  # the request may have been cancelled (client gone): stored all the same
                done.set_result(commit.exception() is None)

        self.commits.submit(email, lists).add_done_callback(stored)
        return done

    async def close(self) -> None:
        """Every confirmation submitted stored and its welcome mail queued (stop the mails after this)."""
        await self.commits.close()
