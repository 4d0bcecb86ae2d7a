"""`make send POST=slug[,slug…]`: mail a post (or a digest of several) to every subscriber, once.

    python -m newsletter.sender SLUGS        SLUGS: one slug, or several comma-separated (one digest mail)

A send is recorded by post (the slugs joined by commas), never by person. After
every message the last subscriber position reached is committed, so after a
crash or `kill -9` the same command resumes where it stopped: nobody is left
out and at most the one message in flight is sent twice.

Environment: DRY_RUN=1 prints what would be sent and touches nothing;
NEWSLETTER_RATE caps the messages per second (also a setting; default unlimited).
Exit status: 0 done (or nothing to do), 1 the post can't be sent or some
addresses were refused (listed at the end), 2 usage, 3 stopped by the server
(unreachable, login refused, or still refusing after the retries): run again.
"""
from __future__ import annotations

import logging
import os
import smtplib
import sys
import time
from dataclasses import dataclass, field

from .config import Config, ConfigError
from .links import unsubscribe_mailto, unsubscribe_url
from .mail_message import PostError, build_mail, load_posts
from .mailer import MailerError, open_mailer, temporary
from .signing import Signer
from .store import SendBusy, open_store

logger = logging.getLogger(__name__)

BATCH = 500                 # subscribers read at a time: memory stays flat whatever the list size
RETRIES = 5                 # attempts after the first for a temporary (4xx) failure
BACKOFF_START = 0.5         # seconds; doubled at each retry (0.5, 1, 2, 4, 8: about 15 s at most)
BACKOFF_MAX = 30.0
PREVIEW_LINES = 25


class Stop(Exception):
    """The send can't go on now (server unreachable, login refused, 4xx that won't clear)."""


@dataclass
class Report:
    sent: int = 0
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (position, address, answer)


def read_rate(config: Config, environ=os.environ) -> float | None:
    """NEWSLETTER_RATE from the environment, else the setting; None means unlimited."""
    raw = environ.get("NEWSLETTER_RATE") or config.settings.get("NEWSLETTER_RATE")
    if raw in (None, "", 0, "0"):
        return None
    try:
        rate = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"NEWSLETTER_RATE must be a number of messages per second, not {raw!r}") from None
    if rate <= 0:
        raise ConfigError(f"NEWSLETTER_RATE must be positive, not {raw!r}")
    return rate


def parse_slugs(arg: str) -> list[str]:
    slugs = [s.strip() for s in (arg or "").split(",") if s.strip()]
    if len(set(slugs)) != len(slugs):
        raise PostError(f"The same post is listed twice: {arg}")
    return slugs


# -- delivery of one message with retries ----------------------------------------------


def answer(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"{exc.smtp_code} {text}"
    return f"{exc.__class__.__name__}: {exc}"


def deliver(mailer, msg, sleep=time.sleep) -> str | None:
    """Send one message; None when delivered, the server's answer when permanently refused (5xx)."""
    delay = BACKOFF_START
    for attempt in range(RETRIES + 1):
        try:
            mailer.send(msg)
            return None
        except MailerError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise Stop(f"login refused by the mail server ({exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as exc:
            if not temporary(exc):
                if isinstance(exc, (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException)):
                    return answer(exc)
                raise Stop(f"mail server error: {answer(exc)}") from None
            if attempt == RETRIES:
                raise Stop(f"the mail server still answers {answer(exc)} after {RETRIES} retries") from None
            logger.warning("temporary failure (%s); retrying in %.1f s", answer(exc), delay)
            sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
    return None  # not reached


# -- progress ----------------------------------------------------------------------------


class Progress:
    """A bar with count and ETA on a terminal; a plain line every tenth otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream, self.done = total, stream, 0
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = self.last = time.monotonic()
        self.step = max(1, total // 10)

    def advance(self, n: int = 1) -> None:
        self.done += n
        reached = self.done == self.total
        self.total = max(self.total, self.done)  # readers who joined during the send are sent to as well
        now = time.monotonic()
        if self.tty:
            if now - self.last >= 0.1 or reached:
                self.last = now
                self.stream.write("\r" + self.line(now))
                self.stream.flush()
        elif self.done % self.step == 0 or reached:
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else 0
        share = self.done / self.total if self.total else 1
        bar = "#" * int(share * 30)
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if self.done < self.total else "done"
        return f"[{bar:<30}] {self.done}/{self.total} {share:4.0%}  {rate:6.0f} msg/s  ETA {eta}"

    def close(self) -> None:
        if self.tty and self.done:
            self.stream.write("\n")
            self.stream.flush()


# -- the send ------------------------------------------------------------------------------


def remaining(store, position: int) -> int:
    """How many subscribers are after `position`, counted page by page (memory stays flat)."""
    count = 0
    while True:
        page = store.subscribers_after(position, 5000)
        if not page:
            return count
        count += len(page)
        position = page[-1][0]


def send(slugs: list[str], config: Config, *, dry_run: bool = False, rate: float | None = None,
         out=sys.stdout, err=sys.stderr) -> int:
    """Send; returns the exit status. Messages for the author go to `out`/`err`."""
    post_id = ",".join(slugs)
    store = open_store(config.db)
    try:
        if dry_run:
            return _send(slugs, post_id, store, config, dry_run, rate, out, err)
        with store.sending():
            return _send(slugs, post_id, store, config, dry_run, rate, out, err)
    except SendBusy as exc:
        print(f"error: {exc}. Nothing was sent by this command.", file=err)
        return 4
    finally:
        store.close()


def _send(slugs, post_id, store, config, dry_run, rate, out, err) -> int:
    """send(), the store open and, unless dry_run, this process the only sender."""
    if store.is_sent(post_id) or all(store.is_sent(slug) for slug in slugs):
        print(f"{post_id}: already sent; nothing to do.", file=out)
        return 0
    started = store.send_position(post_id)
    already = [slug for slug in slugs if store.is_sent(slug)]
    if already and started is None:
        print(f"error: already sent: {', '.join(already)}. Leave it out of the list.", file=err)
        return 1
    posts = load_posts(config, slugs)
    mail = build_mail(config, posts)
    position = started or 0
    total = remaining(store, position)

    if dry_run:
        print(f"DRY RUN: nothing is sent, nothing recorded.\nSubject: {mail.subject}\n"
              f"Recipients: {total}" + (f" (resuming after position {position})" if started else ""), file=out)
        _, text = mail.sample(f"{config.newsletter_url}/desinscription/…")
        lines = text.splitlines()
        print("\n".join(lines[:PREVIEW_LINES]) + ("\n[…]" if len(lines) > PREVIEW_LINES else ""), file=out)
        return 0

    if started:
        print(f"Resuming {post_id} after subscriber position {position}: {total} to go.", file=out)
    else:
        print(f"Sending « {mail.subject} » to {total} subscribers.", file=out)
    report = Report()
    signer = Signer(config.secrets)
    progress = Progress(total, err)
    interval = 1.0 / rate if rate else 0.0
    next_at = time.monotonic()
    try:
        with open_mailer(config) as mailer, store.fast_checkpoints():
            while True:
                batch = store.subscribers_after(position, BATCH)
                if not batch:
                    break
                for position, address in batch:
                    if interval:
                        pause = next_at - time.monotonic()
                        if pause > 0:
                            time.sleep(pause)
                        next_at = max(next_at, time.monotonic() - interval) + interval
                    if address not in store:  # unsubscribed during the send: acknowledged, so no mail
                        store.save_send_position(post_id, position)
                        progress.advance()
                        continue
                    msg = mail.message(address, unsubscribe_url(config, signer, address),
                                       unsubscribe_mailto(config, signer, address))
                    refused = deliver(mailer, msg)
                    # Committed before the next message: a killed sender re-sends this one at most.
                    store.save_send_position(post_id, position)
                    if refused:
                        report.refused.append((position, address, refused))
                    else:
                        report.sent += 1
                    progress.advance()
    except (MailerError, Stop) as exc:
        progress.close()
        print(f"error: {exc}\nStopped; {report.sent} sent in this run. The progress is saved: "
              f"run the same command again to resume.", file=err)
        _print_refused(report, err)
        return 3
    progress.close()
    store.mark_sent(post_id)
    for slug in slugs:
        store.mark_sent(slug)
    print(f"Done: {report.sent} sent in this run; {post_id} is recorded as sent.", file=out)
    if report.refused:
        _print_refused(report, err)
        return 1
    return 0


def _print_refused(report: Report, err) -> None:
    """Refused addresses, for the author's terminal only (never logged)."""
    if not report.refused:
        return
    print(f"{len(report.refused)} address(es) refused by the server (permanent error, not retried):", file=err)
    for position, address, text in report.refused:
        print(f"  #{position} {address}: {text}", file=err)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        slugs = parse_slugs(args[0])
        if not slugs:
            print("error: give a post slug: make send POST=slug", file=sys.stderr)
            return 2
        config = Config.from_env()
        rate = read_rate(config)
        return send(slugs, config, dry_run=os.environ.get("DRY_RUN", "") not in ("", "0"), rate=rate)
    except (PostError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
