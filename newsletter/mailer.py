"""One mailer interface, two backends (like Django's mail backends):
SMTP when SMTP_URL is set, otherwise one .eml file a message in NEWSLETTER_OUTBOX.

`open_mailer(config)` yields an object with `send(msg, envelope_from=None)`; the SMTP backend keeps
one connection for every message sent inside the `with` block. `envelope_from` is the SMTP MAIL FROM
(the newsletter's signed return path, see verp.py); None: the Sender or From header. Both backends
flatten the message once (`wire_bytes`), DKIM-sign those bytes when a key is configured, and hand
over exactly the signed bytes: nothing re-flattens a message after its signature.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import smtplib
import ssl
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.utils import getaddresses
from pathlib import Path
from typing import Iterator, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from .config import Config
from .dkimsign import DkimKey

logger = logging.getLogger(__name__)

SMTP_TIMEOUT = 30


def temporary(exc: Exception) -> bool:
    """A 4xx answer, a dropped connection or a network hiccup: worth retrying."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError))


class MailerError(RuntimeError):
    """The mail server can't be used as configured: unreachable, TLS or login refused.

    The message names SMTP_URL's host, never the password."""


class Mailer(Protocol):
    def send(self, msg: EmailMessage, envelope_from: str | None = None) -> None: ...


@contextmanager
def open_mailer(config: Config, ssl_context: ssl.SSLContext | None = None, *,
                url: str | None = None) -> Iterator[Mailer]:
    """The configured mailer, closed on exit. `ssl_context` overrides certificate checks (tests);
    `url` picks one relay of SMTP_URL's pool (default: the first)."""
    if config.smtp_url:
        mailer = SMTPMailer(url or config.smtp_url, ssl_context, dkim=config.dkim)
        try:
            yield mailer
        finally:
            mailer.close()
    else:
        yield OutboxMailer(config.outbox, dkim=config.dkim)


def wire_bytes(msg: Message, dkim: DkimKey | None = None) -> bytes:
    """The message as it goes on the wire (CRLF, as smtplib's send_message flattens it), DKIM-signed
    when a key is given. Both backends write these bytes: the outbox holds what a relay would get."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
    data = buffer.getvalue()
    return dkim.sign(data) if dkim is not None else data


def envelope(msg: Message) -> tuple[str, list[str]]:
    """MAIL FROM and RCPT TO as smtplib's send_message takes them: Sender or From; To, Cc, Bcc."""
    sender = getaddresses([str(msg["Sender"] or msg["From"] or "")])
    recipients = getaddresses([str(v) for key in ("To", "Cc", "Bcc") for v in msg.get_all(key, [])])
    return (sender[0][1] if sender else ""), [address for _, address in recipients if address]


class OutboxMailer:
    """Writes each message to `outbox/<time>-<random>.eml` (no address in the name),
    complete or not at all: a temporary file renamed into place."""

    def __init__(self, outbox: Path, dkim: DkimKey | None = None):
        self.outbox = Path(outbox)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.dkim = dkim

    def send(self, msg: EmailMessage, envelope_from: str | None = None) -> Path:
        """The envelope sender has no place in an .eml file: it is ignored."""
        return self._write(wire_bytes(msg, self.dkim))

    def send_wire(self, data: bytes, sender: str, recipients: list[str]) -> Path:
        """A message already flattened (CRLF, unsigned): signed if a key is configured, then written."""
        return self._write(self.dkim.sign(data) if self.dkim is not None else data)

    def _write(self, data: bytes) -> Path:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        # Not *.eml until complete: readers globbing the outbox never see half a message.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=self.outbox)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            path = self.outbox / name
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.debug("message written to %s", path)
        return path


class ReplyLost(smtplib.SMTPServerDisconnected):
    """The whole message went out, then the connection dropped before the server's answer. The server
    may well have taken it: sending it again could give the reader one copy per lost answer."""


class _KnowsWhenDataWentOut:
    """Marks the moment the end of a message's data is sent, to tell a lost answer from a lost message."""

    data_sent = False

    def data(self, msg):
        self.data_sent = False
        return super().data(msg)

    def send(self, s):
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.data_sent = True


class _SMTP(_KnowsWhenDataWentOut, smtplib.SMTP):
    pass


class _SMTP_SSL(_KnowsWhenDataWentOut, smtplib.SMTP_SSL):
    pass


@dataclass(frozen=True)
class Relay:
    """Where SMTP_URL points: smtp://user:pass@host:port, smtps:// for TLS from the start, ?starttls=1 to
    upgrade (the same for smtplib here and for the service's asyncio client, asyncsmtp.py)."""

    host: str
    port: int
    tls: bool = False
    starttls: bool = False
    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> "Relay":
        parts = urlsplit(url)
        tls = parts.scheme == "smtps"
        starttls = parse_qs(parts.query).get("starttls", ["0"])[0].lower() in ("1", "true", "yes", "on")
        return cls(host=parts.hostname or "localhost", port=parts.port or (465 if tls else 587 if starttls else 25),
                   tls=tls, starttls=starttls, user=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class SMTPMailer:
    """smtp://user:pass@host:port, smtps:// for TLS from the start, ?starttls=1 to upgrade.

    Connects lazily and reconnects once if the server dropped an idle connection.
    Errors while sending propagate as smtplib exceptions: the caller decides to retry.
    """

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None = None, dkim: DkimKey | None = None):
        self.dkim = dkim
        relay = Relay.from_url(url)
        self.tls, self.starttls, self.host, self.port = relay.tls, relay.starttls, relay.host, relay.port
        self.user, self.password = relay.user, relay.password
        self._ssl_context = ssl_context  # made when first needed: loading the CAs takes milliseconds
        self._smtp: smtplib.SMTP | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> smtplib.SMTP:
        """Open, secure and authenticate; MailerError says which step failed and where."""
        try:
            if self.tls:
                smtp = _SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT, context=self.ssl_context)
            else:
                smtp = _SMTP(self.host, self.port, timeout=SMTP_TIMEOUT)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailerError(f"SMTP_URL : serveur {self.where} injoignable ({exc.__class__.__name__}: {exc})") from None
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            if self.user:
                _login(smtp, self.user, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            _quit(smtp)
            raise MailerError(f"SMTP_URL : identifiants refusés par {self.where} ({exc.smtp_code})") from None
        except smtplib.SMTPNotSupportedError as exc:
            _quit(smtp)
            raise MailerError(f"SMTP_URL : {self.where} ne prend pas en charge {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            _quit(smtp)
            raise MailerError(f"SMTP_URL : échec de connexion à {self.where} ({exc.__class__.__name__}: {exc})") from None
        return smtp

    def send(self, msg: EmailMessage, envelope_from: str | None = None) -> None:
        """Send one message; ReplyLost if it went out whole but its answer never came back."""
        if any(msg.get_all(key) for key in ("Bcc", "Resent-Bcc")):
            raise ValueError("a Bcc header would be sent to every recipient: not supported")
        data = wire_bytes(msg, self.dkim)  # signed once: a retry sends the very same bytes
        sender, recipients = envelope(msg)
        self._sendmail(envelope_from or sender, recipients, data)

    def send_wire(self, data: bytes, sender: str, recipients: list[str]) -> None:
        """A message already flattened (CRLF, unsigned, no Bcc): signed if a key is configured, then sent
        as `send` sends; the connection stays open for the next one."""
        self._sendmail(sender, recipients, self.dkim.sign(data) if self.dkim is not None else data)

    def _sendmail(self, sender: str, recipients: list[str], data: bytes) -> None:
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self.connect()
            self._smtp.data_sent = False  # not yet this message's (the last one's went out on this connection)
            try:
                self._smtp.sendmail(sender, recipients, data)
                return
            except smtplib.SMTPServerDisconnected:
                lost_answer = self._smtp.data_sent
                self._smtp.close()
                self._smtp = None
                if lost_answer:
                    raise ReplyLost("connection closed after the message, before the server's answer") from None
                if attempt == 2:
                    raise
                # The server closed an idle connection before taking the message: reconnect once.

    def close(self) -> None:
        if self._smtp is not None:
            _quit(self._smtp)
            self._smtp = None


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib.login, except for non-ASCII credentials, which smtplib cannot encode:
    those go as AUTH PLAIN in UTF-8 (RFC 4616)."""
    if (user + password).isascii():
        smtp.login(user, password)
        return
    if "plain" not in smtp.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPNotSupportedError("AUTH PLAIN (needed for a non-ASCII login or password)")
    blob = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode("ascii")
    code, answer = smtp.docmd("AUTH", "PLAIN " + blob)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
