"""Erased means erased: after `remove` says ERASED, no byte of the address is in the database,
-wal or -shm files (SQLite), or in the database's folder of the cluster (PostgreSQL, tests _postgres_), even while other processes read the store; PENDING is said only while a reader
holds the WAL, and the erasure then completes by itself. Also: the SQLite linked, and the old schema."""
import random
import sqlite3
import subprocess
import sys
import threading
import time

import apsw
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from newsletter.pgstore import DEAD_PARTITIONS
from newsletter.store import Erasure, open_store
from tests.conftest import ROOT
from tests.fixtures.postgres import database_bytes, wal_bytes

# A reader in another process: the sqlite3 shell's library (Python's, 3.40), reading whole snapshots
# in short transactions until its stdin closes, like a backup or the sender paging through readers.
BUSY_READER = """
import sqlite3, sys, select
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
print("ready", flush=True)
while not select.select([sys.stdin], [], [], 0.002)[0]:  # a read every 2 ms
    db.execute("BEGIN")
    db.execute("SELECT group_concat(email) FROM subscribers").fetchall()
    db.execute("COMMIT")
"""

# A reader that opens a read transaction and keeps it until told to stop (a slow backup, an idle shell).
HOLDING_READER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN")
db.execute("SELECT count(*) FROM subscribers").fetchall()
print("holding", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print("released", flush=True)
sys.stdin.readline()
"""


def store_bytes(path) -> bytes:
    """Every file of the store, lower-cased (the key is case-insensitive; so is the scan)."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))).lower()


def start_reader(script, path, first_line):
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == first_line
    return proc


def address(rng: random.Random, n: int) -> str:
    local = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
    return f"{local}.{n}@{rng.choice(['exemple.fr', 'courriel.example', 'xn--bote-6qa.example'])}"


def test_random_sequences_leave_no_byte_of_any_removed_address(tmp_path):
    """6,000 random subscribes and unsubscribes, two processes reading the store all along: each address
    acknowledged ERASED is checked in the files at once (one in ten), and every removed address at the end."""
    path = tmp_path / "abonnes.sqlite3"
    rng = random.Random(20261203)
    store = open_store(path)
    readers = [start_reader(BUSY_READER, path, "ready") for _ in range(2)]
    subscribed: set[str] = set()
    removed: set[str] = set()
    answers = {Erasure.ERASED: 0, Erasure.PENDING: 0, Erasure.ABSENT: 0}
    try:
        for n in range(6000):
            if len(subscribed) > 50 and rng.random() < 0.45:
                email = rng.choice(sorted(subscribed))
                answer = store.remove(email.upper() if rng.random() < 0.1 else email)
                answers[answer] += 1
                assert answer is not Erasure.ABSENT
                subscribed.discard(email)
                removed.add(email)
                if answer is Erasure.ERASED and n % 10 == 0:
                    leaked = email.lower().encode() in store_bytes(path)
                    assert not leaked, f"{email} readable after ERASED"
            else:
                email = rng.choice(sorted(removed)) if removed and rng.random() < 0.1 else address(rng, n)
                store.add(email)
                subscribed.add(email)
                removed.discard(email)
    finally:
        for proc in readers:
            proc.stdin.close()
            assert proc.wait(30) == 0
            proc.stdout.close()
    assert store.wait_erased(30)
    data = store_bytes(path)
    assert len(removed) > 2000 and answers[Erasure.ERASED] > 2000
    assert [e for e in sorted(removed) if e.lower().encode() in data] == []
    assert all(e.lower().encode() in data for e in subscribed)  # the scan does see what is there
    assert sorted(store.emails(), key=str.lower) == sorted(subscribed, key=str.lower)
    store.close()


operations = st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 30)), max_size=60)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations)
def test_any_short_sequence_erases_what_it_removes(tmp_path_factory, ops):
    """Hypothesis draws sequences (and shrinks a failing one): at the end, a removed address is in no byte."""
    path = tmp_path_factory.mktemp("propriete") / "abonnes.sqlite3"
    subscribed, removed = set(), set()
    with open_store(path) as store:
        for op, k in ops:
            email = f"lecteur.{k:02d}.numero@exemple-{k % 7}.fr"
            if op == "add":
                store.add(email)
                subscribed.add(email)
                removed.discard(email)
            else:
                assert (store.remove(email) is Erasure.ERASED) == (email in subscribed)
                subscribed.discard(email)
                removed.add(email)
    data = store_bytes(path)
    assert [e for e in sorted(removed) if e.encode() in data] == []
    assert all(e.encode() in data for e in subscribed)


def test_a_reader_holding_a_snapshot_makes_it_pending_then_it_completes_by_itself(tmp_path):
    """Honest while a reader holds the WAL (the bytes are still there, and we say so), confirmations
    go on meanwhile, and the erasure completes without anyone calling again once the reader lets go."""
    path = tmp_path / "abonnes.sqlite3"
    secret = "marie.curie+lettre@radium-exemple.fr"
    store = open_store(path)
    for n in range(300):
        store.add(f"lecteur{n}@exemple.fr")
    store.add(secret)
    reader = start_reader(HOLDING_READER, path, "holding")
    try:
        started = time.monotonic()
        assert store.remove(secret, wait=0.3) is Erasure.PENDING
        assert time.monotonic() - started < 2
        assert secret not in store  # off the list at once: the sender will not mail it
        assert secret.encode() in store_bytes(path)  # not erased yet, and not claimed to be
        assert store.erasure_pending()

        slowest = 0.0
        for n in range(50):  # signups confirmed while the reader holds its snapshot
            t = time.monotonic()
            store.add(f"nouveau{n}@exemple.fr")
            slowest = max(slowest, time.monotonic() - t)
        assert slowest < 1.0, f"a confirmation waited {slowest:.2f} s behind a reader"

        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "released"
        deadline = time.monotonic() + 20
        while store.erasure_pending() and time.monotonic() < deadline:  # the store's own thread finishes it
            time.sleep(0.02)
        assert not store.erasure_pending()
        assert secret.encode() not in store_bytes(path)
        assert path.with_name(path.name + "-wal").stat().st_size == 0
    finally:
        reader.stdin.close()
        reader.wait(30)
        reader.stdout.close()
        store.close()


def test_a_pending_erasure_left_by_a_dead_process_finishes_at_next_open(tmp_path):
    path = tmp_path / "abonnes.sqlite3"
    secret = "disparu@radium-exemple.fr"
    with open_store(path) as store:
        for n in range(100):
            store.add(f"lecteur{n}@exemple.fr")
        store.add(secret)
    # A process that deletes and dies before its VACUUM: the row's copies stay in the WAL.
    script = ("import os, sys, sqlite3\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('PRAGMA secure_delete = ON')\n"
              "db.execute('DELETE FROM subscribers WHERE email = ?', (sys.argv[2],))\n"
              "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(path), secret], check=True)
    assert secret.encode() in store_bytes(path)
    with open_store(path) as store:
        assert secret not in store
    assert secret.encode() not in store_bytes(path)


def test_the_store_links_sqlite_with_the_wal_reset_fix(tmp_path):
    """SQLite 3.51.3 fixed a WAL-reset corruption with concurrent writers and checkpoints."""
    with open_store(tmp_path / "abonnes.sqlite3") as store:
        version = store._db.execute("SELECT sqlite_version()").fetchone()[0]
    assert tuple(map(int, version.split("."))) >= (3, 51, 3)
    assert version == apsw.sqlite_lib_version()


def test_a_store_made_before_ids_keeps_its_readers_and_send_positions(tmp_path):
    path = tmp_path / "ancien.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript("""
        PRAGMA journal_mode = WAL;
        CREATE TABLE subscribers (email TEXT PRIMARY KEY COLLATE NOCASE);
        CREATE TABLE sends (post_id TEXT PRIMARY KEY, position INTEGER NOT NULL DEFAULT 0,
                            done INTEGER NOT NULL DEFAULT 0);
        INSERT INTO subscribers VALUES ('a@exemple.fr'), ('b@exemple.fr'), ('c@exemple.fr'), ('parti@exemple.fr');
        DELETE FROM subscribers WHERE email = 'parti@exemple.fr';
        INSERT INTO sends (post_id, position) VALUES ('billet', 2);
    """)
    rowids = dict(old.execute("SELECT email, rowid FROM subscribers").fetchall())
    old.close()
    with open_store(path) as store:
        assert store.subscribers_after(0, 10) == [(rowids[e], e) for e in ("a@exemple.fr", "b@exemple.fr", "c@exemple.fr")]
        assert store.send_position("billet") == 2
        assert [e for _, e in store.subscribers_after(2, 10)] == ["c@exemple.fr"]  # the send resumes after b
        store.add("d@exemple.fr")
        assert store.subscribers_after(3, 10)[0][0] > rowids["c@exemple.fr"]
    assert b"parti@exemple.fr" not in store_bytes(path)


def test_group_commit_many_unsubscribes_at_once(tmp_path):
    """Twenty unsubscribes from twenty threads at once: each ERASED, and all gone from every byte."""
    path = tmp_path / "abonnes.sqlite3"
    leaving = [f"depart{n}@exemple.fr" for n in range(20)]
    with open_store(path) as store:
        store.add_many([f"reste{n}@exemple.fr" for n in range(500)] + leaving)
        answers = {}
        threads = [threading.Thread(target=lambda e=e: answers.__setitem__(e, store.remove(e))) for e in leaving]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(answers.values()) == {Erasure.ERASED}
        data = store_bytes(path)
        assert [e for e in leaving if e.encode() in data] == []
        assert store.count() == 500


# -- PostgreSQL: the same promises, checked in the database's own files --------------------------

def _hold_snapshot(url: str, touch_table: bool):
    """Another connection in a REPEATABLE READ transaction: its snapshot still sees every row deleted
    after it began (a pg_dump, a slow report). With touch_table it has also read the table (and holds
    a lock on it); without, it only holds back the horizon of what VACUUM may remove."""
    reader = psycopg.connect(url)
    reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT count(*) FROM subscribers" if touch_table else "SELECT 1").fetchone()
    return reader


@pytest.mark.parametrize("touch_table", [True, False])
def test_postgres_an_old_snapshot_makes_it_pending_then_it_completes_by_itself(postgres_server, touch_table):
    url = postgres_server.new_database()
    secret = "marie.curie+lettre@radium-exemple.fr"
    store = open_store(url)
    try:
        store.add_many([f"lecteur{n}@exemple.fr" for n in range(300)])
        store.add(secret)
        reader = _hold_snapshot(url, touch_table)
        started = time.monotonic()
        assert store.remove(secret, wait=0.3) is Erasure.PENDING
        assert time.monotonic() - started < 2
        assert secret not in store  # off the list at once: the sender will not mail it
        assert secret.encode() in database_bytes(postgres_server, url)  # not erased yet, and not claimed to be
        assert store.erasure_pending()

        slowest = 0.0
        for n in range(50):  # signups confirmed while the reader holds its snapshot
            t = time.monotonic()
            store.add(f"nouveau{n}@exemple.fr")
            slowest = max(slowest, time.monotonic() - t)
        assert slowest < 1.0, f"a confirmation waited {slowest:.2f} s behind a reader"

        reader.commit()
        deadline = time.monotonic() + 20
        while store.erasure_pending() and time.monotonic() < deadline:  # the store's own thread finishes it
            time.sleep(0.02)
        assert not store.erasure_pending()
        assert secret.encode() not in database_bytes(postgres_server, url)
        reader.close()
    finally:
        store.close()


def test_postgres_random_sequences_leave_no_byte_of_any_removed_address(postgres_server):
    """800 random subscribes and unsubscribes on two stores (two instances) of one database, a process
    reading whole snapshots all along: each ERASED checked in the files one in twenty, every removal at the end."""
    url = postgres_server.new_database()
    rng = random.Random(20261203)
    one, two = open_store(url), open_store(url)
    reader = subprocess.Popen([sys.executable, "-c", PG_BUSY_READER, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    subscribed: set[str] = set()
    removed: set[str] = set()
    answers = {Erasure.ERASED: 0, Erasure.PENDING: 0, Erasure.ABSENT: 0}
    try:
        for n in range(800):
            store = one if rng.random() < 0.5 else two
            if len(subscribed) > 50 and rng.random() < 0.45:
                email = rng.choice(sorted(subscribed))
                answer = store.remove(email.upper() if rng.random() < 0.1 else email)
                answers[answer] += 1
                assert answer is not Erasure.ABSENT
                subscribed.discard(email)
                removed.add(email)
                if answer is Erasure.ERASED and n % 20 == 0:
                    assert email.lower().encode() not in database_bytes(postgres_server, url), email
            else:
                email = rng.choice(sorted(removed)) if removed and rng.random() < 0.1 else address(rng, n)
                store.add(email)
                subscribed.add(email)
                removed.discard(email)
    finally:
        reader.stdin.close()
        assert reader.wait(30) == 0
        reader.stdout.close()
    assert one.wait_erased(30) and two.wait_erased(30)
    data = database_bytes(postgres_server, url)
    assert len(removed) > 200 and answers[Erasure.ERASED] > 200
    assert [e for e in sorted(removed) if e.lower().encode() in data] == []
    assert all(e.lower().encode() in data for e in subscribed)
    assert sorted(one.emails(), key=str.lower) == sorted(subscribed, key=str.lower)
    one.close()
    two.close()


# A reader in another process: short REPEATABLE READ transactions reading the whole table, every 2 ms.
PG_BUSY_READER = """
import psycopg, sys, select
db = psycopg.connect(sys.argv[1], autocommit=True)
print("ready", flush=True)
while not select.select([sys.stdin], [], [], 0.002)[0]:
    with db.transaction():
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        db.execute("SELECT string_agg(email, ',') FROM subscribers").fetchall()
"""


def test_postgres_a_pending_erasure_left_by_a_dead_process_finishes_at_next_open(postgres_server):
    url = postgres_server.new_database()
    secret = "disparu@radium-exemple.fr"
    with open_store(url) as store:
        store.add_many([f"lecteur{n}@exemple.fr" for n in range(100)] + [secret])
    # A process that deletes and dies before its VACUUM: the row stays in the table's file, dead.
    script = ("import os, sys, psycopg\n"
              "db = psycopg.connect(sys.argv[1], autocommit=True)\n"
              "with db.transaction():  # as PostgresStore.remove: the reader, then its memberships\n"
              "    (reader,) = db.execute('DELETE FROM subscribers WHERE email = %s RETURNING id', (sys.argv[2],)).fetchone()\n"
              "    db.execute('DELETE FROM memberships WHERE subscriber_id = %s', (reader,))\n"
              "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, url, secret], check=True)
    assert secret.encode() in database_bytes(postgres_server, url)
    deadline = time.monotonic() + 10
    while True:  # its backend counts the dead row in the statistics as it exits
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute(DEAD_PARTITIONS).fetchall():  # a partition of subscribers or memberships
                break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with open_store(url) as store:
        assert secret not in store
        assert store.wait_erased(10)
    assert secret.encode() not in database_bytes(postgres_server, url)


def test_postgres_group_commit_many_unsubscribes_at_once(postgres_server):
    """Twenty unsubscribes from twenty threads at once, all of readers in one partition: each ERASED, all
    gone, and that partition vacuumed once and rewritten once (VACUUM, VACUUM FULL), not twenty times."""
    url = postgres_server.new_database()
    with open_store(url) as store:
        store.add_many([f"lecteur{n}@exemple.fr" for n in range(3000)])
        with psycopg.connect(url) as conn:
            # The fullest partition of subscribers (47 readers of 3,000 on average): twenty of them leave.
            partition = conn.execute("SELECT tableoid::regclass::text FROM subscribers GROUP BY 1 "
                                     "ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
            leaving = [r[0] for r in conn.execute(f"SELECT email FROM {partition} ORDER BY id LIMIT 20")]
            vacuums = f"SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = '{partition}'::regclass"
            before = conn.execute(vacuums).fetchone()[0]
        answers = {}
        threads = [threading.Thread(target=lambda e=e: answers.__setitem__(e, store.remove(e))) for e in leaving]
        # All twenty DELETEs land while a pass is under way (held here, whatever the machine's load): the
        # next pass must cover them all, not one each.
        with store._scrub_lock:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while store._deleted < len(leaving) and time.monotonic() < deadline:
                time.sleep(0.01)
        for t in threads:
            t.join()
        assert len(leaving) == 20 and set(answers.values()) == {Erasure.ERASED}
        data = database_bytes(postgres_server, url)
        assert [e for e in leaving if e.encode() in data] == []
        assert store.count() == 2980
        with psycopg.connect(url) as conn:  # VACUUM and VACUUM FULL once each: one shared pass, not twenty
            assert conn.execute(vacuums).fetchone()[0] - before <= 2


def test_postgres_the_wal_keeps_an_erased_address_until_a_checkpoint_deletes_its_segment(postgres_server):
    """What the privacy page says: the INSERT's WAL record holds the address after ERASED; with
    wal_keep_size = 0 and wal_recycle = off, a switch to a new segment and a checkpoint delete it."""
    url = postgres_server.new_database()
    secret = "wal.seulement@radium-exemple.fr"
    with open_store(url) as store:
        store.add_many([f"lecteur{n}@exemple.fr" for n in range(50)] + [secret])
        assert store.remove(secret) is Erasure.ERASED
    assert secret.encode() in wal_bytes(postgres_server)  # before any checkpoint could delete its segment
    assert secret.encode() not in database_bytes(postgres_server, url)
    with postgres_server.admin() as conn:
        conn.execute("SELECT pg_switch_wal()")
        conn.execute("CHECKPOINT")
    assert secret.encode() not in wal_bytes(postgres_server)


def test_the_privacy_page_and_the_readme_say_what_postgresql_keeps_and_give_the_same_settings():
    page = (ROOT / "content" / "pages" / "confidentialite.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for claim in ["journal des écritures", "archives du journal et les sauvegardes", "réplique", "VACUUM FULL"]:
        assert claim in page, claim

    def settings(text):
        block = text.split("```\nwal_level = minimal", 1)[1].split("```", 1)[0]
        return ["wal_level"] + [line.split("=")[0].strip() + "=" + line.split("=")[1].split("#")[0].strip()
                                for line in block.strip().splitlines()]

    assert settings(page) == settings(readme)
    assert "wal_recycle=off" in settings(page) and "wal_keep_size=0" in settings(page)
