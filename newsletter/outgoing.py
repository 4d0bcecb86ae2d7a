"""Confirmation mails, sent by tasks of the event loop: the reader is told « envoyé » only once the relay
has taken the mail.

The handler queues the address with a deadline and awaits the outcome. WORKERS tasks drain the queue,
each through its own relay connection (asyncsmtp.py: pipelined, no thread), kept open between mails (a
relay that closed it meanwhile gets a new one at once) and closed after IDLE_CLOSE seconds without
work. When the relay offers CHUNKING, a worker sends the mails waiting in the queue (BATCH at most)
back to back in one write, each its own transaction with its own answer; one the relay did not take
is sent again on its own, as below. A temporary failure (the relay down, a 4xx answer, a dropped
connection) is retried with back-off until the deadline, all in memory: nothing about the address is
written anywhere before consent. A mail the relay refuses for good, or cannot take before its
deadline, is dropped and the handler answers « réessayez dans quelques minutes ». If the service stops
with mails queued, the workers send what they can until each deadline; what is left is lost, and those
readers were not told it was sent.
For a relay that may be down for long, run a local MTA (Postfix, OpenSMTPD) as SMTP_URL: it queues on
disk, durably, and retries for days.

DKIM signing (pure-Python RSA, milliseconds a mail) and the outbox of the dev server (an fsync a
mail) run in the loop's thread pool, off the loop.

The welcome mail (welcome.py) goes through the same queue once a reader confirms, but nobody waits for
it: it is retried the same way until its deadline, and if it cannot leave it is dropped, with a warning
(the address is stored all the same). Nothing about it is written to disk either.
"""
from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Sequence
from email.utils import parseaddr

from .asyncsmtp import AsyncSMTP
from .config import Config
from .confirmation import ConfirmationMail
from .mailer import MailerError, OutboxMailer, Relay, temporary
from .pages import mail_environment
from .signing import Signer
from .store import WHOLE_BLOG
from .welcome import WelcomeMail

logger = logging.getLogger(__name__)

QUEUE_SIZE = 20_000    # mails waiting for a worker (an address and a future each: a few MB at most); a
                       # burst of 5,000 signups fits four times, and each waits no longer than DEADLINE
IDLE_CLOSE = 30.0      # seconds a worker keeps an unused relay connection (Postfix drops one after 300)
DEADLINE = 10.0        # seconds a reader waits for the relay to take their confirmation mail
BACKOFF_START = 0.25   # seconds before the first retry; doubled each time
BATCH = 32             # mails in one write at most, when the relay takes them back to back (CHUNKING)
WORKERS = 16           # relay connections, each with its mail (or batch) on the way: a mail is one or two
                       # round trips to the relay, and a wave of signups should not queue behind each other's
ADDRESS_REFUSED = "address refused"  # a submit's outcome when the relay refuses the recipient for good (5xx)
_STOP = object()


class Outgoing:
    """The service's mail queue and its workers; every method is called in the event loop's thread."""

    def __init__(self, config: Config, signer: Signer, maxsize: int = QUEUE_SIZE, deadline: float = DEADLINE):
        self.config = config
        self.signer = signer
        self.deadline = deadline
        env = mail_environment(config)
        self.mail = ConfirmationMail(config, signer, env)
        self.welcome_mail = WelcomeMail(config, signer, env) if config.welcome else None
        self.sender = parseaddr(config.mail_from)[1]  # MAIL FROM, as smtplib takes it from the From header
        self.relay = Relay.from_url(config.smtp_url) if config.smtp_url else None
        self.outbox = None if self.relay else OutboxMailer(config.outbox)  # signs nothing: _work signs
        self._maxsize = maxsize
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Start the workers, in the running loop."""
        self._queue = asyncio.Queue(self._maxsize)
        self._tasks = [asyncio.get_running_loop().create_task(self._work(), name=f"newsletter-outgoing-{n}")
                       for n in range(WORKERS)]

    def submit(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> asyncio.Future | None:
        """Queue a confirmation mail: a future that becomes True once the relay took it, ADDRESS_REFUSED if
        the relay refuses the recipient for good, False if it could not be sent before the deadline; None
        when the queue is full (the caller answers 503). The link carries `lists`, the lists chosen."""
        return self._put(self.mail, email, lists)

    def welcome(self, email: str, names: Sequence[str] = ()) -> asyncio.Future | None:
        """Queue the welcome mail of a reader who just confirmed, naming the lists they are on, without
        waiting for it: its future (as for submit), or None if welcome mails are off or the queue is full."""
        if self.welcome_mail is None:
            return None
        outcome = self._put(self.welcome_mail, email, tuple(names))
        if outcome is None:
            logger.warning("welcome mail not sent: the outgoing queue is full")
        return outcome

    def _put(self, mail, email: str, extra) -> asyncio.Future | None:
        loop = asyncio.get_running_loop()
        outcome = loop.create_future()
        try:
            self._queue.put_nowait((mail, email, extra, loop.time() + self.deadline, outcome))
        except asyncio.QueueFull:
            return None
        return outcome

    async def stop(self, timeout: float = 30) -> None:
        """Send what is queued (each until its deadline), then end the workers."""
        for _ in self._tasks:
            await self._queue.put(_STOP)
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()

    async def _work(self) -> None:
        relay: AsyncSMTP | None = None
        stopping = False
        while not stopping:
            try:
                if relay is None or not self._queue.empty():
                    item = await self._queue.get()
                else:  # a timer only when there is nothing to do: under load, no timer per mail
                    async with asyncio.timeout(IDLE_CLOSE):
                        item = await self._queue.get()
            except TimeoutError:
                relay.close()  # idle: give the relay its connection back
                relay = None
                continue
            if item is _STOP:
                break
            batch, stopping = self._with_waiting(item, relay)
            try:
                if len(batch) == 1:
                    sent, relay = await self._deliver(item, relay)
                    self._settle(item, sent)
                else:
                    relay = await self._deliver_many(batch, relay)
            except Exception as exc:  # never let one mail stop the worker; the message may hold the address
                logger.error("%s mail not sent: %s", self._kind(item[0]), type(exc).__name__)
                if relay is not None:
                    relay.abort()  # in whatever state the failure left it
                    relay = None
                for each in batch:
                    self._settle(each, False)
        if relay is not None:
            relay.close()

    def _with_waiting(self, item, relay: AsyncSMTP | None) -> tuple[list, bool]:
        """`item` and, when the open relay takes whole transactions back to back (AsyncSMTP.chunking), the
        mails waiting now, up to BATCH in all: one write for them all. True if the stop signal came next.
        Not with DKIM: a signature (7 ms, 2048 bits) costs a hundred times what a batch saves, and the
        first mail of a batch would wait for the last one's."""
        batch = [item]
        if relay is None or relay.closed or not relay.chunking or self.config.dkim is not None:
            return batch, False
        while len(batch) < BATCH and not self._queue.empty():
            waiting = self._queue.get_nowait()
            if waiting is _STOP:
                return batch, True
            batch.append(waiting)
        return batch, False

    @staticmethod
    def _settle(item, outcome) -> None:
        if not item[-1].done():  # the request may have been cancelled (client gone)
            item[-1].set_result(outcome)

    async def _deliver_many(self, batch: list, relay: AsyncSMTP) -> AsyncSMTP | None:
        """Mails in one write (AsyncSMTP.send_many): each one the relay took, or refused for good, is settled
        at once; any other goes again on its own (_deliver: retried with back-off until its deadline)."""
        data = [mail.wire(email, extra)[0] for mail, email, extra, _, _ in batch]  # never DKIM: _with_waiting
        try:
            outcomes = await relay.send_many([(one, self.sender, [item[1]]) for one, item in zip(data, batch)],
                                             min(item[3] for item in batch))
        except smtplib.SMTPServerDisconnected as exc:  # closed before anything went out
            outcomes = [exc] * len(batch)
        again = []
        for item, outcome in zip(batch, outcomes):
            if isinstance(outcome, dict):
                self._settle(item, True)
            elif isinstance(outcome, smtplib.SMTPRecipientsRefused) and not temporary(outcome):
                self._settle(item, ADDRESS_REFUSED)
            else:
                again.append(item)
        if relay.closed:
            relay = None
        for item in again:
            sent, relay = await self._deliver(item, relay)
            self._settle(item, sent)
        return relay

    async def _deliver(self, item, relay: AsyncSMTP | None) -> tuple[bool | str, AsyncSMTP | None]:
        """One mail handed off, retried until its deadline: its outcome, and the connection to go on with."""
        mail, email, extra, deadline, _ = item
        loop = asyncio.get_running_loop()
        data, link = mail.wire(email, extra)
        if self.config.dkim is not None:
            data = await loop.run_in_executor(None, self.config.dkim.sign, data)
        if self.outbox is not None:
            path = await loop.run_in_executor(None, self.outbox.send_wire, data, self.sender, [email])
            what = "de confirmation" if mail is self.mail else "de bienvenue"
            logger.info("Pas de serveur SMTP : mail %s écrit dans %s ; lien : %s", what, path, link)
            return True, relay
        delay = BACKOFF_START
        while True:
            try:
                if relay is None or relay.closed:  # never opened, or closed by the relay since
                    async with asyncio.timeout_at(deadline):
                        relay = await AsyncSMTP.open(self.relay)
                await relay.send(data, self.sender, [email], deadline)
                return True, relay
            except (MailerError, OSError, TimeoutError, smtplib.SMTPException) as exc:
                if isinstance(exc, smtplib.SMTPRecipientsRefused) and not temporary(exc):
                    return ADDRESS_REFUSED, relay  # never this address (the connection goes on, after RSET)
                if relay is not None:
                    relay.abort()  # maybe mid-message: nothing more is written on it
                    relay = None
                retry = isinstance(exc, MailerError) or temporary(exc)
                if not retry or loop.time() + delay > deadline:
                    # The exception may quote the address: its kind only.
                    logger.warning("%s mail not sent (%s)%s", self._kind(mail), type(exc).__name__,
                                   ": the reader is told to retry" if mail is self.mail else "")
                    return False, None
                await asyncio.sleep(delay)  # this task only: requests go on being answered
                delay *= 2

    def _kind(self, mail) -> str:
        return "confirmation" if mail is self.mail else "welcome"
