"""Confirmations stored together: the ones that arrive while a commit is on disk share the next one.

Each commit of the store waits for the disk (SQLite, synchronous=FULL: an fsync), and one at a time: a
wave of confirmations queued behind each other's fsync (250 a second, p99 0.7 s). Here, while one
transaction commits, the addresses confirmed meanwhile gather and go in the next one (store.confirm_many:
all or nothing), so a reader is still told « confirmé » only once their address is on disk. The lists
each newly added reader is now on (for the welcome mail) come back from the same call
(store.confirm_many): one hand-over per batch, not one per reader.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .store import WHOLE_BLOG


class GroupCommit:
    """`await add(email, lists)`, once its transaction is committed: every list the reader is now on if
    the address or one of its lists was new, None if the reader was already on all of them."""

    def __init__(self, store):
        self.store = store
        self._pending: list[tuple[str, tuple[str, ...], asyncio.Future]] = []
        self._committing = False
        # One thread of its own: commits go one at a time anyway, and a plain executor costs the loop
        # less per batch than starlette's run_in_threadpool (anyio's limiter and cancel scopes).
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="newsletter-group-commit")

    async def add(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> list[str] | None:
        outcome = asyncio.get_running_loop().create_future()
        self._pending.append((email, tuple(lists), outcome))
        if not self._committing:
            self._committing = True
            asyncio.get_running_loop().create_task(self._commit())
        return await outcome

    def close(self) -> None:
        """After the last request: wait for a commit under way, then end the thread."""
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
            self._committing = False

    async def _commit_batch(self, batch: list[tuple[str, asyncio.Future]], lists: tuple[str, ...]) -> None:
        # One order for every instance on a shared PostgreSQL: two batches never wait on each other
        # in opposite orders (a deadlock, one of them aborted).
        batch.sort(key=lambda item: item[0].lower())

        def commit() -> list[list[str] | None]:
            return self.store.confirm_many([email for email, _ in batch], lists)

        try:
            results = await asyncio.get_running_loop().run_in_executor(self._writer, commit)
        except Exception as exc:  # nothing of this batch is stored: each request answers the error
            for _, outcome in batch:
                if not outcome.done():
                    outcome.set_exception(exc)
            return
        for (_, outcome), now_on in zip(batch, results):
            if not outcome.done():  # the request may have been cancelled (client gone)
                outcome.set_result(now_on)
