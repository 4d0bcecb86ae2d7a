"""Lists in the store: the whole blog ('') and one per rubrique, each a set of addresses and nothing else.
A post's recipients are the union of its lists, each address once, walked by id so a send resumes; a list
left is erased on disk like an address, and an address off its last list is erased."""
import sqlite3
import threading

import apsw
import psycopg

import pytest

from newsletter.store import WHOLE_BLOG, Erasure, open_store
from tests.fixtures.postgres import database_bytes



def store_bytes(path) -> bytes:
    """Every file of the store (database, -wal, -shm), lower-cased."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))).lower()


@pytest.fixture
def store(tmp_path):
    """A SQLite store, for the tests that read its files."""
    s = open_store(tmp_path / "abonnes.sqlite3")
    yield s
    s.close()


@pytest.fixture
def any_store(store_url):
    """The store on each backend (tests/fixtures/postgres.py: SQLite, then PostgreSQL)."""
    s = open_store(store_url)
    yield s
    s.close()


def walk(store, lists, batch=2, position=0):
    """Every (id, address) a send to `lists` would mail, page by page as the sender reads them."""
    out = []
    while page := store.subscribers_after(position, batch, lists=lists):
        out += page
        position = page[-1][0]
    return out


def test_a_reader_on_several_lists_is_mailed_once_and_only_by_his_lists(any_store):
    any_store.add("tout@exemple.fr")                                  # the whole blog (the default)
    any_store.add("ethique@exemple.fr", ["ethique-biz"])
    any_store.add("les-deux@exemple.fr", [WHOLE_BLOG, "ethique-biz"])
    any_store.add("humeurs@exemple.fr", ["humeurs-marketing"])
    any_store.add("ethique@exemple.fr", ["humeurs-marketing"])          # a second rubrique, later
    ethique_post = [e for _, e in walk(any_store, [WHOLE_BLOG, "ethique-biz"])]
    humeurs_post = [e for _, e in walk(any_store, [WHOLE_BLOG, "humeurs-marketing"])]
    assert ethique_post == ["tout@exemple.fr", "ethique@exemple.fr", "les-deux@exemple.fr"]
    assert humeurs_post == ["tout@exemple.fr", "ethique@exemple.fr", "les-deux@exemple.fr", "humeurs@exemple.fr"]
    assert [e for _, e in walk(any_store, [WHOLE_BLOG])] == ["tout@exemple.fr", "les-deux@exemple.fr"]
    assert walk(any_store, []) == [] and any_store.subscribers_after(0, 10, lists=["inconnue"]) == []
    assert [e for _, e in walk(any_store, None)] == [e for _, e in walk(any_store, [WHOLE_BLOG, "ethique-biz",
                                                                              "humeurs-marketing"])]


def test_joining_is_idempotent_and_says_when_something_was_new(any_store):
    assert any_store.add("Jean@exemple.fr", ["ethique-biz"]) is True
    assert any_store.add("jean@EXEMPLE.fr", ["ethique-biz"]) is False
    assert any_store.add("jean@exemple.fr", [WHOLE_BLOG, "ethique-biz"]) is True  # the whole blog is new
    assert any_store.lists_of("JEAN@exemple.fr") == [WHOLE_BLOG, "ethique-biz"]
    assert any_store.count() == 1 and any_store.lists_of("personne@exemple.fr") == []
    assert any_store.receives("jean@exemple.fr", ["ethique-biz"]) and not any_store.receives("jean@exemple.fr", ["autre"])


def test_a_send_interrupted_resumes_after_its_checkpoint_without_doubles(any_store):
    for n in range(30):
        any_store.add(f"l{n:02d}@exemple.fr", [[WHOLE_BLOG], ["a"], ["b"], [WHOLE_BLOG, "a"], ["a", "b"]][n % 5])
    lists = [WHOLE_BLOG, "a"]
    everyone = walk(any_store, lists)
    first = any_store.subscribers_after(0, 7, lists=lists)                   # a sender killed after 7 mails
    any_store.add("nouveau@exemple.fr", ["a"])                          # joins meanwhile: mailed too, at the end
    any_store.leave(first[0][1], lists)                                 # leaves meanwhile: already mailed
    rest = walk(any_store, lists, batch=3, position=first[-1][0])
    mailed = [e for _, e in first + rest]
    assert len(mailed) == len(set(mailed))
    assert mailed == [e for _, e in everyone] + ["nouveau@exemple.fr"]
    assert all(n % 5 != 2 for n in (int(e[1:3]) for e in mailed if e.startswith("l")))  # "b" only: not mailed


def test_add_many_to_a_list(any_store):
    any_store.add("deja@exemple.fr")
    added, present = any_store.add_many(["deja@exemple.fr", "neuf@exemple.fr"], ["ethique-biz"])
    assert added == ["deja@exemple.fr", "neuf@exemple.fr"] and present == []
    added, present = any_store.add_many(["DEJA@exemple.fr"], ["ethique-biz"])
    assert added == [] and present == ["DEJA@exemple.fr"]
    assert any_store.memberships() == [("deja@exemple.fr", [WHOLE_BLOG, "ethique-biz"]), ("neuf@exemple.fr", ["ethique-biz"])]
    assert list(any_store.emails("ethique-biz")) == ["deja@exemple.fr", "neuf@exemple.fr"]
    assert list(any_store.emails(WHOLE_BLOG)) == ["deja@exemple.fr"]


def test_a_list_left_is_erased_on_disk_and_the_last_one_takes_the_address(store, tmp_path):
    path = tmp_path / "abonnes.sqlite3"
    secret = "marie.curie+lettre@radium-exemple.fr"
    for n in range(200):  # several pages: the rows are not alone
        store.add(f"lecteur{n}@exemple.fr", [WHOLE_BLOG] if n % 2 else ["humeurs-marketing"])
    store.add(secret, [WHOLE_BLOG, "rubrique-confidentielle"])
    assert b"rubrique-confidentielle" in store_bytes(path)

    assert store.leave(secret, ["rubrique-confidentielle"]) is Erasure.ERASED
    assert store.lists_of(secret) == [WHOLE_BLOG]
    data = store_bytes(path)
    assert b"rubrique-confidentielle" not in data  # the (id, list) pair is gone from every file
    assert secret.encode() in data                  # the address stays: it is still on the whole blog
    assert store.leave(secret, ["rubrique-confidentielle"]) is Erasure.ABSENT

    assert store.leave(secret, [WHOLE_BLOG, "inconnue"]) is Erasure.ERASED
    assert secret not in store
    data = store_bytes(path)
    assert secret.encode() not in data and b"radium-exemple" not in data
    assert b"humeurs-marketing" in data and b"lecteur199@exemple.fr" in data  # the others are still there


def test_remove_erases_the_address_from_every_list(store, tmp_path):
    path = tmp_path / "abonnes.sqlite3"
    for n in range(100):
        store.add(f"lecteur{n}@exemple.fr")
    store.add("parti@radium-exemple.fr", [WHOLE_BLOG, "rubrique-secrete", "autre-secrete"])
    assert store.remove("parti@radium-exemple.fr") is Erasure.ERASED
    data = store_bytes(path)
    assert b"radium-exemple" not in data and b"-secrete" not in data
    assert store._db.execute("SELECT count(*) FROM memberships").fetchone()[0] == 100  # no orphan pair


def test_a_store_made_before_lists_puts_every_reader_on_the_whole_blog(tmp_path):
    path = tmp_path / "avant-listes.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript("""
        PRAGMA journal_mode = WAL;
        CREATE TABLE subscribers (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE COLLATE NOCASE);
        CREATE TABLE sends (post_id TEXT PRIMARY KEY, position INTEGER NOT NULL DEFAULT 0,
                            done INTEGER NOT NULL DEFAULT 0);
        INSERT INTO subscribers (email) VALUES ('a@exemple.fr'), ('b@exemple.fr'), ('c@exemple.fr');
        INSERT INTO sends (post_id, position) VALUES ('billet', 2);
    """)
    old.close()
    with open_store(path) as store:
        assert store.memberships() == [(e, [WHOLE_BLOG]) for e in ("a@exemple.fr", "b@exemple.fr", "c@exemple.fr")]
        assert [e for _, e in store.subscribers_after(2, 10, lists=[WHOLE_BLOG, "ethique-biz"])] == ["c@exemple.fr"]
        store.add("d@exemple.fr", ["ethique-biz"])
    with open_store(path) as store:  # opened again: migrated once, not twice
        assert store.memberships()[-1] == ("d@exemple.fr", ["ethique-biz"])
        assert store._db.execute("SELECT count(*) FROM memberships").fetchone()[0] == 4


@pytest.mark.parametrize("with_lists", [True, False], ids=["with lists", "before lists"])
def test_postgres_a_store_made_before_partitions_keeps_its_readers_lists_ids_and_send_state(postgres_server, with_lists):
    """A store of before partitions (one plain table each): its rows move into the partitioned tables at
    the first open, ids and the identity's next value kept, and the old files, with the dead tuple of a
    reader erased by then, are deleted."""
    url = postgres_server.new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE subscribers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL)
                WITH (autovacuum_enabled = off);
            CREATE UNIQUE INDEX subscribers_email_key ON subscribers (lower(email COLLATE "C"));
            CREATE TABLE sends (post_id text PRIMARY KEY, position bigint NOT NULL DEFAULT 0,
                                done boolean NOT NULL DEFAULT false);
            INSERT INTO subscribers (email) VALUES ('a@exemple.fr'), ('B@exemple.fr'), ('c@exemple.fr'),
                                                   ('parti@radium-exemple.fr');
            DELETE FROM subscribers WHERE id = 4;
            INSERT INTO sends (post_id, position) VALUES ('billet', 2);
        """)
        if with_lists:
            conn.execute("""
                CREATE TABLE memberships (subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
                                          list text NOT NULL, PRIMARY KEY (subscriber_id, list));
                INSERT INTO memberships VALUES (1, ''), (2, ''), (2, 'ethique-biz'), (3, 'ethique-biz');
            """)
    lists = ([WHOLE_BLOG], [WHOLE_BLOG, "ethique-biz"], ["ethique-biz"]) if with_lists else ([WHOLE_BLOG],) * 3
    for _ in range(2):  # opened again: moved once, not twice
        with open_store(url) as store:
            assert store.memberships() == list(zip(["a@exemple.fr", "B@exemple.fr", "c@exemple.fr"], lists))
            assert [n for n, _ in store.subscribers_after(0, 10)] == [1, 2, 3]
            assert "b@exemple.fr" in store and not store.add("A@EXEMPLE.FR", [WHOLE_BLOG])
            assert store.send_position("billet") == 2
    with open_store(url) as store:
        assert store.add("d@exemple.fr")
        [(number, email)] = store.subscribers_after(3, 10)
        assert email == "d@exemple.fr" and number > 4  # 4 was handed out before (and a failed insert takes one)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'subscribers'").fetchone()[0] == "p"
    assert b"radium-exemple" not in database_bytes(postgres_server, url)


def test_postgres_readers_joining_while_they_are_erased_leave_no_list_behind(postgres_server):
    """Confirmations and unsubscribes of the same readers at once, from four threads: no membership is
    left of a reader erased (memberships are not a foreign key of a partitioned table: the store holds
    the reader's row while it adds one, and deletes them with the reader)."""
    url = postgres_server.new_database()
    emails = [f"va-et-vient{n}@exemple.fr" for n in range(8)]
    with open_store(url) as store:
        def join():
            for _ in range(40):
                for email in emails:
                    store.add(email, [WHOLE_BLOG, "ethique-biz"])

        def leave():
            for _ in range(40):
                for email in emails:
                    store.remove(email, wait=0.05)

        threads = [threading.Thread(target=work) for work in (join, join, leave, leave)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM memberships m WHERE NOT EXISTS "
                                "(SELECT 1 FROM subscribers s WHERE s.id = m.subscriber_id)").fetchone()[0] == 0
        assert all(store.lists_of(email) in ([], [WHOLE_BLOG, "ethique-biz"]) for email in emails)


def test_the_tables_hold_addresses_and_list_keys_only(store, tmp_path):
    store.add("a@exemple.fr", [WHOLE_BLOG, "ethique-biz"])
    # Read with the store's own SQLite: the stdlib's, closing in this process, would drop the store's WAL.
    db = apsw.Connection(str(tmp_path / "abonnes.sqlite3"), flags=apsw.SQLITE_OPEN_READONLY)
    assert [tuple(r) for r in db.execute("SELECT * FROM subscribers")] == [(1, "a@exemple.fr")]
    assert [tuple(r) for r in db.execute("SELECT * FROM memberships ORDER BY list")] == [(1, ""), (1, "ethique-biz")]
    db.close()


def test_postgres_a_list_left_is_in_no_file_of_the_database_and_the_last_one_takes_the_address(postgres_server):
    url = postgres_server.new_database()
    secret = "marie.curie+lettre@radium-exemple.fr"
    with open_store(url) as pg:
        for n in range(200):  # several pages: the rows are not alone
            pg.add(f"lecteur{n}@exemple.fr", [WHOLE_BLOG] if n % 2 else ["humeurs-marketing"])
        pg.add(secret, [WHOLE_BLOG, "rubrique-confidentielle"])
        assert b"rubrique-confidentielle" in database_bytes(postgres_server, url)
        assert pg.leave(secret, ["rubrique-confidentielle"]) is Erasure.ERASED
        assert pg.lists_of(secret) == [WHOLE_BLOG]
        data = database_bytes(postgres_server, url)
        assert b"rubrique-confidentielle" not in data  # the (id, list) pair is in no file of the database
        assert secret.encode() in data                  # the address stays: it is still on the whole blog
        assert pg.leave(secret, [WHOLE_BLOG, "inconnue"]) is Erasure.ERASED and secret not in pg
        data = database_bytes(postgres_server, url)
        assert b"radium-exemple" not in data
        assert b"humeurs-marketing" in data and b"lecteur199@exemple.fr" in data
        assert pg.remove("lecteur3@exemple.fr") is Erasure.ERASED  # its membership goes with it (cascade)
        assert pg.memberships()[0] == ("lecteur0@exemple.fr", ["humeurs-marketing"]) and len(pg.memberships()) == 199


def test_confirmations_gathered_say_what_each_reader_is_now_on(any_store):
    """store.confirm_many, as the service's group commit calls it: in order, the lists each reader is on
    now if a list was new to them, else None; an address twice in one batch (any case) is new once."""
    any_store.add("deja@exemple.fr", ["ethique-biz"])
    any_store.add("complet@exemple.fr", [WHOLE_BLOG, "humeurs-marketing"])
    batch = ["neuf@exemple.fr", "DEJA@exemple.fr", "complet@exemple.fr", "Neuf@Exemple.fr", "autre@exemple.fr"]
    assert any_store.confirm_many(batch, ["humeurs-marketing", WHOLE_BLOG]) == [
        [WHOLE_BLOG, "humeurs-marketing"],                  # new
        [WHOLE_BLOG, "ethique-biz", "humeurs-marketing"],   # was on another list: all of them now
        None,                                               # on both already
        None,                                               # the same reader as the first
        [WHOLE_BLOG, "humeurs-marketing"]]
    assert any_store.confirm_many(batch, [WHOLE_BLOG]) == [None] * 5
    assert any_store.memberships() == [
        ("autre@exemple.fr", [WHOLE_BLOG, "humeurs-marketing"]), ("complet@exemple.fr", [WHOLE_BLOG, "humeurs-marketing"]),
        ("deja@exemple.fr", [WHOLE_BLOG, "ethique-biz", "humeurs-marketing"]), ("neuf@exemple.fr", [WHOLE_BLOG, "humeurs-marketing"])]
    assert any_store.confirm_many([], [WHOLE_BLOG]) == []
