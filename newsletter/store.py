"""The subscriber store: email addresses and nothing else about a person.

All SQL lives here, one comment per query. SQLite is the default backend, through apsw, which
bundles a current SQLite (3.54; Python 3.11's own is 3.40, before the WAL-reset fix of 3.51.3).
The PostgreSQL backend (pgstore.py) has the same methods, for several processes or machines.

Privacy: `subscribers` holds the address and a counter that orders the sender's walk. Sends are
recorded in `sends`, keyed by post, never by person. An erasure is complete only once no byte of
the address is left in the database, `-wal` or `-shm` files:
- secure_delete zeroes the row, but a B-tree rebalance can leave copies in a page's free space,
  so every erasure is followed by a VACUUM (every page rewritten; temp_store=MEMORY keeps its
  working copy off the disk), then a TRUNCATE checkpoint that empties the WAL;
- a checkpoint cannot empty the WAL while another connection (the sender, a backup, the sqlite3
  shell) reads an older snapshot. It is then tried again without blocking anyone, in a background
  thread, until that reader is done: `remove` says ERASED or PENDING, never ERASED too early.
Erasures close together share one VACUUM (group commit).

Positions: the sender walks subscribers by `id`, an INTEGER PRIMARY KEY AUTOINCREMENT: stable
while an address stays subscribed (VACUUM keeps it), growing for new ones, never reused.
A send over several connections cuts those ids into ranges (`send_ranges`), each with its own
position (see parallel_send.py); `sends.position` is then where the ranges begin.

Lists: the whole blog (key WHOLE_BLOG, '') and one per rubrique (its category slug). `memberships`
pairs a subscriber's id with a list key, and nothing else: being on a rubrique's list says the reader
is interested in it, which the privacy page says. Every subscriber is on at least one list; leaving
the last one erases the address. A membership left is erased like an address (the same DELETE,
VACUUM and checkpoint): the pair (id, list) must not stay readable either.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import apsw

from .erasures import ERASE_WAIT, Erasure, Erasures  # noqa: F401 (ERASE_WAIT and Erasure: the stores' API)

BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
-- One row = one confirmed address. NOCASE: Jean@x.fr and jean@x.fr are one reader.
-- id orders the sender's walk; AUTOINCREMENT never hands out a number twice.
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE
) ;
-- Which lists a subscriber is on: '' the whole blog, else a rubrique's slug. No date, no status.
-- Keyed (subscriber_id, list): the sender's EXISTS probe, lists_of() and the cascade use it as is.
CREATE TABLE IF NOT EXISTS memberships (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, list)
) ;
-- The sender's progress, per post: last id mailed, and whether the post is done.
CREATE TABLE IF NOT EXISTS sends (
    post_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
) ;
-- A send shared between connections: the subscriber ids after sends.position cut into ranges
-- (lo excluded, hi included, NULL: no end), each with its own checkpoint. By post, never by person.
CREATE TABLE IF NOT EXISTS send_ranges (
    post_id TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER,
    position INTEGER NOT NULL,
    PRIMARY KEY (post_id, lo)
) ;
"""

# A store made before ids: the rowid the sender's positions refer to becomes the id, so a
# send in progress resumes where it was.
MIGRATE_FROM_V1 = """
CREATE TABLE subscribers_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE
) ;
INSERT INTO subscribers_v2 (id, email) SELECT rowid, email FROM subscribers ORDER BY rowid ;
DROP TABLE subscribers ;
ALTER TABLE subscribers_v2 RENAME TO subscribers ;
"""


# A store made before lists: every reader subscribed to the whole blog (run once, with the table's creation).
MIGRATE_TO_LISTS = "INSERT INTO memberships (subscriber_id, list) SELECT id, '' FROM subscribers"

WHOLE_BLOG = ""  # the list key of the whole blog; a rubrique's list is keyed by its category slug


def by_address(rows: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(address, list) rows sorted by address, as (address, [lists]): both stores' memberships()."""
    grouped: list[tuple[str, list[str]]] = []
    for email, key in rows:
        if not grouped or grouped[-1][0] != email:
            grouped.append((email, []))
        grouped[-1][1].append(key)
    return grouped


def _nocase(email: str) -> bytes:
    """An address as SQLite's NOCASE compares it: ASCII letters folded, nothing else."""
    return email.encode("utf-8", "surrogatepass").lower()


class StoreError(RuntimeError):
    """The store cannot be opened as configured (the message names NEWSLETTER_DB)."""


class SendBusy(RuntimeError):
    """Another send is running on this store."""


def open_store(url_or_path: str | Path, recover: bool = True) -> "Store":
    """A store for NEWSLETTER_DB: a SQLite file path (or sqlite:///path), or a postgresql:// URL.
    recover=False: another process of this service opened it first, and finished any erasure left behind."""
    target = str(url_or_path)
    if target.startswith(("postgresql://", "postgres://")):
        from .pgstore import PostgresStore  # psycopg is loaded only by who uses it
        return PostgresStore(target, recover)
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///"):]
    elif "://" in target:
        raise StoreError(f"NEWSLETTER_DB : schéma non reconnu ({target.split('://')[0]}://) ; "
                         "attendu : un chemin de fichier SQLite ou une URL postgresql://")
    return SQLiteStore(Path(target), recover)


class SQLiteStore(Erasures):
    """One connection shared by the threads of a process, behind a lock; other
    processes (the sender, the commands) wait on SQLite's busy timeout."""

    RETRIED = (apsw.Error,)  # a full disk during VACUUM, say

    def __init__(self, path: Path, recover: bool = True):
        """recover: finish the erasure of a process that died before its VACUUM. Not when another process of
        the service has the file open: it did that, and its own writes leave the WAL non-empty."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Readable by the owner only; SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            self._db = apsw.Connection(str(path))
            self._db.setbusytimeout(BUSY_TIMEOUT_MS)
        except (OSError, apsw.Error) as exc:
            raise StoreError(f"NEWSLETTER_DB : impossible d’ouvrir {path} : {exc}") from None
        self._lock = threading.Lock()        # the connection: one statement at a time
        self._init_erasures()
        self._vacuumed = 0                    # erasures vacuumed (their WAL not emptied yet, maybe)
        self._wal_held = False                # the last checkpoint found a reader on an older snapshot
        try:
            with self._lock:
                # Before anything is written: overwrite deleted content, fsync each commit, readers don't
                # block writers, VACUUM's working copy in memory.
                self._db.execute("PRAGMA secure_delete = ON")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
                self._db.execute("PRAGMA temp_store = MEMORY")
                self._db.execute("PRAGMA foreign_keys = ON")  # a subscriber deleted takes its memberships along
                self._migrate()
                leftover_wal = self._wal_size() > 0
        except apsw.Error as exc:
            self._db.close()
            raise StoreError(f"NEWSLETTER_DB : {path} n’est pas une base utilisable : {exc}") from None
        if leftover_wal and recover:
            # A process may have died between an erasure and its VACUUM: finish it now.
            self._deleted += 1
            if not self._scrub(self._deleted):
                self._finish_in_background()

    def _migrate(self) -> None:
        # Which columns the subscribers table has, if it exists.
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(subscribers)")]
        if columns == ["email"]:
            with self._db:
                self._db.execute(MIGRATE_FROM_V1)
            self._deleted += 1  # the old table's pages are free space now: VACUUM them away
        # Whether the store predates lists (then its readers are all on the whole blog).
        before_lists = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'memberships'").fetchone() is None
        with self._db:
            self._db.execute(SCHEMA)
            if before_lists:
                self._db.execute(MIGRATE_TO_LISTS)

    def _wal_size(self) -> int:
        try:
            return self.path.with_name(self.path.name + "-wal").stat().st_size
        except FileNotFoundError:
            return 0

    # -- subscribers -------------------------------------------------------

    def add(self, email: str, lists: Iterable[str] = (WHOLE_BLOG,)) -> bool:
        """Store a confirmed address on `lists`; True if anything was new (the address, or one of the lists)."""
        with self._lock, self._db:
            return self._add(email, lists)

    def _add(self, email: str, lists: Iterable[str]) -> bool:
        """add() inside the caller's transaction, the lock held."""
        # Idempotent: a second confirmation changes nothing.
        self._db.execute("INSERT INTO subscribers (email) VALUES (?) ON CONFLICT (email) DO NOTHING", (email,))
        new = self._db.changes() == 1
        for key in lists:
            # The membership, by the address's id (NOCASE, like the key); a second one changes nothing.
            self._db.execute("INSERT INTO memberships (subscriber_id, list) "
                             "SELECT id, ? FROM subscribers WHERE email = ? ON CONFLICT DO NOTHING", (key, email))
            new = self._db.changes() == 1 or new
        return new

    def add_many(self, emails: Iterable[str], lists: Iterable[str] = (WHOLE_BLOG,)) -> tuple[list[str], list[str]]:
        """Add addresses to `lists` in one transaction (all or nothing); returns (added, already there):
        an address counts as added when it joined at least one of the lists."""
        added, present = [], []
        lists = list(lists)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for email in emails:
                    # The same idempotent inserts as add(), inside the import's transaction.
                    (added if self._add(email, lists) else present).append(email)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added, present

    def confirm_many(self, emails: Sequence[str], lists: Iterable[str] = (WHOLE_BLOG,)) -> list[list[str] | None]:
        """The confirmations gathered by groupcommit.py, in one transaction (all or nothing): for each address
        in order, every list it is now on if it joined one (its welcome mail names them), else None (on
        them all already, or earlier in `emails`). Three statements whatever the number of addresses: the
        service's thread holds the GIL a few times a batch, not five times a reader."""
        lists = sorted(set(lists))
        addresses = json.dumps(list(emails))
        now_on: dict[bytes, list[str]] = {}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # The new addresses (the first spelling of each); an address already there is not returned.
                new = dict(self._db.execute("INSERT INTO subscribers (email) SELECT value FROM json_each(?) WHERE true "
                                            "ON CONFLICT (email) DO NOTHING RETURNING id, email", (addresses,)))
                # Every membership new to its reader, the readers found by address (NOCASE, the column's).
                joined = {row[0] for row in self._db.execute(
                    "INSERT INTO memberships (subscriber_id, list) SELECT s.id, l.value FROM json_each(?) e "
                    "JOIN subscribers s ON s.email = e.value JOIN json_each(?) l WHERE true "
                    "ON CONFLICT DO NOTHING RETURNING subscriber_id", (addresses, json.dumps(lists)))}
                now_on = {_nocase(email): list(lists) for email in new.values()}  # each reader its own list
                if older := [reader for reader in joined if reader not in new]:
                    # Readers already there who joined a list: all their lists, as lists_of() gives them.
                    for email, key in self._db.execute(
                            "SELECT s.email, m.list FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id "
                            "WHERE s.id IN (SELECT value FROM json_each(?)) ORDER BY s.id, m.list",
                            (json.dumps(older),)):
                        now_on.setdefault(_nocase(email), []).append(key)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [now_on.pop(_nocase(email), None) for email in emails]

    def remove(self, email: str, wait: float = ERASE_WAIT) -> Erasure:
        """Take an address off every list at once, then erase its bytes from disk, waiting up to `wait`
        seconds for readers of the store to let go of the WAL; past that, a background thread finishes."""
        with self._lock:
            # secure_delete zeroes the row's cells in the table and its index; its memberships go by cascade.
            self._db.execute("DELETE FROM subscribers WHERE email = ?", (email,))
            if self._db.changes() == 0:
                return Erasure.ABSENT
            self._deleted += 1
            mine = self._deleted
        return self._erase(mine, wait)

    def leave(self, email: str, lists: Iterable[str], wait: float = ERASE_WAIT) -> Erasure:
        """Take an address off some of its lists, erased on disk like an address (the pair (id, list) says
        what the reader reads); off its last list, the address itself is erased. ABSENT if it was on none."""
        gone = 0
        with self._lock, self._db:
            for key in lists:
                # One membership, found by the address (NOCASE).
                self._db.execute("DELETE FROM memberships WHERE list = ? AND subscriber_id IN "
                                 "(SELECT id FROM subscribers WHERE email = ?)", (key, email))
                gone += self._db.changes()
            # The address, once it is on no list.
            self._db.execute("DELETE FROM subscribers WHERE email = ? AND NOT EXISTS "
                             "(SELECT 1 FROM memberships WHERE subscriber_id = subscribers.id)", (email,))
            gone += self._db.changes()
            if not gone:
                return Erasure.ABSENT
            self._deleted += 1
            mine = self._deleted
        return self._erase(mine, wait)

    def _scrub(self, upto: int) -> bool:
        """One pass, never waiting on another process: VACUUM the erasures not yet vacuumed (no old copy
        survives in free space), then empty the WAL. True once erasure `upto` is gone from every file."""
        with self._scrub_lock:
            if self._erased >= upto:
                return True
            if self._wal_held:
                # Copies from the last VACUUM are waiting for a reader: don't add another whole copy of the
                # database to the WAL until that reader has let go.
                if not self._truncate_wal():
                    return False
                self._wal_held = False
                self._erased = self._vacuumed
                if self._erased >= upto:
                    return True
            with self._lock:
                covered = self._deleted
                # Rewrite every page from the live rows only.
                self._db.execute("VACUUM")
            self._vacuumed = covered
            if not self._truncate_wal():
                self._wal_held = True
                return False
            self._erased = covered
            return True

    def _truncate_wal(self) -> bool:
        """Copy the WAL into the database and cut it to 0 bytes; False if a reader still needs it."""
        with self._lock:
            self._db.setbusytimeout(0)
            try:
                # busy = 1 when a reader on an older snapshot keeps the WAL from being reset.
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except apsw.BusyError:
                busy = 1  # another connection is checkpointing or writing: try again later
            finally:
                self._db.setbusytimeout(BUSY_TIMEOUT_MS)
        return busy == 0

    def __contains__(self, email: object) -> bool:
        with self._lock:
            # Membership, case-insensitive like the key.
            row = self._db.execute("SELECT 1 FROM subscribers WHERE email = ?", (email,)).fetchone()
        return row is not None

    def receives(self, email: str, lists: Iterable[str]) -> bool:
        """Whether the address is still on one of `lists` (the sender asks just before each mail)."""
        lists = list(lists)
        if not lists:
            return False
        with self._lock:
            # One probe of the memberships key per list.
            row = self._db.execute(
                "SELECT 1 FROM subscribers s WHERE s.email = ? AND EXISTS (SELECT 1 FROM memberships m "
                f"WHERE m.subscriber_id = s.id AND m.list IN ({', '.join('?' * len(lists))}))",
                (email, *lists)).fetchone()
        return row is not None

    def lists_of(self, email: str) -> list[str]:
        """The lists an address is on, sorted ('' first: the whole blog); [] if it is not subscribed."""
        with self._lock:
            # Through the address's id (NOCASE).
            rows = self._db.execute("SELECT m.list FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id "
                                    "WHERE s.email = ? ORDER BY m.list", (email,)).fetchall()
        return [r[0] for r in rows]

    def count(self) -> int:
        with self._lock:
            # How many readers.
            return self._db.execute("SELECT count(*) FROM subscribers").fetchone()[0]

    def emails(self, list_key: str | None = None) -> Iterator[str]:
        """Every address, or those on one list, sorted (for export)."""
        with self._lock:
            # Fetched at once: the lock is not held while the caller iterates.
            if list_key is None:
                rows = self._db.execute("SELECT email FROM subscribers ORDER BY email").fetchall()
            else:
                rows = self._db.execute("SELECT s.email FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id "
                                        "WHERE m.list = ? ORDER BY s.email", (list_key,)).fetchall()
        return iter([r[0] for r in rows])

    def memberships(self) -> list[tuple[str, list[str]]]:
        """Every address with its lists, sorted by address (the export of every list)."""
        with self._lock:
            # One row per (address, list), grouped here: plain SQL on both backends.
            rows = self._db.execute("SELECT s.email, m.list FROM subscribers s JOIN memberships m "
                                    "ON m.subscriber_id = s.id ORDER BY s.email, m.list").fetchall()
        return by_address(rows)

    def subscribers_after(self, position: int, limit: int, upto: int | None = None,
                          lists: Iterable[str] | None = None) -> list[tuple[int, str]]:
        """The next `limit` subscribers after `position`, as (position, email), in position order: none past
        `upto` when given (the end of a send range); every subscriber, or those on at least one of `lists`
        (each address once, however many of them it is on)."""
        where, params = ["s.id > ?"], [position]
        if upto is not None:
            where.append("s.id <= ?")
            params.append(upto)
        if lists is not None:
            lists = list(lists)
            if not lists:
                return []
            where.append("EXISTS (SELECT 1 FROM memberships m WHERE m.subscriber_id = s.id "
                         f"AND m.list IN ({', '.join('?' * len(lists))}))")
            params += lists
        with self._lock:
            # Keyset pagination on id: resumable from a checkpoint, unaffected by removals; an EXISTS on the
            # lists, so an address on several of them comes once.
            return self._db.execute(
                f"SELECT s.id, s.email FROM subscribers s WHERE {' AND '.join(where)} ORDER BY s.id LIMIT ?",
                (*params, limit)).fetchall()

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

    def send_ranges(self, post_id: str) -> list[tuple[int, int | None, int]]:
        """A started send's ranges, as (lo, hi, position reached), in id order; [] if none were stored."""
        with self._lock:
            # One row per range, a handful per post.
            return self._db.execute(
                "SELECT lo, hi, position FROM send_ranges WHERE post_id = ? ORDER BY lo", (post_id,)).fetchall()

    def start_ranges(self, post_id: str, bounds: list[tuple[int, int | None]]) -> list[tuple[int, int | None, int]]:
        """Store a send's ranges, (lo, hi) each, all or nothing, and mark the post started; if ranges were
        stored already (a resumed send), they are kept and returned: a range is never cut twice."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Ranges already there win: they hold the checkpoints of the interrupted send.
                rows = self._db.execute(
                    "SELECT lo, hi, position FROM send_ranges WHERE post_id = ? ORDER BY lo", (post_id,)).fetchall()
                if not rows:
                    for lo, hi in bounds:
                        # A range starts at its lower bound: nothing in it mailed yet.
                        self._db.execute(
                            "INSERT INTO send_ranges (post_id, lo, hi, position) VALUES (?, ?, ?, ?)",
                            (post_id, lo, hi, lo))
                    # The post's row says the send started (send_position, send_states); its position stays
                    # where the ranges begin.
                    self._db.execute(
                        "INSERT INTO sends (post_id, position) VALUES (?, ?) ON CONFLICT (post_id) DO NOTHING",
                        (post_id, bounds[0][0]))
                    rows = [(lo, hi, lo) for lo, hi in bounds]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return rows

    def save_range_position(self, post_id: str, lo: int, position: int) -> None:
        """Record one range's progress (committed before returning)."""
        with self._lock:
            # One small row rewritten per message.
            self._db.execute("UPDATE send_ranges SET position = ? WHERE post_id = ? AND lo = ?",
                             (position, post_id, lo))

    def mark_sent(self, post_id: str) -> None:
        """The post went to everybody: never send it again."""
        with self._lock:
            # Upsert, keeping the last position.
            self._db.execute(
                "INSERT INTO sends (post_id, done) VALUES (?, 1) "
                "ON CONFLICT (post_id) DO UPDATE SET done = 1",
                (post_id,))
            # Its ranges are of no more use (if killed before this, is_sent already says done).
            self._db.execute("DELETE FROM send_ranges WHERE post_id = ?", (post_id,))

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

    # -- copying a whole store (make migrate-store) ------------------------

    def high_water(self) -> int:
        """The highest id ever handed out (0: none), so a copy never hands it out again."""
        with self._lock:
            # AUTOINCREMENT's counter: the largest id ever used, deleted or not.
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'subscribers'").fetchone()
        return row[0] if row else 0

    def membership_rows(self) -> list[tuple[int, str]]:
        """Every (subscriber id, list) pair, for a copy of the whole store."""
        with self._lock:
            # The table as it is.
            return self._db.execute("SELECT subscriber_id, list FROM memberships ORDER BY subscriber_id").fetchall()

    def load_copy(self, high_water: int, subscribers: Iterable[tuple[int, str]],
                  sends: dict[str, tuple[int, bool]], memberships: Iterable[tuple[int, str]] = (),
                  ranges: dict[str, list[tuple[int, int | None, int]]] | None = None) -> int:
        """Fill an empty store with another's rows, ids kept, in one transaction; StoreError if not empty."""
        count = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Checked inside the transaction: nobody adds a row meanwhile.
                if self._db.execute("SELECT EXISTS (SELECT 1 FROM subscribers) OR EXISTS (SELECT 1 FROM sends)"
                                    ).fetchone()[0]:
                    raise StoreError(f"{self.path} n’est pas vide (not empty) : rien n’a été copié")
                for row in subscribers:
                    # The id kept: a send in progress resumes at the same place.
                    self._db.execute("INSERT INTO subscribers (id, email) VALUES (?, ?)", row)
                    count += 1
                for post_id, (position, done) in sends.items():
                    # The send state as it was.
                    self._db.execute("INSERT INTO sends (post_id, position, done) VALUES (?, ?, ?)",
                                     (post_id, position, int(done)))
                for row in memberships:
                    # The lists each reader chose.
                    self._db.execute("INSERT INTO memberships (subscriber_id, list) VALUES (?, ?)", row)
                for post_id, rows in (ranges or {}).items():
                    for lo, hi, position in rows:
                        # A parallel send's checkpoints as they were.
                        self._db.execute("INSERT INTO send_ranges (post_id, lo, hi, position) VALUES (?, ?, ?, ?)",
                                         (post_id, lo, hi, position))
                # AUTOINCREMENT goes on after the source's highest id, used or deleted.
                # (sqlite_sequence has no key: update the row the inserts made, or add it.)
                self._db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'subscribers'",
                                 (high_water,))
                if self._db.changes() == 0 and high_water:
                    self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('subscribers', ?)",
                                     (high_water,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return count

    def close(self) -> None:
        """Close, after a last bounded try at any erasure still pending (the next open finishes it otherwise)."""
        self._close_erasures()
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Store = SQLiteStore
