"""Confirmation mails, sent by worker threads: the reader is told « envoyé » only once the relay has
taken the mail.

The handler queues the address with a deadline and waits (asynchronously) for the outcome. WORKERS
threads drain the queue, each through its own relay connection, kept open between mails (a relay that
closed it meanwhile gets a new one) and closed after IDLE_CLOSE seconds without work: a new connection
per mail cost more than the mail. A temporary failure (the relay down, a 4xx answer, a dropped
connection) is retried with back-off until the deadline, all in memory: nothing about the address is written anywhere before consent. A mail the relay refuses for good,
or cannot take before its deadline, is dropped and the handler answers « réessayez dans quelques
minutes ». If the service stops with mails queued, the worker sends what it can until each deadline;
what is left is lost, and those readers were not told it was sent. For a relay that may be down for
long, run a local MTA (Postfix, OpenSMTPD) as SMTP_URL: it queues on disk, durably, and retries for days.

The welcome mail (welcome.py) goes through the same queue once a reader confirms, but nobody waits for
it: it is retried the same way until its deadline, and if it cannot leave it is dropped, with a warning
(the address is stored all the same). Nothing about it is written to disk either.
"""
from __future__ import annotations

import logging
import queue
import smtplib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from email.utils import parseaddr

from .config import Config
from .confirmation import ConfirmationMail
from .mailer import MailerError, open_mailer, temporary
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
WORKERS = 16           # mails handed off at once, each on its own connection: a worker mostly waits for the
                       # relay's answers (three round trips a mail), with the GIL released, while signups
                       # wait for their mail; 4 left a wave of signups queued behind each other's round trips
ADDRESS_REFUSED = "address refused"  # a submit's outcome when the relay refuses the recipient for good (5xx)
_STOP = object()


class Outgoing:
    def __init__(self, config: Config, signer: Signer, maxsize: int = QUEUE_SIZE, deadline: float = DEADLINE):
        self.config = config
        self.signer = signer
        self.deadline = deadline
        env = mail_environment(config)
        self.mail = ConfirmationMail(config, signer, env)
        self.welcome_mail = WelcomeMail(config, signer, env) if config.welcome else None
        self.sender = parseaddr(config.mail_from)[1]  # MAIL FROM, as smtplib takes it from the From header
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._threads = [threading.Thread(target=self._work, name=f"newsletter-outgoing-{n}", daemon=True)
                         for n in range(WORKERS)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> Future | None:
        """Queue a confirmation mail: a future that becomes True once the relay took it, ADDRESS_REFUSED if
        the relay refuses the recipient for good, False if it could not be sent before the deadline; None
        when the queue is full (the caller answers 503). The link carries `lists`, the lists chosen."""
        outcome: Future = Future()
        try:
            self._queue.put_nowait((self.mail, email, lists, time.monotonic() + self.deadline, outcome))
        except queue.Full:
            return None
        return outcome

    def welcome(self, email: str, names: Sequence[str] = ()) -> Future | None:
        """Queue the welcome mail of a reader who just confirmed, naming the lists they are on, without
        waiting for it: its future (as for submit), or None if welcome mails are off or the queue is full."""
        if self.welcome_mail is None:
            return None
        outcome: Future = Future()
        try:
            self._queue.put_nowait((self.welcome_mail, email, tuple(names), time.monotonic() + self.deadline, outcome))
        except queue.Full:
            logger.warning("welcome mail not sent: the outgoing queue is full")
            return None
        return outcome

    def wait(self) -> None:
        """Block until every queued mail has been handled."""
        self._queue.join()

    def stop(self, timeout: float = 30) -> None:
        """Send what is queued (each until its deadline), then end the workers."""
        for _ in self._threads:
            self._queue.put(_STOP)
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    def _work(self) -> None:
        connection = ExitStack()  # the open mailer, if any
        mailer = None
        while True:
            try:
                item = self._queue.get(timeout=IDLE_CLOSE if mailer is not None else None)
            except queue.Empty:
                connection.close()  # idle: give the relay its connection back
                mailer = None
                continue
            try:
                if item is _STOP:
                    connection.close()
                    return
                mail, email, extra, deadline, outcome = item
                kind = self._kind(mail)
                delay = BACKOFF_START
                while True:
                    try:
                        if mailer is None:
                            mailer = connection.enter_context(open_mailer(self.config))
                        sent = self._send(mailer, mail, email, extra)
                        break
                    except (MailerError, OSError, smtplib.SMTPException) as exc:
                        connection.close()
                        mailer = None
                        retry = isinstance(exc, MailerError) or temporary(exc)
                        if not retry and isinstance(exc, smtplib.SMTPRecipientsRefused):
                            sent = ADDRESS_REFUSED  # the relay will never take this address: not worth a retry
                            break
                        if not retry or time.monotonic() + delay > deadline:
                            # The exception may quote the address: its kind only.
                            logger.warning("%s mail not sent (%s)%s", kind, type(exc).__name__,
                                           ": the reader is told to retry" if mail is self.mail else "")
                            sent = False
                            break
                        time.sleep(delay)  # this thread only: requests go on being answered
                        delay *= 2
                outcome.set_result(sent)
            except Exception as exc:  # never let one mail stop the worker; the message may hold the address
                logger.error("%s mail not sent: %s", "confirmation" if item is _STOP else self._kind(item[0]),
                             type(exc).__name__)
                if item is not _STOP and not item[-1].done():
                    item[-1].set_result(False)
            finally:
                self._queue.task_done()

    def _kind(self, mail) -> str:
        return "confirmation" if mail is self.mail else "welcome"

    def _send(self, mailer, mail, email: str, extra) -> bool:
        """Hand one mail to the relay (smtplib errors propagate: the caller retries or gives up)."""
        data, link = mail.wire(email, extra)
        path = mailer.send_wire(data, self.sender, [email])
        if not self.config.smtp_url:
            what = "de confirmation" if mail is self.mail else "de bienvenue"
            logger.info("Pas de serveur SMTP : mail %s écrit dans %s ; lien : %s", what, path, link)
        return True
