"""In-memory sliding-window rate limits: per client and per address.

Keys are hashed with a random per-process key before they are kept, so not even
the process memory holds a client's IP or a reader's address in clear. Nothing
is ever written to disk; a restart forgets everything.
"""
from __future__ import annotations

import bisect
import hashlib
import ipaddress
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000  # memory bound: the oldest keys are dropped first beyond this


@dataclass(frozen=True)
class Limits:
    """(count, seconds) per window; None turns a limit off (the benchmark, tests of other things)."""

    signup_per_client: tuple[int, float] | None = (10, 60)
    mail_per_address: tuple[int, float] | None = (3, 3600)
    links_per_client: tuple[int, float] | None = (60, 60)


NO_LIMITS = Limits(None, None, None)


class RateLimiter:
    """At most `count` hits per `window` seconds for each key."""

    def __init__(self, rule: tuple[int, float] | None, clock: Callable[[], float] = time.monotonic,
                 pepper: bytes | None = None, on_hit: Callable[[bytes], None] | None = None):
        """pepper: the key of the digests, random unless several instances share their hits (peers.py),
        to whom on_hit tells each hit counted."""
        self.rule = rule
        self.clock = clock
        self.on_hit = on_hit
        self._pepper = pepper or secrets.token_bytes(16)
        # Each key's hits, oldest first, least recently hit key first. Tuples of floats: at MAX_KEYS, a deque
        # a key (a 624-byte block each) held 60 MB a limiter, which the collector walked whole; a tuple of
        # floats is 50-100 bytes and left out of its walks. An OrderedDict, not a dict: dropping a dict's
        # first key again and again scans the holes left before it (30-80 µs a hit at MAX_KEYS, not 5).
        self._hits: OrderedDict[bytes, tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one hit for `key`; False if it is over the limit (the refused hit is not counted)."""
        return self.wait(key) == 0

    def wait(self, key: str) -> int:
        """Count one hit for `key` and return 0; or, over the limit, the whole seconds until the oldest
        hit leaves the window (the Retry-After), without counting this one."""
        if self.rule is None:
            return 0
        count, window = self.rule
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), key=self._pepper, digest_size=16).digest()
        now = self.clock()
        with self._lock:
            hits = self._recent(digest, now - window)
            allowed = len(hits) < count
            if allowed:
                hits += (now,)
            self._keep(digest, hits)
        if allowed and self.on_hit is not None:
            self.on_hit(digest)
        return 0 if allowed else max(1, math.ceil((hits[0] if hits else now) + window - now))

    def record(self, digest: bytes) -> None:
        """A hit counted by another instance (peers.py): counted here too, never refused."""
        if self.rule is None:
            return
        now = self.clock()
        with self._lock:
            self._keep(digest, self._recent(digest, now - self.rule[1]) + (now,))

    def _recent(self, digest: bytes, since: float) -> tuple[float, ...]:
        """The key's hits after `since`, taken out of the table (_keep puts them back, last)."""
        hits = self._hits.pop(digest, ())
        if hits and hits[0] <= since:
            hits = hits[bisect.bisect_right(hits, since):]
        return hits

    def _keep(self, digest: bytes, hits: tuple[float, ...]) -> None:
        if hits:
            self._hits[digest] = hits  # last: the most recently hit
        while len(self._hits) > MAX_KEYS:
            self._hits.popitem(last=False)


def client_group(host: str) -> str:
    """Who a per-client limit counts: the IPv4 address, or the /64 of an IPv6 one (one subscriber line
    gets a whole /64, so single IPv6 addresses would let one client through as thousands)."""
    if ":" not in host:  # IPv4 (ipaddress takes only its canonical form, so str() would give it back), or no IP
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        if address.ipv4_mapped is not None:  # an IPv4 client seen through a dual-stack socket
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
