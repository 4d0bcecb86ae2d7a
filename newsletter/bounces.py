"""`make bounces`: read BOUNCE_MAILBOX, erase the addresses that bounce for good, complain or
unsubscribe by mail, and keep nothing about them.

    python -m newsletter.bounces

BOUNCE_MAILBOX is `imaps://user:pass@host[:port]/INBOX`, `imap://…?starttls=1`, or a Maildir
folder. Each message is judged by bounce_parse.py; the reader is found from the signed return
path (verp.py) the bounce came back to, or the unsubscribe token of the returned message, and
only else from the address the report names, and then only if it is subscribed: a bounce of
the author's own mail never erases anyone else. An erasure is the store's `remove`, the same
as an unsubscribe. Processed messages (temporary failures included) are deleted from the
mailbox, after the erasure: a run killed between the two sees the message again next time and
finds the address already gone. What is not understood is left for the author.

Nothing about an address is written anywhere, not even a log line: the run prints counts.
Two runs never overlap (a kernel lock beside the store); it is safe every few minutes.
Exit status: 0 done (or another run holds the lock); 1 BOUNCE_MAILBOX unset, unreadable or refused.
"""
from __future__ import annotations

import fcntl
import imaplib
import mailbox
import os
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .bounce_parse import Kind, classify
from .config import Config, ConfigError
from .signing import BadLink, Signer
from .store import Erasure, StoreError, open_store

IMAP_TIMEOUT = 60


class MailboxError(RuntimeError):
    """BOUNCE_MAILBOX cannot be read; the message names the host or folder, never the password."""


@dataclass
class Counts:
    hard: int = 0          # addresses erased after a permanent failure
    complaints: int = 0    # addresses erased after a complaint
    unsubscribes: int = 0  # addresses erased by an unsubscribe mail
    gone: int = 0          # messages about an address no longer subscribed
    temporary: int = 0
    unknown: int = 0

    def line(self) -> str:
        erased = self.hard + self.complaints
        parts = [f"{erased} {plural(erased, 'adresse effacée', 'adresses effacées')} "
                 f"({self.hard} {plural(self.hard, 'rejet définitif', 'rejets définitifs')}, "
                 f"{self.complaints} {plural(self.complaints, 'plainte', 'plaintes')})",
                 f"{self.unsubscribes} {plural(self.unsubscribes, 'désinscription', 'désinscriptions')} par e-mail",
                 f"{self.temporary} {plural(self.temporary, 'rejet temporaire ignoré', 'rejets temporaires ignorés')}",
                 f"{self.unknown} {plural(self.unknown, 'message non compris laissé', 'messages non compris laissés')}"
                 " dans la boîte"]
        if self.gone:
            parts.insert(2, f"{self.gone} {plural(self.gone, 'message', 'messages')} sur une adresse déjà absente")
        return ", ".join(parts)


def plural(n: int, one: str, many: str) -> str:
    return one if n < 2 else many  # French: 0 and 1 take the singular


# -- the mailboxes: list the messages, give their bytes, delete one ------------------------------


class MaildirBox:
    def __init__(self, path: str):
        if not (Path(path) / "cur").is_dir() or not (Path(path) / "new").is_dir():
            raise MailboxError(f"BOUNCE_MAILBOX : {path} n’est pas un dossier Maildir (cur/, new/)")
        self.box = mailbox.Maildir(path, factory=None, create=False)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in list(self.box.keys()):
            try:
                yield key, self.box.get_bytes(key)
            except KeyError:  # taken away meanwhile by a mail client
                continue

    def delete(self, key: str) -> None:
        self.box.discard(key)

    def close(self) -> None:
        self.box.close()


class IMAPBox:
    """imaps:// (TLS from the start, port 993), imap:// (143), ?starttls=1 to upgrade."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        tls = parts.scheme == "imaps"
        starttls = parse_qs(parts.query).get("starttls", ["0"])[0].lower() in ("1", "true", "yes", "on")
        host = parts.hostname or "localhost"
        port = parts.port or (993 if tls else 143)
        self.where = f"{host}:{port}"
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        context = ssl_context or ssl.create_default_context()
        self.deleted: list[bytes] = []
        try:
            if tls:
                self.imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=IMAP_TIMEOUT)
            else:
                self.imap = imaplib.IMAP4(host, port, timeout=IMAP_TIMEOUT)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"BOUNCE_MAILBOX : serveur {self.where} injoignable "
                               f"({exc.__class__.__name__}: {exc})") from None
        try:
            if starttls:
                self.imap.starttls(ssl_context=context)
            self.imap.login(unquote(parts.username or ""), unquote(parts.password or ""))
            # What the server can do once logged in (many announce UIDPLUS only then).
            status, data = self.imap.capability()
            self.capabilities = set(data[-1].decode().upper().split()) if status == "OK" and data else set()
            status, _ = self.imap.select(_quoted(folder))
            if status != "OK":
                raise imaplib.IMAP4.error(f"no folder {folder}")
        except (OSError, imaplib.IMAP4.error) as exc:
            self.imap.shutdown()
            raise MailboxError(f"BOUNCE_MAILBOX : {self.where} a refusé la connexion, l’identifiant ou le "
                               f"dossier ({exc.__class__.__name__})") from None

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        status, data = self.imap.uid("SEARCH", None, "ALL")
        for uid in (data[0] or b"").split() if status == "OK" else []:
            status, fetched = self.imap.uid("FETCH", uid, "(BODY.PEEK[])")  # PEEK: leaves \Seen as it was
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), None) if status == "OK" else None
            if raw is not None:
                yield uid, raw

    def delete(self, uid: bytes) -> None:
        self.imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        self.deleted.append(uid)

    def close(self) -> None:
        """Expunge only the messages this run deleted (UID EXPUNGE, RFC 4315) where the server can."""
        try:
            if self.deleted:
                if "UIDPLUS" in self.capabilities:
                    self.imap.uid("EXPUNGE", b",".join(self.deleted))
                else:
                    self.imap.expunge()
            self.imap.logout()  # not CLOSE: it would expunge every \Deleted message, the author's too
        except (OSError, imaplib.IMAP4.error):
            self.imap.shutdown()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def open_box(location: str, ssl_context: ssl.SSLContext | None = None):
    if location.startswith(("imap://", "imaps://")):
        return IMAPBox(location, ssl_context)
    if "://" in location:
        raise MailboxError(f"BOUNCE_MAILBOX : schéma non reconnu ({location.split('://')[0]}://) ; "
                           "attendu : imaps://, imap:// ou un dossier Maildir")
    return MaildirBox(location)


# -- the run -------------------------------------------------------------------------------------


def reader_of(verdict, store, signer: Signer) -> str | None:
    """The one reader a verdict is about: from a signed token, else a named address that is subscribed."""
    for tokens, read in ((verdict.verp, lambda t: signer.read_bounce_token(t, store.emails)),
                         (verdict.unsubscribe, signer.read_unsubscribe_token)):
        found = set()
        for token in tokens:
            try:
                found.add(read(token).lower())
            except BadLink:
                continue
        if len(found) == 1:
            return found.pop()
        if found:
            return None  # tokens of several readers in one bounce: not sure which one failed
    named = {address.lower() for address in verdict.recipients if address in store}
    return named.pop() if len(named) == 1 else None


def process(box, store, signer: Signer) -> Counts:
    counts = Counts()
    for key, raw in box.messages():
        verdict = classify(raw)
        if verdict.kind is Kind.TEMPORARY:
            counts.temporary += 1
        elif verdict.kind is Kind.UNKNOWN:
            counts.unknown += 1
            continue
        else:
            if verdict.kind is Kind.UNSUBSCRIBE:
                try:
                    address = signer.read_unsubscribe_token(verdict.unsubscribe[0])
                except BadLink:
                    address = None
            else:
                address = reader_of(verdict, store, signer)
            if address is None:
                counts.unknown += 1
                continue
            if store.remove(address) is Erasure.ABSENT:
                counts.gone += 1
            elif verdict.kind is Kind.HARD:
                counts.hard += 1
            elif verdict.kind is Kind.COMPLAINT:
                counts.complaints += 1
            else:
                counts.unsubscribes += 1
        box.delete(key)
    return counts


@contextmanager
def one_run(db: str) -> Iterator[bool]:
    """True if this is the only run on this store; a kernel lock, released however the process ends."""
    path = Path(db)
    lock_path = path.with_name(path.name + ".bounces-lock")
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def run(config: Config, location: str, out=sys.stdout, err=sys.stderr, ssl_context=None) -> int:
    if not location:
        print("error: BOUNCE_MAILBOX is not set (imaps://user:pass@host/INBOX or a Maildir folder)", file=err)
        return 1
    with one_run(config.db) as alone:
        if not alone:
            print("Another make bounces is running: this one does nothing.", file=out)
            return 0
        store = open_store(config.db)
        try:
            box = open_box(location, ssl_context)
            try:
                counts = process(box, store, Signer(config.secrets))
            finally:
                box.close()
            store.wait_erased(10)  # PENDING erasures finish in the background; give them a moment
        except MailboxError as exc:
            print(f"error: {exc}", file=err)
            return 1
        finally:
            store.close()
    print(counts.line() + ".", file=out)
    return 0


def main(argv=None) -> int:
    try:
        config = Config.from_env()
        return run(config, os.environ.get("BOUNCE_MAILBOX", ""))
    except (ConfigError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
