"""The per-address limit across the service's instances (NEWSLETTER_INSTANCES), in memory only.

Each instance keeps its limits in its own memory (ratelimit.py), and nginx routes each client to one
instance, so a client's limits hold. An address, though, can be typed by many clients, reaching as many
instances: alone, each would let 3 confirmation mails an hour go to it, N instances N × 3. So each
instance tells the others, one UDP datagram each, of every confirmation mail it lets through: the
address's keyed digest (never the address), the time and a MAC; each counts it as a hit of its own.
Nothing is written anywhere. A datagram lost is a hit the others do not count: the limit then lets one
more through, never fewer. A datagram without this service's MAC, or older than MAX_AGE seconds (a
replay), is ignored. Instances talk on the UDP port of the number of their HTTP port.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable

from .config import Config, ConfigError, host_port
from .ratelimit import RateLimiter

logger = logging.getLogger(__name__)

MAX_AGE = 30              # seconds a datagram is believed: the clocks of the instances' machines may differ that much
DIGEST, STAMP, MAC = 16, 8, 16  # bytes of a datagram: the limiter's digest, the time (seconds), the MAC
PEPPER_LABEL = b"newsletter.ratelimit.mail_per_address"
MAC_LABEL = b"newsletter.peers"


def derived_key(config: Config, label: bytes) -> bytes:
    """A key of the service's secret, the same in every instance."""
    return hmac.new(config.secrets[0].encode(), label, hashlib.sha256).digest()


class Peers(asyncio.DatagramProtocol):
    """This instance's end: tells the others of its hits, and counts theirs with `record`."""

    def __init__(self, me: str, others: list[str], key: bytes, record: Callable[[bytes], None],
                 clock: Callable[[], float] = time.time):
        self.me, self.others = host_port(me), [host_port(other) for other in others]
        self.key, self.record, self.clock = key, record, clock
        self.transport: asyncio.DatagramTransport | None = None
        self.ignored = 0

    async def start(self) -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, local_addr=self.me)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def _mac(self, signed: bytes) -> bytes:
        return hmac.new(self.key, signed, hashlib.sha256).digest()[:MAC]

    def tell(self, digest: bytes) -> None:
        signed = digest + int(self.clock()).to_bytes(STAMP, "big")
        datagram = signed + self._mac(signed)
        for other in self.others:
            self.transport.sendto(datagram, other)

    def datagram_received(self, data: bytes, addr) -> None:
        signed, mac = data[:DIGEST + STAMP], data[DIGEST + STAMP:]
        age = self.clock() - int.from_bytes(signed[DIGEST:], "big")
        if len(data) != DIGEST + STAMP + MAC or not hmac.compare_digest(mac, self._mac(signed)) or abs(age) > MAX_AGE:
            self.ignored += 1
            if self.ignored in (1, 100) or self.ignored % 10_000 == 0:
                logger.warning("%d datagram(s) on the instances' port ignored (not signed by this service, or old)",
                               self.ignored)
            return
        self.record(signed[:DIGEST])

    def error_received(self, exc: Exception) -> None:  # an instance down: its hits resume when it is back
        pass

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def instances_of(config: Config, me: str | None) -> list[str] | None:
    """The other instances, if NEWSLETTER_INSTANCES lists several and this one (`me`, host:port, as
    `python -m newsletter.server` sets NEWSLETTER_INSTANCE); None otherwise (one instance, the dev server)."""
    if len(config.instances) < 2 or me is None:
        return None
    if me not in config.instances:
        raise ConfigError(f"NEWSLETTER_INSTANCES ne nomme pas cette instance ({me}) : "
                          f"{' '.join(config.instances)}")
    return [other for other in config.instances if other != me]


async def address_limiter(config: Config, rule: tuple[int, float] | None, me: str | None
                          ) -> tuple[RateLimiter, Peers | None]:
    """The per-address limiter, its hits shared with the other instances when NEWSLETTER_INSTANCES lists
    several (close the Peers when done)."""
    others = instances_of(config, me)
    if others is None or rule is None:
        return RateLimiter(rule), None
    limiter = RateLimiter(rule, pepper=derived_key(config, PEPPER_LABEL))
    peers = Peers(me, others, derived_key(config, MAC_LABEL), limiter.record)
    await peers.start()
    limiter.on_hit = peers.tell
    return limiter, peers
