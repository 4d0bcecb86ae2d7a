"""Confirmation mails leave the request path: the handler only queues the address,
so a signup answers in the same time whatever happens next, and a slow or broken
mail server never holds a reader's request.

One worker thread drains the queue through one mailer connection, kept open while
there is work and closed when the queue is empty.
"""
from __future__ import annotations

import logging
import queue
import smtplib
import threading
from contextlib import ExitStack

from .config import Config
from .confirmation import confirmation_message
from .mailer import MailerError, open_mailer
from .pages import mail_environment
from .signing import Signer

logger = logging.getLogger(__name__)

QUEUE_SIZE = 2000
_STOP = object()


class Outgoing:
    def __init__(self, config: Config, signer: Signer, maxsize: int = QUEUE_SIZE):
        self.config = config
        self.signer = signer
        self.env = mail_environment(config)
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._work, name="newsletter-outgoing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, email: str) -> bool:
        """Queue a confirmation mail; False when the queue is full (the caller answers 503)."""
        try:
            self._queue.put_nowait(email)
        except queue.Full:
            return False
        return True

    def wait(self) -> None:
        """Block until every queued mail has been handled."""
        self._queue.join()

    def stop(self, timeout: float = 30) -> None:
        """Send what is queued, then end the worker."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _work(self) -> None:
        connection = ExitStack()  # the open mailer, if any
        mailer = None
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    connection.close()
                    return
                if mailer is None:
                    mailer = connection.enter_context(open_mailer(self.config))
                self._send(mailer, item)
            except MailerError as exc:
                logger.error("confirmation mail not sent: %s", exc)
                connection.close()
                mailer = None
            except Exception as exc:  # never let one mail stop the worker; the message may hold the address
                logger.error("confirmation mail not sent: %s", type(exc).__name__)
            finally:
                self._queue.task_done()
            if mailer is not None and self._queue.empty():
                connection.close()
                mailer = None

    def _send(self, mailer, email: str) -> None:
        msg, link = confirmation_message(self.config, self.signer, self.env, email)
        try:
            path = mailer.send(msg)
        except smtplib.SMTPException as exc:
            # The exception may quote the address: log its kind and code only.
            logger.error("confirmation mail refused by the SMTP server: %s %s",
                         type(exc).__name__, getattr(exc, "smtp_code", ""))
            return
        if not self.config.smtp_url:
            logger.info("Pas de serveur SMTP : mail de confirmation écrit dans %s ; lien : %s", path, link)
