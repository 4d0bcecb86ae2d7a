"""uvicorn's HTTP protocol, plus what it lacks against slow or hostile clients.

uvicorn closes an idle keep-alive connection, but never one that trickles its request: 1,000 of them
kept a process at its 1,024-file limit, accept() failed, normal requests timed out. Here, per connection:
- a whole request (headers and body) must arrive within REQUEST_TIMEOUT of the connection opening or
  of the previous answer;
- a client (an IPv4 address, an IPv6 /64) keeps at most PER_CLIENT connections open: a new one beyond
  that closes that client's connection that has waited longest for its request;
- near the process's open-file limit, the connection that has waited longest for its request is
  closed to make room, so accept() never runs out of files and a normal request, which arrives whole
  in a millisecond, is never the one closed.
Behind a trusted proxy (--proxy-headers, its address in --forwarded-allow-ips) the per-client cap is
left to the proxy: every connection comes from it. Nothing about a client is logged.

Use: `uvicorn newsletter.asgi:app --http newsletter.guard:GuardedH11Protocol --backlog 64`, as
`python -m newsletter.server` does.
"""
from __future__ import annotations

import asyncio
import logging
import os
import resource
from collections import OrderedDict, defaultdict

from uvicorn.protocols.http.h11_impl import H11Protocol

from .ratelimit import client_group

logger = logging.getLogger(__name__)

# Seconds to send a whole request: nginx allows 60 for headers, Apache 20–40. The variable is for tests.
REQUEST_TIMEOUT = float(os.environ.get("NEWSLETTER_REQUEST_TIMEOUT", "15"))
PER_CLIENT = 32         # open connections per client; a browser opens at most 6 per host
# asyncio accepts up to `backlog` connections at a time, and the guard sees them one or two loop turns
# later: the spare files cover three such batches, and the store, the mail relay and the logs. 16 for a
# server facing clients; behind nginx (python -m newsletter.server --backlog 1024) a burst arrives as many
# connections at once from one trusted peer, which a short queue drops: 500 at once overflowed a queue of
# 256 by 6 connections in 2 runs of 3 (bench/service_bench.py's burst), each client then waiting a second
# for its SYN to go again; none overflowed 1,024 (somaxconn, 4,096 by default, must allow it).
BACKLOG = 16


def spare_files(backlog: int) -> int:
    return 64 + 3 * backlog


class Guard:
    """The connections of one server, in the order they started waiting for a request."""

    def __init__(self, config):
        self.waiting: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self.per_client: defaultdict[str, OrderedDict[GuardedH11Protocol, None]] = defaultdict(OrderedDict)
        self.open = 0
        self.max_open = max(16, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - open_files() - spare_files(config.backlog))
        self.trusted = trusted_proxies(config)
        self.shed = 0

    def opened(self, conn: GuardedH11Protocol) -> None:
        self.open += 1
        conn.counted = True
        if conn.client_id is not None:
            mine = self.per_client[conn.client_id]
            mine[conn] = None
            if len(mine) > PER_CLIENT:
                self.close_oldest_waiting(mine, conn)
        if self.open > self.max_open:
            self.close_oldest_waiting(self.waiting, conn)

    def close_oldest_waiting(self, among: OrderedDict, newcomer: GuardedH11Protocol) -> None:
        self.close(next((c for c in among if c.waiting), newcomer))

    def close(self, victim: GuardedH11Protocol) -> None:
        """Close a connection; it stops counting now, not when the loop gets round to releasing it."""
        if victim.counted:
            victim.counted = False
            self.open -= 1
        self.waiting.pop(victim, None)
        self.shed += 1
        if self.shed in (1, 10, 100, 1000) or self.shed % 10_000 == 0:
            logger.warning("%d slow or surplus connections closed so far (no client is named)", self.shed)
        victim.waiting = False
        victim.transport.close()

    def closed(self, conn: GuardedH11Protocol) -> None:
        if conn.counted:
            conn.counted = False
            self.open -= 1
        self.waiting.pop(conn, None)
        if conn.client_id is not None:
            mine = self.per_client[conn.client_id]
            mine.pop(conn, None)
            if not mine:
                del self.per_client[conn.client_id]


def open_files() -> int:
    """Files this process has open now (Linux); a cautious guess elsewhere."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 64


def trusted_proxies(config) -> set[str]:
    """Peers whose connections are many clients' (the proxy in front), exempt from the per-client cap."""
    if not config.proxy_headers:
        return set()
    allowed = config.forwarded_allow_ips
    if isinstance(allowed, str):
        allowed = allowed.split(",")
    return {ip.strip() for ip in allowed or []}


class WholeWrites:
    """A connection's transport whose writes of one turn of the loop go out in one: uvicorn writes an
    answer's head and body apart, and a process killed between the two (kill -9, the OOM killer) left
    nginx a head without its body, which it could neither retry nor complete. One write is all or
    nothing, and one system call instead of two."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop, self._pending = transport, loop, []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name):  # everything else is the transport's own
        return getattr(self._transport, name)


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with a request deadline, a per-client cap and shedding near the file limit, writing
    each answer whole (WholeWrites)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(WholeWrites(transport, self.loop))  # type: ignore[arg-type]
        state = self.server_state
        if not hasattr(state, "guard"):
            state.guard = Guard(self.config)
        self.guard: Guard = state.guard
        peer = self.client[0] if self.client else None
        self.client_id = None if peer is None or peer in self.guard.trusted or "*" in self.guard.trusted \
            else client_group(peer)
        self.deadline: asyncio.TimerHandle | None = None
        self.waiting = False
        self.wait_for_request()
        self.guard.opened(self)

    def wait_for_request(self) -> None:
        """From now, the next request has REQUEST_TIMEOUT to arrive whole."""
        if self.deadline is not None:
            self.deadline.cancel()
        self.waiting, self.previous_cycle = True, self.cycle
        self.guard.waiting[self] = None
        self.guard.waiting.move_to_end(self)
        mine = self.guard.per_client.get(self.client_id)
        if mine and self in mine:
            mine.move_to_end(self)
        self.deadline = self.loop.call_later(REQUEST_TIMEOUT, self.too_slow)

    def request_arrived(self) -> None:
        self.waiting = False
        self.guard.waiting.pop(self, None)
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def too_slow(self) -> None:
        self.deadline = None
        if self.waiting:
            self.guard.close(self)

    def handle_events(self) -> None:
        super().handle_events()
        if self.waiting and self.cycle is not self.previous_cycle and not self.cycle.more_body:
            self.request_arrived()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self.wait_for_request()  # before a pipelined request that the parent may start at once
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.waiting = False
        self.guard.closed(self)
        super().connection_lost(exc)
