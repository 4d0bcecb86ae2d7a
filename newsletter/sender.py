"""`make send`: mail each new post to every subscriber, once; or one post to one address, as a test.

    python -m newsletter.sender                  every published post not sent yet, oldest first, each its own mail
    python -m newsletter.sender SLUGS            one post, or several comma-separated as one digest mail
    python -m newsletter.sender SLUGS --to ADDR  a test send of exactly that mail to ADDR alone; records nothing
    python -m newsletter.sender --skip-due       record every post due as sent, mail nothing

The first form is the stable interface `make release` (and cron) calls. Its first run on
a blog records the posts already published as sent and mails nothing: an author who
starts the newsletter does not mail the archive. A marker row in `sends` says that run
happened (it is about the blog, nothing about a person). After it, a post is due when
its slug has no finished send, whatever its date: a post kept as a draft for months and
published with its old date is new to the readers. A post dated in the future is never
sent, whatever the records say. More than MAX_DUE (5) new posts due at once (an imported
archive, most likely) stops the run before any mail: send the ones you want with POST=,
then record the rest with --skip-due.

A send is recorded by post (the slugs joined by commas), never by person. Its
readers are cut into NEWSLETTER_SMTP_CONNECTIONS ranges, one per connection
(parallel_send.py; one range by default). After every message the last subscriber
position reached in its range is committed, so after a crash or `kill -9` the same
command resumes where it stopped: nobody is left out and at most the one message
in flight per connection is sent twice. `make send POST=slug`

Lists: a post goes to the whole blog's list and to its rubrique's list; a digest to the whole blog's
and its posts' rubriques'. One keyset walk over the subscribers on any of those lists (per range), so an
address on several of them is mailed once.
and `make send` share those records: a post sent one way is not sent the other.

Environment: DRY_RUN=1 prints what would be sent and changes nothing;
NEWSLETTER_RATE caps the messages per second, all connections together (also a setting;
default unlimited); NEWSLETTER_SMTP_CONNECTIONS and SMTP_URL's relays: see config.py.
Exit status: 0 done, or nothing to send; 1 a post can't be sent (unknown, not built,
changed since the build, dated in the future, too many due at once) or some addresses
were refused (listed at the end); 2 usage (bad arguments, an invalid --to address);
3 stopped by the server (unreachable, login refused, or still refusing after the
retries): run again, it resumes; 4 another send is running on this store: nothing sent.
"""
from __future__ import annotations

import argparse
import logging
import os
import smtplib
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from blogcore.dates import localized, site_zone
from blogcore.records import RECORDS_FILE, RecordsError, read_records

from .addresses import InvalidAddress, normalize_address
from .config import Config, ConfigError
from .links import unsubscribe_mailto, unsubscribe_url
from .mail_message import PostError, build_mail, load_posts, posts_path
from .mailer import MailerError, ReplyLost, open_mailer, temporary
from .parallel_send import Pacer, cut, remaining, run_ranges, to_go
from .signing import Signer
from .store import WHOLE_BLOG, SendBusy, StoreError, open_store
from .verp import return_path

logger = logging.getLogger(__name__)

BATCH = 500                 # subscribers read at a time: memory stays flat whatever the list size
RETRIES = 5                 # attempts after the first for a temporary (4xx) failure
BACKOFF_START = 0.5         # seconds; doubled at each retry (0.5, 1, 2, 4, 8: about 15 s at most)
BACKOFF_MAX = 30.0
PREVIEW_LINES = 25
MAX_DUE = 5                 # more new posts than this due at once is an imported archive, not news: ask first
BASELINE = "#archive"       # the `sends` row saying the archive was recorded; no slug has a "#" (it ends a URL path)


class Stop(Exception):
    """The send can't go on now (server unreachable, login refused, 4xx that won't clear)."""


@dataclass
class Report:
    sent: int = 0
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (position, address, answer)
    unconfirmed: list[tuple[int, str]] = field(default_factory=list)  # went out whole, answer lost: not resent
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one worker per connection

    def add(self, position: int, address: str, refused: str | None, lost: bool) -> None:
        """One message's outcome: the server's refusal, or None; `lost`: its answer never came."""
        with self.lock:
            if lost:
                self.unconfirmed.append((position, address))
            if refused:
                self.refused.append((position, address, refused))
            else:
                self.sent += 1


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


def deliver(mailer, data: bytes, to: str, envelope_from: str, sleep=time.sleep) -> str | None:
    """Send one message (`Mail.wire`'s bytes; the mailer DKIM-signs them) to `to` from `envelope_from`
    (the reader's signed return path); None when delivered, the server's answer when permanently
    refused (5xx). ReplyLost propagates: the message went out whole and is never sent twice."""
    delay = BACKOFF_START
    for attempt in range(RETRIES + 1):
        try:
            mailer.send_wire(data, envelope_from, [to])
            return None
        except (MailerError, ReplyLost):
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
        self.lock = threading.Lock()  # advanced by every connection's worker

    def advance(self, n: int = 1) -> None:
        with self.lock:
            self._advance(n)

    def _advance(self, n: int) -> None:
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


def _after(ranges, started: int | None) -> str:
    """Where a resumed send starts again, for the author: the checkpoint of each range."""
    if not ranges:
        return f"after subscriber position {started}"
    positions = [position for _, _, position in ranges]
    return f"after subscriber position{'s' if len(positions) > 1 else ''} {', '.join(map(str, positions))}"


def lists_of_posts(rubriques) -> list[str]:
    """The lists a send goes to: the whole blog's, and the rubriques' of its posts (None: a post without one)."""
    return [WHOLE_BLOG] + sorted({slug for slug in rubriques if slug})


def describe(lists: list[str]) -> str:
    """The lists of a send, for the author's terminal."""
    return ", ".join("the whole blog" if key == WHOLE_BLOG else f"rubrique {key}" for key in lists)


def send(slugs: list[str], config: Config, *, dry_run: bool = False, rate: float | None = None,
         now: datetime | None = None, out=sys.stdout, err=sys.stderr) -> int:
    """Send; returns the exit status. Messages for the author go to `out`/`err`."""
    post_id = ",".join(slugs)
    now = now or datetime.now(timezone.utc)
    return _as_the_sender(config, dry_run, err,
                          lambda store: _send(slugs, post_id, store, config, dry_run, rate, now, out, err))


def _as_the_sender(config: Config, dry_run: bool, err, work) -> int:
    """`work(store)`'s exit status, the store open and, unless dry_run, this process its only sender
    (status 4 if another process is sending)."""
    store = open_store(config.db)
    try:
        if dry_run:
            return work(store)
        with store.sending():
            return work(store)
    except SendBusy as exc:
        print(f"error: {exc}. Nothing was sent by this command.", file=err)
        return 4
    finally:
        store.close()


def _send(slugs, post_id, store, config, dry_run, rate, now, out, err) -> int:
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
    zone = site_zone(config.settings)
    future = [post for post in posts if localized(post.date, zone) > now]
    if future:
        print(f"error: {future[0].slug} is dated {localized(future[0].date, zone):%Y-%m-%d %H:%M}, in the future: "
              "it is sent once its date has passed (make send, or make release).", file=err)
        return 1
    mail = build_mail(config, posts)
    lists = lists_of_posts(post.category.get("slug") if post.category else None for post in posts)
    ranges = store.send_ranges(post_id)
    total = to_go(store, ranges, lists) if ranges else remaining(store, started or 0, lists=lists)

    if dry_run:
        resuming = f" (resuming {_after(ranges, started)})" if started is not None else ""
        print(f"DRY RUN: nothing is sent, nothing recorded.\nSubject: {mail.subject}\n"
              f"Recipients: {total}{resuming}\nLists: {describe(lists)}", file=out)
        _, text = mail.sample(f"{config.newsletter_url}/desinscription/…")
        lines = text.splitlines()
        print("\n".join(lines[:PREVIEW_LINES]) + ("\n[…]" if len(lines) > PREVIEW_LINES else ""), file=out)
        return 0

    if not ranges:  # a new send, or one stopped before ranges existed: cut what is left
        ranges = store.start_ranges(post_id, cut(store, started or 0, config.smtp_connections, lists))
    if started is not None:
        print(f"Resuming {post_id} {_after(ranges, started)}: {total} to go.", file=out)
    else:
        print(f"Sending « {mail.subject} » to {total} subscribers (lists: {describe(lists)}).", file=out)
    report = Report()
    signer = Signer(config.secrets)
    progress = Progress(total, err)
    pacer = Pacer(rate)

    def walk(mailer, item, stop) -> None:
        """Mail one range in id order, its checkpoint committed after every message."""
        lo, hi, position = item
        while not stop.is_set():
            batch = store.subscribers_after(position, BATCH, hi, lists)
            if not batch:
                return
            for position, address in batch:
                if stop.is_set():  # another connection failed: stop here, this range's checkpoint is saved
                    return
                pacer.wait()
                if not store.receives(address, lists):  # left during the send: acknowledged, so no mail
                    store.save_range_position(post_id, lo, position)
                    progress.advance()
                    continue
                data = mail.wire(address, unsubscribe_url(config, signer, address),
                                 unsubscribe_mailto(config, signer, address))
                lost = False
                try:
                    refused = deliver(mailer, data, address, return_path(config, signer, address))
                except ReplyLost:
                    refused, lost = None, True
                # Committed before the next message: a killed sender re-sends this one at most.
                store.save_range_position(post_id, lo, position)
                report.add(position, address, refused, lost)
                progress.advance()

    relays = list(config.smtp_urls) or [None]
    try:
        with store.fast_checkpoints():
            run_ranges(ranges, relays, config.smtp_connections,
                       lambda relay: open_mailer(config, url=relay), walk)
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
    _print_refused(report, err)
    if report.refused:
        return 1
    return 0


# -- what is due: every published post not sent yet ------------------------------------------


@dataclass(frozen=True)
class Built:
    """What `make send` needs of a post record to know whether it is due."""

    slug: str
    title: str
    date: datetime  # aware, in the site's zone
    rubrique: str | None = None  # its category's slug: its readers get it too


def built_posts(config: Config) -> list[Built]:
    """Every post record the last build left, oldest first.

    No records file is an error, not an empty blog: recording « no archive » then would
    mail the whole archive once the author builds."""
    folder = posts_path(config)
    try:
        records = read_records(folder)
    except RecordsError as error:
        raise PostError(str(error)) from None
    if records is None:
        raise PostError(f"No post records in {folder}: run make build (or make publish) first, then send.")
    zone = site_zone(config.settings)
    posts = []
    for record in records:
        try:
            date = localized(datetime.fromisoformat(record["date"]), zone)
        except (TypeError, ValueError):
            raise PostError(f"{folder / RECORDS_FILE}: post {record['slug']!r} has no valid date "
                            f"({record['date']!r}): run make build, then send again.") from None
        posts.append(Built(record["slug"], record["title_text"], date, (record["category"] or {}).get("slug")))
    return sorted(posts, key=lambda post: (post.date, post.slug))


@dataclass
class Plan:
    """What one `make send` without POST does, decided from the records, the sends and the clock."""

    first: bool                 # no earlier run: the archive is recorded, not mailed
    archive: list[Built]        # published posts never started, recorded as sent by the first run
    due: list[Built]            # to send, oldest first: never sent, or started and not finished
    later: list[Built]          # dated in the future: left alone whatever the records say

    def fresh(self, states) -> list[Built]:
        return [post for post in self.due if post.slug not in states]


def plan(posts: list[Built], states: dict, now: datetime) -> Plan:
    later = [post for post in posts if post.date > now]
    published = [post for post in posts if post.date <= now]
    first = BASELINE not in states
    archive = [post for post in published if post.slug not in states] if first else []
    archived = {post.slug for post in archive}
    due = [post for post in published if post.slug not in archived and not states.get(post.slug, (0, False))[1]]
    return Plan(first, archive, due, later)


def send_due(config: Config, *, dry_run: bool = False, skip: bool = False, rate: float | None = None,
             now: datetime | None = None, out=sys.stdout, err=sys.stderr) -> int:
    """`make send` without POST: each post due, as its own send, under one send lock. Returns the exit status.
    `skip` (--skip-due) records the posts due as sent and mails nothing."""
    now = now or datetime.now(timezone.utc)
    posts = built_posts(config)
    return _as_the_sender(config, dry_run, err,
                          lambda store: _send_due(posts, store, config, dry_run, skip, rate, now, out, err))


def _send_due(posts, store, config, dry_run, skip, rate, now, out, err) -> int:
    states = store.send_states()
    digests = sorted(post_id for post_id, (_, done) in states.items() if "," in post_id and not done)
    if digests:  # its posts are not marked sent yet: sending them alone would mail its readers twice
        print(f"error: the digest {digests[0]} was interrupted; finish it first: make send POST={digests[0]}",
              file=err)
        return 1
    todo = plan(posts, states, now)
    would = "would be " if dry_run else ""
    for post in todo.later:
        print(f"Not yet: {post.slug} is dated {post.date:%Y-%m-%d %H:%M}, in the future; "
              "it goes once that date has passed.", file=out)
    if todo.first:
        if not dry_run:
            store.mark_many_sent([post.slug for post in todo.archive] + [BASELINE])
        print(f"First make send on this blog: {len(todo.archive)} published post(s) "
              f"{'would be' if dry_run else 'are now'} recorded as already sent; nobody is mailed the archive. "
              "The next new post will be mailed once to every subscriber by make send (or make release).", file=out)
    fresh = todo.fresh(states)
    if skip:
        if not dry_run:
            store.mark_many_sent([post.slug for post in fresh])
        print(f"{len(fresh)} post(s) {would}recorded as sent without mailing anyone"
              + "".join(f"\n  {post.date:%Y-%m-%d}  {post.slug}" for post in fresh), file=out)
        return 0
    if not todo.due:
        if not todo.first:
            print("Nothing to send: every published post has been sent. Nothing to do.", file=out)
        return 0
    if len(fresh) > MAX_DUE:
        print(f"error: {len(fresh)} posts are due at once (more than {MAX_DUE}: an imported archive?). "
              "Nothing was sent:" + "".join(f"\n  {post.date:%Y-%m-%d}  {post.slug}" for post in fresh)
              + "\nMail the ones readers should get with make send POST=slug, then record the others as sent "
              "without mail: .venv/bin/python -m newsletter.sender --skip-due (DRY_RUN=1 shows it first).",
              file=err)
        return 1
    load_posts(config, [post.slug for post in todo.due])  # every post checked before the first mail goes
    if dry_run:
        print(f"DRY RUN: nothing is sent, nothing recorded. {len(todo.due)} post(s) due, oldest first:", file=out)
        for post in todo.due:
            ranges = store.send_ranges(post.slug)
            lists = lists_of_posts([post.rubrique])
            readers = (to_go(store, ranges, lists) if ranges
                       else remaining(store, states.get(post.slug, (0, False))[0], lists=lists))
            resuming = " (resuming a stopped send)" if post.slug in states else ""
            print(f"  {post.date:%Y-%m-%d %H:%M}  « {post.title} »  {post.slug}  → "
                  f"{readers} readers{resuming}", file=out)
        return 0
    status = 0
    for post in todo.due:
        result = _send([post.slug], post.slug, store, config, False, rate, now, out, err)
        if result == 3:  # the server stopped us: the next posts wait for the next run
            return 3
        status = max(status, result)
    return status


# -- test send: one address, nothing recorded ---------------------------------------------


def send_test(slugs: list[str], to: str, config: Config, *, dry_run: bool = False,
              out=sys.stdout, err=sys.stderr) -> int:
    """The mail subscribers get, to `to` alone, with an unsubscribe link signed for `to`.
    The store is not even opened: no send position, no lock, nothing recorded."""
    try:
        address = normalize_address(to)
    except InvalidAddress as exc:
        print(f"error: TO={to!r}: {exc.message}", file=err)
        return 2
    mail = build_mail(config, load_posts(config, slugs))
    signer = Signer(config.secrets)
    data = mail.wire(address, unsubscribe_url(config, signer, address), unsubscribe_mailto(config, signer, address))
    if dry_run:
        print(f"DRY RUN: nothing is sent.\nSubject: {mail.subject}\nTest send to: {address} only", file=out)
        return 0
    try:
        with open_mailer(config) as mailer:
            refused = deliver(mailer, data, address, return_path(config, signer, address))
    except (MailerError, Stop) as exc:
        print(f"error: {exc}\nThe test mail was not sent.", file=err)
        return 3
    if refused:
        print(f"error: the mail server refused {address}: {refused}", file=err)
        return 1
    print(f"Test send: « {mail.subject} » sent to {address} only. Nothing recorded: "
          "the subscribers' send is as it was.", file=out)
    return 0


def _print_refused(report: Report, err) -> None:
    """Refused addresses, and those whose answer was lost, for the author's terminal only (never logged)."""
    if report.unconfirmed:
        print(f"{len(report.unconfirmed)} message(s) went out whole but the server closed the connection before "
              "answering: probably delivered, so not sent again (a copy per lost answer would be worse):", file=err)
        for position, address in sorted(report.unconfirmed):
            print(f"  #{position} {address}", file=err)
    if not report.refused:
        return
    print(f"{len(report.refused)} address(es) refused by the server (permanent error, not retried):", file=err)
    for position, address, text in sorted(report.refused):
        print(f"  #{position} {address}: {text}", file=err)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newsletter.sender",
                                     description="Mail posts to the subscribers (see the module docstring).")
    parser.add_argument("slugs", nargs="?", default="", metavar="SLUGS",
                        help="a post's slug, or several comma-separated as one digest; none: every post due")
    parser.add_argument("--to", default="", metavar="ADDRESS", help="test send to this address only; records nothing")
    parser.add_argument("--skip-due", action="store_true", help="record every post due as sent, mail nothing")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    dry_run = os.environ.get("DRY_RUN", "") not in ("", "0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        slugs = parse_slugs(args.slugs)
        if args.slugs.strip() and not slugs:
            parser.error(f"no slug in {args.slugs!r}: make send POST=slug")
        if args.to and not slugs:
            parser.error("a test send needs the post: make send POST=slug TO=address")
        if args.skip_due and (slugs or args.to):
            parser.error("--skip-due takes no post and no address")
        config = Config.from_env()
        if args.to:
            return send_test(slugs, args.to, config, dry_run=dry_run)
        rate = read_rate(config)
        if slugs:
            return send(slugs, config, dry_run=dry_run, rate=rate)
        return send_due(config, dry_run=dry_run, skip=args.skip_due, rate=rate)
    except (PostError, ConfigError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
