"""The subscriber store on PostgreSQL (NEWSLETTER_DB=postgresql://…): the same methods as SQLiteStore.

All SQL of this backend lives here, one comment per query; the errors and the Erasure answer are
store.py's. Several processes (service instances, the sender, the commands) share one database.

Privacy: the same two tables, the address and nothing else. PostgreSQL never overwrites in place:
a DELETE leaves the row as a dead tuple, and VACUUM, which prunes it, compacts the page without
zeroing the freed space (nor the index's), so a plain VACUUM can leave the address's bytes on disk
(measured: the last row of a page, and the index, kept them). Both tables are cut into PARTITIONS
partitions (subscribers by key, memberships by reader id), and an erasure works on the partitions that
held the reader's rows, as its DELETEs report them:
1. DELETE of the reader, then of its memberships (its statistics flushed at once, see 2);
2. VACUUM of those partitions, which removes every dead tuple no open snapshot can still see and
   reports the count of those it had to keep (pg_stat_get_dead_tuples, set by VACUUM itself in shared
   memory since PostgreSQL 15). Not 0: an older snapshot (a REPEATABLE READ reader, a pg_dump) still
   sees the row: PENDING, retried in a background thread without blocking anyone;
3. VACUUM FULL of those partitions: each, with its indexes, rewritten into new files from its live rows
   only; the old files are truncated to 0 bytes at commit. It needs a moment's exclusive lock on those
   partitions only: a short lock_timeout, and PENDING again if a transaction holds one.
One table rewritten whole took 180 ms at 100,000 readers and grew with the list, all of it locked
meanwhile; a partition is 1/64 of it (bench/pg_erasure_bench.py). Autovacuum is off for the partitions
(step 2 vacuums; inserts alone need none): its ANALYZE would overwrite the dead-tuple count with an
estimate. What the server keeps elsewhere (WAL, backups, replicas, logs) is in the README and the
privacy page.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from .erasures import ERASE_WAIT, Erasure, Erasures
from .store import WHOLE_BLOG, SendBusy, StoreError, by_address


SCHEMA_LOCK, SEND_LOCK = 7_206_341_001, 7_206_341_002  # advisory lock keys, per database
CONNECT_TIMEOUT = 10  # seconds

# Case-insensitive like SQLite's NOCASE, exactly: under the "C" collation lower() folds ASCII only. The
# key is a column of its own (filled with KEY_OF at each insert): a partitioned table's unique key must be
# made of columns, not of an expression. KEY_OF is the key of the query's %s parameter; %-formatted with
# a column's name, of that column.
KEY_OF = 'lower(%s COLLATE "C")'
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # KEY_OF, in Python

# An erasure rewrites the partitions that held the address (see the module's docstring): 1/PARTITIONS of
# each table. Fixed at the store's creation.
PARTITIONS = 64


def _partitions(table: str) -> str:
    return "".join(f"CREATE TABLE IF NOT EXISTS {table}_{n:02d} PARTITION OF {table} FOR VALUES WITH "
                   f"(MODULUS {PARTITIONS}, REMAINDER {n}) WITH (autovacuum_enabled = off);\n"
                   for n in range(PARTITIONS))


SCHEMA = f"""
-- One row = one confirmed address, and its key (the address, ASCII letters lower-cased: Jean@x.fr and
-- jean@x.fr are one reader); id orders the sender's walk and is never handed out twice. Cut into
-- partitions by key: an erasure rewrites one of them, not the table.
CREATE TABLE IF NOT EXISTS subscribers (
    id bigint GENERATED ALWAYS AS IDENTITY,
    email text NOT NULL,
    key text COLLATE "C" NOT NULL,
    PRIMARY KEY (key)
) PARTITION BY HASH (key);
{_partitions("subscribers")}
CREATE INDEX IF NOT EXISTS subscribers_id ON subscribers (id);
-- The sender's progress, per post: last id mailed, and whether the post is done.
CREATE TABLE IF NOT EXISTS sends (
    post_id text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    done boolean NOT NULL DEFAULT false
);
-- A send shared between connections: the subscriber ids after sends.position cut into ranges
-- (lo excluded, hi included, NULL: no end), each with its own checkpoint. By post, never by person.
CREATE TABLE IF NOT EXISTS send_ranges (
    post_id text NOT NULL,
    lo bigint NOT NULL,
    hi bigint,
    position bigint NOT NULL,
    PRIMARY KEY (post_id, lo)
);
-- Which lists a subscriber is on: '' the whole blog, else a rubrique's slug. No date, no status. A
-- partitioned table cannot be referenced by subscriber id: the store deletes a reader's memberships
-- with the reader, and an insert holds the reader's row (FOR KEY SHARE) as a foreign key would.
CREATE TABLE IF NOT EXISTS memberships (
    subscriber_id bigint NOT NULL,
    list text NOT NULL,
    PRIMARY KEY (subscriber_id, list)
) PARTITION BY HASH (subscriber_id);
{_partitions("memberships")}
"""

# A store of before partitions (one table each, the key an index on lower(email)), or before lists
# (no memberships: every reader on the whole blog): its rows are set aside, its tables dropped (their
# files deleted), and put back into SCHEMA's, ids and the identity's next value kept.
SET_ASIDE = """
CREATE TEMP TABLE old_subscribers ON COMMIT DROP AS SELECT id, email FROM subscribers;
CREATE TEMP TABLE old_high_water ON COMMIT DROP AS
    SELECT pg_sequence_last_value(pg_get_serial_sequence('subscribers', 'id')::regclass) AS last;
"""
PUT_BACK = f"""
INSERT INTO subscribers (id, email, key) OVERRIDING SYSTEM VALUE
    SELECT id, email, {KEY_OF % "email"} FROM old_subscribers;
SELECT setval(pg_get_serial_sequence('subscribers', 'id'), greatest(last, (SELECT max(id) FROM subscribers)))
    FROM old_high_water WHERE greatest(last, (SELECT max(id) FROM subscribers)) IS NOT NULL;
"""

# A store made before lists: every reader subscribed to the whole blog (run once, with the table's creation).
MIGRATE_TO_LISTS = "INSERT INTO memberships (subscriber_id, list) SELECT id, '' FROM subscribers"

# The partitions an erasure may have left dead tuples in (the address; the (id, list) pairs that say what
# a reader reads), as VACUUM last counted them.
DEAD_PARTITIONS = ("SELECT i.inhrelid::regclass::text FROM pg_inherits i WHERE i.inhparent IN "
                   "('subscribers'::regclass, 'memberships'::regclass) AND pg_stat_get_dead_tuples(i.inhrelid) > 0")


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    params.pop("password", None)
    return "postgresql://{}@{}:{}/{}".format(params.get("user", ""), params.get("host", ""),
                                             params.get("port", "5432"), params.get("dbname", ""))


def _unusable(shown: str, exc: Exception) -> StoreError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(f"NEWSLETTER_DB : impossible d’utiliser la base PostgreSQL {shown} "
                      f"(cannot use it) : {reason}")


class PostgresStore(Erasures):
    """A pool of autocommit connections shared by the threads of a process; the database itself
    arbitrates between processes."""

    RETRIED = (psycopg.Error,)  # the server restarting, say

    def __init__(self, url: str, recover: bool = True):
        """recover: finish the erasure of a process that died between a DELETE and its VACUUM (see
        SQLiteStore). Not when another process of the service opened the database first: it did that."""
        self.path = _shown(url)  # what messages name, as SQLiteStore.path (never the password)
        conninfo = make_conninfo(url, connect_timeout=CONNECT_TIMEOUT, application_name="newsletter")
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                # The erasure check reads the dead-tuple count as VACUUM sets it in shared memory (15 and later).
                if conn.info.server_version < 150000:
                    raise StoreError(f"NEWSLETTER_DB : {self.path} : PostgreSQL {conn.info.server_version // 10000} ; "
                                     "la lettre demande PostgreSQL 15 ou plus récent (15 or later)")
                with conn.transaction():
                    # Two instances starting at once: one creates the schema, the other waits, then finds it.
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    # Whether the store predates lists (then its readers are all on the whole blog).
                    before_lists = conn.execute("SELECT to_regclass('memberships') IS NULL").fetchone()[0]
                    # Whether it predates partitions: a plain table of subscribers.
                    flat = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('subscribers') "
                                        "AND relkind = 'r')").fetchone()[0]
                    if flat:
                        conn.execute(SET_ASIDE)
                        if not before_lists:
                            conn.execute("CREATE TEMP TABLE old_memberships ON COMMIT DROP AS "
                                         "SELECT subscriber_id, list FROM memberships; DROP TABLE memberships")
                        conn.execute("DROP TABLE subscribers")
                    conn.execute(SCHEMA)
                    if flat:
                        conn.execute(PUT_BACK)
                        if not before_lists:
                            conn.execute("INSERT INTO memberships SELECT subscriber_id, list FROM old_memberships")
                    if before_lists:
                        conn.execute(MIGRATE_TO_LISTS)
                # The erasure check reads the dead-tuple count: it must be kept.
                if conn.execute("SHOW track_counts").fetchone()[0] != "on":
                    raise StoreError(f"NEWSLETTER_DB : {self.path} : track_counts = off ; "
                                     "l’effacement a besoin de track_counts = on (postgresql.conf)")
                # Left by a process that died between a DELETE and its VACUUM: the partitions it touched.
                leftover = [partition for partition, in conn.execute(DEAD_PARTITIONS)]
        except psycopg.Error as exc:
            raise _unusable(self.path, exc) from None
        self._conninfo = conninfo
        self._pool = ConnectionPool(conninfo, min_size=1, max_size=8, kwargs={"autocommit": True},
                                    open=True, name="newsletter-store")
        self._lock = threading.Lock()        # this process's DELETEs wait while it vacuums
        self._init_erasures()
        self._dirty: set[str] = set()        # partitions of erasures not yet scrubbed (under self._lock)
        self._checkpoints: psycopg.Connection | None = None  # fast_checkpoints()'s connection
        if leftover and recover:
            self._dirty.update(leftover)
            self._deleted += 1
            if not self._scrub(self._deleted):
                self._finish_in_background()

    # -- subscribers -------------------------------------------------------

    def add(self, email: str, lists: Iterable[str] = (WHOLE_BLOG,)) -> bool:
        """Store a confirmed address on `lists`; True if anything was new (the address, or one of the lists)."""
        with self._pool.connection() as conn, conn.transaction():
            return _add(conn, email, lists)

    def add_many(self, emails: Iterable[str], lists: Iterable[str] = (WHOLE_BLOG,)) -> tuple[list[str], list[str]]:
        """Add addresses to `lists` in one transaction (all or nothing); returns (added, already there):
        an address counts as added when it joined at least one of the lists."""
        added, present, lists = [], [], list(lists)
        with self._pool.connection() as conn, conn.transaction():
            for email in emails:
                (added if _add(conn, email, lists) else present).append(email)
        return added, present

    def confirm_many(self, emails: Sequence[str], lists: Iterable[str] = (WHOLE_BLOG,)) -> list[list[str] | None]:
        """The confirmations gathered by groupcommit.py, in one transaction: for each address in order, every
        list it is now on if it joined one, else None (SQLiteStore.confirm_many)."""
        lists = list(lists)
        with self._pool.connection() as conn, conn.transaction():
            return [_lists_of(conn, email) if _add(conn, email, lists) else None for email in emails]

    def remove(self, email: str, wait: float = ERASE_WAIT) -> Erasure:
        """Take an address off every list at once, then erase its bytes from the files of the partitions
        that held it, waiting up to `wait` seconds for older snapshots to end; past that, a background
        thread finishes."""
        with self._lock, self._pool.connection() as conn, conn.transaction():
            # Off every list; the rows stay on disk as dead tuples until the VACUUMs of _scrub. Each
            # DELETE says which partition held its rows.
            rows = conn.execute(f"DELETE FROM subscribers WHERE key = {KEY_OF} "
                                "RETURNING id, tableoid::regclass::text", (email,)).fetchall()
            if not rows:
                return Erasure.ABSENT
            self._erased_rows(conn, rows)
            mine = self._deleted
        return self._erase(mine, wait)

    def leave(self, email: str, lists: Iterable[str], wait: float = ERASE_WAIT) -> Erasure:
        """Take an address off some of its lists, erased on disk like an address (the pair (id, list) says
        what the reader reads); off its last list, the address itself is erased. ABSENT if it was on none."""
        partitions: list[tuple[str]] = []
        with self._lock, self._pool.connection() as conn, conn.transaction():
            for key in lists:
                # One membership, found by the address (case-insensitive key).
                partitions += conn.execute("DELETE FROM memberships WHERE list = %s AND subscriber_id IN (SELECT id "
                                           f"FROM subscribers WHERE key = {KEY_OF}) "
                                           "RETURNING tableoid::regclass::text", (key, email)).fetchall()
            # The address, once it is on no list.
            rows = conn.execute(f"DELETE FROM subscribers WHERE key = {KEY_OF} AND NOT EXISTS "
                                "(SELECT 1 FROM memberships WHERE subscriber_id = subscribers.id) "
                                "RETURNING id, tableoid::regclass::text", (email,)).fetchall()
            if not partitions and not rows:
                return Erasure.ABSENT
            self._dirty.update(partition for partition, in partitions)
            self._erased_rows(conn, rows)
            mine = self._deleted
        return self._erase(mine, wait)

    def _erased_rows(self, conn, readers: list[tuple[int, str]]) -> None:
        """After the DELETE of `readers` (id, partition): their memberships deleted too (as a foreign key's
        cascade would), every partition they were in marked for _scrub, and one erasure counted."""
        for reader, partition in readers:
            self._dirty.add(partition)
            # Every list of the reader, by its id; a confirmation that was adding one held the reader's row
            # (_add: FOR KEY SHARE), so its membership is committed and found here.
            self._dirty.update(p for p, in conn.execute("DELETE FROM memberships WHERE subscriber_id = %s "
                                                        "RETURNING tableoid::regclass::text", (reader,)))
        # Count the dead tuples in the shared statistics at commit, before our VACUUM reads them.
        conn.execute("SELECT pg_stat_force_next_flush()")
        self._deleted += 1

    def _scrub(self, upto: int) -> bool:
        """One pass, waiting on nobody for long: True once erasure `upto` is in no file of the partitions
        it touched, nor of their indexes. Erasures counted before the pass share it (group commit)."""
        with self._scrub_lock:
            if self._erased >= upto:
                return True
            with self._lock, self._pool.connection() as conn:
                covered, partitions = self._deleted, sorted(self._dirty)
                dirty = ", ".join(partitions)
                if dirty:
                    # Prune every dead tuple no snapshot can see any more (VACUUM cannot run in a transaction).
                    conn.execute(f"VACUUM {dirty}")
                    # Those it had to keep, as VACUUM itself just counted them: an older snapshot still sees them.
                    if conn.execute("SELECT " + " + ".join(f"pg_stat_get_dead_tuples('{p}'::regclass)"
                                                           for p in partitions)).fetchone()[0]:
                        return False
                    try:
                        # Wait at most a moment for the exclusive lock: readers and signups of these
                        # partitions queue behind it.
                        conn.execute("SET lock_timeout = '100ms'")
                        # New files from the live rows: no stale copy in a page's free space or an index.
                        conn.execute(f"VACUUM FULL {dirty}")
                    except errors.LockNotAvailable:
                        return False  # a transaction holds one of them: try again later
                    finally:
                        conn.execute("RESET lock_timeout")
                    self._dirty.clear()  # none added meanwhile: DELETEs wait for self._lock
            self._erased = covered
            return True

    def __contains__(self, email: object) -> bool:
        with self._pool.connection() as conn:
            # Membership, case-insensitive like the key (and through its index).
            row = conn.execute(f"SELECT 1 FROM subscribers WHERE key = {KEY_OF}",
                               (email,)).fetchone()
        return row is not None

    def count(self) -> int:
        with self._pool.connection() as conn:
            # How many readers.
            return conn.execute("SELECT count(*) FROM subscribers").fetchone()[0]

    def receives(self, email: str, lists: Iterable[str]) -> bool:
        """Whether the address is still on one of `lists` (the sender asks just before each mail)."""
        lists = list(lists)
        if not lists:
            return False
        with self._pool.connection() as conn:
            # One probe of the memberships key, through the address's index.
            row = conn.execute(f"SELECT 1 FROM subscribers s WHERE s.key = {KEY_OF} AND EXISTS "
                               "(SELECT 1 FROM memberships m WHERE m.subscriber_id = s.id AND m.list = ANY(%s))",
                               (email, lists)).fetchone()
        return row is not None

    def lists_of(self, email: str) -> list[str]:
        """The lists an address is on, sorted ('' first: the whole blog); [] if it is not subscribed."""
        with self._pool.connection() as conn:
            return _lists_of(conn, email)

    def emails(self, list_key: str | None = None) -> Iterator[str]:
        """Every address, or those on one list, sorted (for export) as SQLite's NOCASE sorts them."""
        with self._pool.connection() as conn:
            # Fetched at once: no connection is held while the caller iterates.
            if list_key is None:
                rows = conn.execute("SELECT email FROM subscribers ORDER BY key").fetchall()
            else:
                rows = conn.execute("SELECT s.email FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id "
                                    "WHERE m.list = %s ORDER BY s.key", (list_key,)).fetchall()
        return iter([r[0] for r in rows])

    def memberships(self) -> list[tuple[str, list[str]]]:
        """Every address with its lists, sorted by address (the export of every list)."""
        with self._pool.connection() as conn:
            # One row per (address, list), grouped here.
            rows = conn.execute("SELECT s.email, m.list FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id "
                                "ORDER BY s.key, s.id, m.list COLLATE \"C\"").fetchall()
        return by_address(rows)

    def subscribers_after(self, position: int, limit: int, upto: int | None = None,
                          lists: Iterable[str] | None = None) -> list[tuple[int, str]]:
        """The next `limit` subscribers after `position`, as (position, email), in position order: none past
        `upto` when given (the end of a send range); every subscriber, or those on at least one of `lists`
        (each address once, however many of them it is on)."""
        where, params = ["s.id > %s"], [position]
        if upto is not None:
            where.append("s.id <= %s")
            params.append(upto)
        if lists is not None:
            lists = list(lists)
            if not lists:
                return []
            where.append("EXISTS (SELECT 1 FROM memberships m WHERE m.subscriber_id = s.id AND m.list = ANY(%s))")
            params.append(lists)
        with self._pool.connection() as conn:
            # Keyset pagination on id: resumable from a checkpoint, unaffected by removals; an EXISTS on the
            # lists, so an address on several of them comes once.
            return conn.execute(f"SELECT s.id, s.email FROM subscribers s WHERE {' AND '.join(where)} "
                                "ORDER BY s.id LIMIT %s", (*params, limit)).fetchall()

    # -- sends, keyed by post --------------------------------------------

    def send_position(self, post_id: str) -> int | None:
        """The sender's checkpoint for a post; None if it never started."""
        with self._pool.connection() as conn:
            # One row per post started.
            row = conn.execute("SELECT position FROM sends WHERE post_id = %s", (post_id,)).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def fast_checkpoints(self):
        """While a send runs: checkpoints committed without waiting for the WAL flush (synchronous_commit
        = off), on one connection kept for them. A killed sender loses none; a crash of the server may lose
        the last ones (at most wal_writer_delay × 3), whose readers then get the post twice."""
        conn = self._pool.getconn()
        try:
            # For this connection only, until the send ends.
            conn.execute("SET synchronous_commit = off")
            self._checkpoints = conn
            yield
        finally:
            self._checkpoints = None
            try:
                conn.execute("RESET synchronous_commit")
            except psycopg.Error:
                pass  # a broken connection: the pool drops it
            self._pool.putconn(conn)

    @contextmanager
    def sending(self):
        """The one send allowed at a time on this database, or SendBusy at once.

        A session advisory lock on a connection of its own, held for the whole send: the server releases
        it when that connection ends, however the process ends, so a killed sender never leaves it behind."""
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise _unusable(self.path, exc) from None
        try:
            # Not waiting: a second sender is told at once.
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (SEND_LOCK,)).fetchone()[0]:
                raise SendBusy(f"another make send is running on {self.path}: wait for it to finish "
                               "(or stop it), then run this command again")
            try:
                yield
            finally:
                # Released now, not when the server gets round to ending the session: a send started
                # right after this one ends must not find the lock still held.
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (SEND_LOCK,))
                except psycopg.Error:
                    pass  # a broken connection: its session ends, and the lock with it
        finally:
            conn.close()  # ends the session, and with it the lock

    def save_send_position(self, post_id: str, position: int) -> None:
        """Record progress (committed before returning)."""
        with self._pool.connection() if self._checkpoints is None else _borrowed(self._checkpoints) as conn:
            # Upsert: the first save creates the post's row.
            conn.execute("INSERT INTO sends (post_id, position) VALUES (%s, %s) "
                         "ON CONFLICT (post_id) DO UPDATE SET position = excluded.position", (post_id, position))

    def send_ranges(self, post_id: str) -> list[tuple[int, int | None, int]]:
        """A started send's ranges, as (lo, hi, position reached), in id order; [] if none were stored."""
        with self._pool.connection() as conn:
            # One row per range, a handful per post.
            return conn.execute("SELECT lo, hi, position FROM send_ranges WHERE post_id = %s ORDER BY lo",
                                (post_id,)).fetchall()

    def start_ranges(self, post_id: str, bounds: list[tuple[int, int | None]]) -> list[tuple[int, int | None, int]]:
        """Store a send's ranges, (lo, hi) each, all or nothing, and mark the post started; if ranges were
        stored already (a resumed send), they are kept and returned: a range is never cut twice."""
        with self._pool.connection() as conn, conn.transaction():
            # One sender at a time holds sending(); the row lock only guards against a stray second caller.
            conn.execute("LOCK TABLE send_ranges IN SHARE ROW EXCLUSIVE MODE")
            # Ranges already there win: they hold the checkpoints of the interrupted send.
            rows = conn.execute("SELECT lo, hi, position FROM send_ranges WHERE post_id = %s ORDER BY lo",
                                (post_id,)).fetchall()
            if rows:
                return rows
            for lo, hi in bounds:
                # A range starts at its lower bound: nothing in it mailed yet.
                conn.execute("INSERT INTO send_ranges (post_id, lo, hi, position) VALUES (%s, %s, %s, %s)",
                             (post_id, lo, hi, lo))
            # The post's row says the send started; its position stays where the ranges begin.
            conn.execute("INSERT INTO sends (post_id, position) VALUES (%s, %s) ON CONFLICT (post_id) DO NOTHING",
                         (post_id, bounds[0][0]))
        return [(lo, hi, lo) for lo, hi in bounds]

    def save_range_position(self, post_id: str, lo: int, position: int) -> None:
        """Record one range's progress (committed before returning)."""
        with self._pool.connection() if self._checkpoints is None else _borrowed(self._checkpoints) as conn:
            # One small row rewritten per message.
            conn.execute("UPDATE send_ranges SET position = %s WHERE post_id = %s AND lo = %s",
                         (position, post_id, lo))

    def mark_sent(self, post_id: str) -> None:
        """The post went to everybody: never send it again."""
        with self._pool.connection() as conn, conn.transaction():
            # Upsert, keeping the last position.
            conn.execute("INSERT INTO sends (post_id, done) VALUES (%s, true) "
                         "ON CONFLICT (post_id) DO UPDATE SET done = true", (post_id,))
            # Its ranges are of no more use (if killed before this, is_sent already says done).
            conn.execute("DELETE FROM send_ranges WHERE post_id = %s", (post_id,))

    def is_sent(self, post_id: str) -> bool:
        with self._pool.connection() as conn:
            # Finished sends only.
            row = conn.execute("SELECT done FROM sends WHERE post_id = %s", (post_id,)).fetchone()
        return bool(row and row[0])

    def send_states(self) -> dict[str, tuple[int, bool]]:
        """Every send recorded: post id → (last position reached, finished). For `make send` without POST."""
        with self._pool.connection() as conn:
            # The whole table: one row per post (or digest) ever started.
            rows = conn.execute("SELECT post_id, position, done FROM sends").fetchall()
        return {post_id: (position, bool(done)) for post_id, position, done in rows}

    def mark_many_sent(self, post_ids: Iterable[str]) -> None:
        """Record posts as sent without mailing them (the archive, at the first `make send`), all or nothing."""
        with self._pool.connection() as conn, conn.transaction():
            for post_id in post_ids:
                # Same upsert as mark_sent(), inside one transaction.
                conn.execute("INSERT INTO sends (post_id, done) VALUES (%s, true) "
                             "ON CONFLICT (post_id) DO UPDATE SET done = true", (post_id,))

    # -- copying a whole store (make migrate-store) ------------------------

    def high_water(self) -> int:
        """The highest id ever handed out (0: none), so a copy never hands it out again."""
        with self._pool.connection() as conn:
            # The identity's sequence: NULL until it hands out its first value.
            last = conn.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence('subscribers', 'id')::regclass)"
                                ).fetchone()[0]
        return last or 0

    def membership_rows(self) -> list[tuple[int, str]]:
        """Every (subscriber id, list) pair, for a copy of the whole store."""
        with self._pool.connection() as conn:
            # The table as it is.
            return conn.execute("SELECT subscriber_id, list FROM memberships ORDER BY subscriber_id").fetchall()

    def load_copy(self, high_water: int, subscribers: Iterable[tuple[int, str]],
                  sends: dict[str, tuple[int, bool]], memberships: Iterable[tuple[int, str]] = (),
                  ranges: dict[str, list[tuple[int, int | None, int]]] | None = None) -> int:
        """Fill an empty store with another's rows, ids kept, in one transaction; StoreError if not empty."""
        count = 0
        with self._pool.connection() as conn, conn.transaction():
            # Nobody adds a row meanwhile; checked inside the transaction.
            conn.execute("LOCK TABLE subscribers, sends, send_ranges, memberships IN EXCLUSIVE MODE")
            if conn.execute("SELECT EXISTS (SELECT 1 FROM subscribers) OR EXISTS (SELECT 1 FROM sends)").fetchone()[0]:
                raise StoreError(f"{self.path} n’est pas vide (not empty) : rien n’a été copié")
            with conn.cursor() as cur, cur.copy("COPY subscribers (id, email, key) FROM STDIN") as copy:
                for reader, email in subscribers:
                    copy.write_row((reader, email, email.translate(ASCII_LOWER)))  # lower() under "C"
                    count += 1
            for post_id, (position, done) in sends.items():
                # The send state as it was.
                conn.execute("INSERT INTO sends (post_id, position, done) VALUES (%s, %s, %s)",
                             (post_id, position, done))
            with conn.cursor() as cur, cur.copy("COPY memberships (subscriber_id, list) FROM STDIN") as copy:
                for row in memberships:
                    copy.write_row(row)
            for post_id, rows in (ranges or {}).items():
                for lo, hi, position in rows:
                    # A parallel send's checkpoints as they were.
                    conn.execute("INSERT INTO send_ranges (post_id, lo, hi, position) VALUES (%s, %s, %s, %s)",
                                 (post_id, lo, hi, position))
            # The identity goes on after the source's highest id, used or deleted.
            top = conn.execute("SELECT greatest(%s, coalesce(max(id), 0)) FROM subscribers",
                               (high_water,)).fetchone()[0]
            if top:
                conn.execute("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), %s)", (top,))
        return count

    def close(self) -> None:
        """Close, after a last bounded try at any erasure still pending (the next open finishes it otherwise)."""
        self._close_erasures()
        self._pool.close()

    def __enter__(self) -> "PostgresStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _borrowed(conn):
    """A connection already held, in the shape of pool.connection()."""
    yield conn


def _lists_of(conn, email: str) -> list[str]:
    """lists_of() on the caller's connection."""
    # Through the address's id; "C" order, as SQLite sorts.
    rows = conn.execute("SELECT m.list FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id "
                        f"WHERE s.key = {KEY_OF} ORDER BY m.list COLLATE \"C\"", (email,)).fetchall()
    return [r[0] for r in rows]


def _add(conn, email: str, lists: Iterable[str]) -> bool:
    """add() inside the caller's transaction: True if the address or one of its lists was new."""
    # Idempotent: a second confirmation changes nothing (and logs no duplicate-key error).
    new = conn.execute(f"INSERT INTO subscribers (email, key) VALUES (%s, {KEY_OF}) ON CONFLICT DO NOTHING",
                       (email, email)).rowcount == 1
    for key in lists:
        # The membership, by the address's id (case-insensitive key), the reader's row held until commit
        # (an erasure waits, then deletes this membership too); a second one changes nothing.
        cur = conn.execute("INSERT INTO memberships (subscriber_id, list) SELECT id, %s FROM subscribers "
                           f"WHERE key = {KEY_OF} FOR KEY SHARE ON CONFLICT DO NOTHING", (key, email))
        new = cur.rowcount == 1 or new
    return new
