"""The service's mails and confirmations in a process of their own, so that the second core builds and
hands off mails, and stores the confirmed addresses, while the first answers HTTP.

A signup's answer waits for the relay to take its confirmation mail. In one process, building that
mail and talking SMTP took as much of the GIL as the HTTP request itself (measured: a signup cost 1.3 ms
of the process with its mail, 0.75 ms without). `python -m newsletter.server` (newsletter/asgi.py)
runs the Outgoing queue and workers (outgoing.py) in a child process instead; the service talks to it
over a pipe, one line per mail each way (MailProcess._put says when each is written). A confirmation is
a line too: the child stores it with the others of its turn (groupcommit.py), answers once it is
committed, and sends the welcome mail itself.

What the readers get does not change: the answer waits for the relay's 250, and when the hand-off fails
they are told to retry. The child gets the configuration, secrets included, through its standard input:
nothing is written to disk, and the addresses cross the pipe in memory only. If the child dies, the
mails it had not handed off are answered as failed (« réessayez »), signups meanwhile too, and so are the
confirmations it had not answered (stored or not: confirming again is harmless), and a new child is
started at once. If the service dies, the child sees its pipe close, hands off what it holds
(each mail until its deadline) and exits; it ignores SIGTERM and SIGINT, which systemd and a terminal
send to both processes at once, and ends with its pipe.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import pickle
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import Config
from .outgoing import ADDRESS_REFUSED, DEADLINE, QUEUE_SIZE, Outgoing
from .store import WHOLE_BLOG, open_store

logger = logging.getLogger(__name__)

GRACE = 5.0                # seconds past a mail's deadline before the service stops waiting for the child
RESTART_DELAYS = (0, 0.5, 1, 2, 5)   # seconds before each new child after a death in a row
OUTCOMES = {b"1": True, b"0": False, b"r": ADDRESS_REFUSED}
CODES = {True: "1", False: "0", ADDRESS_REFUSED: "r"}
LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # made once, not at every line


def picklable(config: Config) -> Config:
    """The configuration without the settings a pickle cannot carry (functions of a settings file)."""
    def ok(value) -> bool:
        try:
            pickle.dumps(value)
            return True
        except Exception:
            return False
    return dataclasses.replace(config, settings={k: v for k, v in config.settings.items() if ok(v)})


def child_environment() -> dict[str, str]:
    """This environment, with this package importable whatever the working directory."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


class _Child(asyncio.SubprocessProtocol):
    """The service's end of the pipe: outcomes in, each to its waiting future."""

    def __init__(self, owner: "MailProcess"):
        self.owner, self.buffer = owner, bytearray()
        self.ready = asyncio.get_running_loop().create_future()   # True once it said so, False if it died first
        self.exited = asyncio.get_running_loop().create_future()

    def pipe_data_received(self, fd, data):
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line = bytes(self.buffer[:end])
            del self.buffer[:end + 1]
            if line == b"ready":
                self.ready.set_result(True)
                continue
            number, _, code = line.partition(b" ")
            self.owner._settle(int(number), OUTCOMES.get(code, False))

    def process_exited(self):
        if not self.ready.done():
            self.ready.set_result(False)
        self.exited.set_result(None)
        self.owner._exited(self)


class MailProcess:
    """Outgoing's start, submit and stop, and Confirmations' confirm, served by a child process running both."""

    def __init__(self, config: Config, maxsize: int = QUEUE_SIZE, deadline: float = DEADLINE):
        self.config, self.maxsize, self.deadline = picklable(config), maxsize, deadline
        self._pending: dict[int, tuple[asyncio.Future, float]] = {}  # in order of submission: of deadline
        self._gathered: list[bytes] | None = None  # confirmations for the end of this turn (None: none yet)
        self._next = 0
        self._transport: asyncio.SubprocessTransport | None = None
        self._child: _Child | None = None
        self._stopping = False
        self._deaths = 0
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Start the child and wait until it can take mails."""
        await self._spawn()
        self._sweep()

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        settings = pickle.dumps((self.config, self.maxsize, self.deadline))
        self._transport, self._child = await loop.subprocess_exec(
            lambda: _Child(self), sys.executable, "-m", "newsletter.mailproc",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None, env=child_environment())
        self._transport.get_pipe_transport(0).write(len(settings).to_bytes(8, "big") + settings)
        if not await self._child.ready:
            raise RuntimeError("the mail process could not start (see its error above)")
        self._deaths = 0

    def submit(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> asyncio.Future | None:
        """As Outgoing.submit; a future already False while a new child is starting."""
        return self._put("c", email, list(lists))

    def confirm(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> asyncio.Future:
        """As groupcommit.Confirmations.confirm: stored by the child, which sends the welcome mail itself.
        A future already False while a new child is starting or when too many wait (the reader retries)."""
        outcome = self._put("s", email, list(lists))
        if outcome is None:
            outcome = asyncio.get_running_loop().create_future()
            outcome.set_result(False)
        return outcome

    def _put(self, kind: str, email: str, extra: list[str]) -> asyncio.Future | None:
        loop = asyncio.get_running_loop()
        if len(self._pending) >= self.maxsize:
            return None
        outcome = loop.create_future()
        if self._child is None or not self._child.ready.done() or self._stopping:
            outcome.set_result(False)  # no child right now: the reader is told to retry
            return outcome
        self._next += 1
        self._pending[self._next] = (outcome, loop.time() + self.deadline + GRACE)
        line = LINE([self._next, kind, email, extra]).encode() + b"\n"
        # A mail, and the first confirmation of this turn of the loop, are written at once: the child starts
        # on them while this process reads the next requests. All gathered for the end of the turn, the
        # two processes took turns, each idle while the other worked through a turn's worth: signups ran
        # 16-25 % slower, this loop idle a fifth of the time. The other confirmations of the turn go
        # together at its end, to be committed together while the child commits the first: one by one,
        # the child's commits were smaller and more, and it took 10-35 % more CPU a confirmation (3 and 4
        # alternating pairs, 50 connections).
        if kind == "c" or self._gathered is None:
            self._transport.get_pipe_transport(0).write(line)
            if kind == "s":
                self._gathered = []
                loop.call_soon(self._flush)
        else:
            self._gathered.append(line)
        return outcome

    def _flush(self) -> None:
        """The confirmations gathered since the first of this turn, in one write."""
        gathered, self._gathered = self._gathered, None
        if self._transport is not None and gathered:
            self._transport.get_pipe_transport(0).write(b"".join(gathered))

    def _settle(self, number: int, outcome) -> None:
        future, _ = self._pending.pop(number, (None, 0))
        if future is not None and not future.done():
            future.set_result(outcome)

    def _sweep(self) -> None:
        """Once a second: a mail the child has not answered for well past its deadline is a failure."""
        now = asyncio.get_running_loop().time()
        for number, (future, until) in list(self._pending.items()):
            if until > now:
                break  # the rest came later
            self._settle(number, False)
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    def _exited(self, child: _Child) -> None:
        if child is not self._child:
            return
        for number in list(self._pending):
            self._settle(number, False)  # not handed off, as far as anyone knows: the readers retry
        self._transport.close()
        self._child, self._transport, self._gathered = None, None, None
        if self._stopping:
            return
        logger.error("the mail process stopped: a new one is started (the readers waiting were told to retry)")
        delay = RESTART_DELAYS[min(self._deaths, len(RESTART_DELAYS) - 1)]
        self._deaths += 1
        asyncio.get_running_loop().call_later(delay, lambda: asyncio.ensure_future(self._respawn()))

    async def _respawn(self) -> None:
        try:
            await self._spawn()
        except Exception as exc:  # it died before it was ready: _exited has scheduled the next one
            logger.error("the mail process could not start: %s", type(exc).__name__)

    async def stop(self, timeout: float = 30) -> None:
        """Let the child hand off what it holds (each mail until its deadline), then end it."""
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        transport, child = self._transport, self._child
        if transport is None:
            return
        self._flush()
        transport.get_pipe_transport(0).close()  # end of input: the child drains and exits
        try:
            await asyncio.wait_for(asyncio.shield(child.exited), timeout)
        except TimeoutError:
            transport.kill()
        for number in list(self._pending):
            self._settle(number, False)
        transport.close()


# -- the child ---------------------------------------------------------------------------------

class _Requests(asyncio.Protocol):
    def __init__(self, outgoing: Outgoing, confirmations, write, done: asyncio.Future):
        self.outgoing, self.confirmations, self.write, self.done = outgoing, confirmations, write, done
        self.buffer = bytearray()

    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            number, kind, email, extra = json.loads(self.buffer[:end])
            del self.buffer[:end + 1]
            if kind == "c":
                outcome = self.outgoing.submit(email, extra)
            else:  # "s": store a confirmation (its welcome mail leaves from here)
                outcome = self.confirmations.confirm(email, extra)
            if outcome is None:
                self.write(number, False)
            else:
                outcome.add_done_callback(lambda future, number=number: self.write(number, future.result()))

    def connection_lost(self, exc):
        self.done.set_result(None)


class _StoreOnFirstUse:
    """The store, opened at the first confirmation (and again after a failed open): the child's mails do
    not wait for it. A database the child cannot reach fails confirmations (« réessayez »), not signups,
    which store nothing."""

    def __init__(self, db: str):
        self.db, self._store = db, None

    def confirm_many(self, emails, lists):
        if self._store is None:
            # The service opened it first, and finished any erasure left behind: no recovery here.
            self._store = open_store(self.db, recover=False)
        return self._store.confirm_many(emails, lists)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def read_exactly(fd: int, size: int) -> bytes:
    """`size` bytes of the file descriptor, unbuffered: what follows is the event loop's to read."""
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise SystemExit("the service closed the pipe before sending the configuration")
        data += chunk
    return data


async def child() -> None:
    from . import heap, quietlog
    from .groupcommit import Confirmations
    from .lists import Catalogue
    from .signing import Signer

    quietlog.install()
    # systemd stops a unit by signalling every process of it, and Ctrl-C signals the terminal's whole
    # group: the child waits for its pipe to close instead, so that the service can still have the
    # mails of the requests it finishes handed off before it stops.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = asyncio.get_running_loop()
    config, maxsize, deadline = pickle.loads(read_exactly(0, int.from_bytes(read_exactly(0, 8), "big")))
    outgoing = Outgoing(config, Signer(config.secrets), maxsize=maxsize, deadline=deadline)
    store = _StoreOnFirstUse(config.db)
    confirmations = Confirmations(store, outgoing, Catalogue(config), thread=False)
    await outgoing.start()
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(sys.stdout.fileno(), "wb", 0))
    def write(number: int, outcome) -> None:  # at once too: the service's loop gets it at its next turn
        out.write(f"{number} {CODES.get(outcome, '0')}\n".encode())

    heap.settle()
    out.write(b"ready\n")
    done = loop.create_future()
    await loop.connect_read_pipe(lambda: _Requests(outgoing, confirmations, write, done),
                                 os.fdopen(sys.stdin.fileno(), "rb", 0))
    await done  # the service closed the pipe: stopping, or gone
    await confirmations.close()  # their welcome mails queued
    await outgoing.stop()
    store.close()
    await asyncio.sleep(0)


if __name__ == "__main__":
    import uvloop  # the server's loop too (server.py)

    uvloop.run(child())
