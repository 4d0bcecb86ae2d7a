"""The subscriber store: email addresses and nothing else about a person.

All SQL lives here, one comment per query. SQLite is the default backend; a
PostgreSQL backend can implement the same `Store` methods later.

Privacy: `subscribers` has one column, the address. Sends are recorded in
`sends`, keyed by post, never by person. Deletion overwrites the bytes
(secure_delete) and a TRUNCATE checkpoint empties the WAL, so a removed
address is in no byte of the database files.

Positions: the sender walks subscribers by SQLite rowid, stable while an address
stays subscribed and growing for new ones (a new row gets max(rowid)+1; if the
highest row was deleted its number can come back, which at worst skips a reader
who subscribed during a send). Never VACUUM during a send: it may renumber rowids.
"""
from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
-- One row = one confirmed address. NOCASE: Jean@x.fr and jean@x.fr are one reader.
CREATE TABLE IF NOT EXISTS subscribers (email TEXT PRIMARY KEY COLLATE NOCASE) ;
-- The sender's progress, per post: last rowid mailed, and whether the post is done.
CREATE TABLE IF NOT EXISTS sends (
    post_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
) ;
"""


class StoreError(RuntimeError):
    """The store cannot be opened as configured (the message names NEWSLETTER_DB)."""


class SendBusy(RuntimeError):
    """Another send is running on this store."""


def open_store(url_or_path: str | Path) -> "Store":
    """A store for NEWSLETTER_DB: a SQLite file path (or sqlite:///path)."""
    target = str(url_or_path)
    if target.startswith(("postgresql://", "postgres://")):
        raise StoreError("NEWSLETTER_DB : PostgreSQL n’est pas encore pris en charge (not yet supported); "
                         "utilisez un chemin de fichier SQLite")
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///"):]
    elif "://" in target:
        raise StoreError(f"NEWSLETTER_DB : schéma non reconnu ({target.split('://')[0]}://) ; "
                         "attendu : un chemin de fichier SQLite")
    return SQLiteStore(Path(target))


class SQLiteStore:
    """One connection shared by the threads of a process, behind a lock; other
    processes (the sender, the commands) wait on SQLite's busy timeout."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Readable by the owner only; SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"NEWSLETTER_DB : impossible d’ouvrir {path} : {exc}") from None
        self._lock = threading.Lock()
        with self._lock:
            # Before anything is written: overwrite deleted content, fsync each commit, readers don't block writers.
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(SCHEMA)

    # -- subscribers -------------------------------------------------------

    def add(self, email: str) -> bool:
        """Store a confirmed address; True if it was not there yet."""
        with self._lock:
            # Idempotent: a second confirmation changes nothing.
            cur = self._db.execute("INSERT OR IGNORE INTO subscribers (email) VALUES (?)", (email,))
            return cur.rowcount == 1

    def add_many(self, emails: Iterable[str]) -> tuple[list[str], list[str]]:
        """Add addresses in one transaction (all or nothing); returns (added, already present)."""
        added, present = [], []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for email in emails:
                    # Same idempotent insert as add(), inside the import's transaction.
                    cur = self._db.execute("INSERT OR IGNORE INTO subscribers (email) VALUES (?)", (email,))
                    (added if cur.rowcount == 1 else present).append(email)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added, present

    def remove(self, email: str) -> bool:
        """Erase an address from disk at once; True if it was there."""
        with self._lock:
            # secure_delete zeroes the row's bytes in the table and its index.
            cur = self._db.execute("DELETE FROM subscribers WHERE email = ?", (email,))
            # Copy the zeroed pages into the db file and cut the WAL to 0 bytes: the old frames held the address.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return cur.rowcount > 0

    def __contains__(self, email: object) -> bool:
        with self._lock:
            # Membership, case-insensitive like the key.
            row = self._db.execute("SELECT 1 FROM subscribers WHERE email = ?", (email,)).fetchone()
        return row is not None

    def count(self) -> int:
        with self._lock:
            # How many readers.
            return self._db.execute("SELECT count(*) FROM subscribers").fetchone()[0]

    def emails(self) -> Iterator[str]:
        """Every address, sorted (for export)."""
        with self._lock:
            # Fetched at once: the lock is not held while the caller iterates.
            rows = self._db.execute("SELECT email FROM subscribers ORDER BY email").fetchall()
        return iter([r[0] for r in rows])

    def subscribers_after(self, position: int, limit: int) -> list[tuple[int, str]]:
        """The next `limit` subscribers after `position`, as (position, email), in position order."""
        with self._lock:
            # Keyset pagination on rowid: resumable from a checkpoint, unaffected by removals.
            return self._db.execute(
                "SELECT rowid, email FROM subscribers WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (position, limit)).fetchall()

    # -- sends, keyed by post --------------------------------------------

    def send_position(self, post_id: str) -> int | None:
        """The sender's checkpoint for a post; None if it never started."""
        with self._lock:
            # One row per post started.
            row = self._db.execute("SELECT position FROM sends WHERE post_id = ?", (post_id,)).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def fast_checkpoints(self):
        """While a send runs: each checkpoint is committed to the WAL without an fsync (synchronous=NORMAL).
        A killed process loses none; a power cut may lose the last ones, whose readers then get the post
        twice. The fsync per message halved the sending rate. FULL again afterwards."""
        with self._lock:
            self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            with self._lock:
                self._db.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def sending(self):
        """The one send allowed at a time on this store, or SendBusy at once.

        An exclusive lock on a file beside the database (it holds nothing); the kernel releases it when
        the process ends, however it ends, so a killed sender never leaves it behind. Two sends at once
        would each read the same resume position and mail the same readers."""
        path = self.path.with_name(self.path.name + ".send-lock")
        handle = open(path, "a+b")  # noqa: SIM115 - held for the whole send
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SendBusy(f"another make send is running on {self.path}: wait for it to finish "
                               "(or stop it), then run this command again") from None
            yield
        finally:
            handle.close()

    def save_send_position(self, post_id: str, position: int) -> None:
        """Record progress (committed before returning)."""
        with self._lock:
            # Upsert: the first save creates the post's row.
            self._db.execute(
                "INSERT INTO sends (post_id, position) VALUES (?, ?) "
                "ON CONFLICT (post_id) DO UPDATE SET position = excluded.position",
                (post_id, position))

    def mark_sent(self, post_id: str) -> None:
        """The post went to everybody: never send it again."""
        with self._lock:
            # Upsert, keeping the last position.
            self._db.execute(
                "INSERT INTO sends (post_id, done) VALUES (?, 1) "
                "ON CONFLICT (post_id) DO UPDATE SET done = 1",
                (post_id,))

    def is_sent(self, post_id: str) -> bool:
        with self._lock:
            # Finished sends only.
            row = self._db.execute("SELECT done FROM sends WHERE post_id = ?", (post_id,)).fetchone()
        return bool(row and row[0])

    def send_states(self) -> dict[str, tuple[int, bool]]:
        """Every send recorded: post id → (last position reached, finished). For `make send` without POST."""
        with self._lock:
            # The whole table: one row per post (or digest) ever started, one per post of the blog at most.
            rows = self._db.execute("SELECT post_id, position, done FROM sends").fetchall()
        return {post_id: (position, bool(done)) for post_id, position, done in rows}

    def mark_many_sent(self, post_ids: Iterable[str]) -> None:
        """Record posts as sent without mailing them (the archive, at the first `make send`), all or nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for post_id in post_ids:
                    # Same upsert as mark_sent(), inside one transaction.
                    self._db.execute(
                        "INSERT INTO sends (post_id, done) VALUES (?, 1) "
                        "ON CONFLICT (post_id) DO UPDATE SET done = 1",
                        (post_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Store = SQLiteStore
