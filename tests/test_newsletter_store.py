"""The store, on both backends (SQLite file, PostgreSQL database): one column of addresses, erased to
the byte, safe across threads and processes. Tests named _sqlite_ or _postgres_ are about one backend."""
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from newsletter.store import Erasure, SendBusy, StoreError, open_store
from tests.conftest import ROOT
from tests.fixtures.postgres import database_bytes


def db_files(path):
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def raw_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in db_files(path))


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path):
    s = open_store(tmp_path / "abonnes.sqlite3")
    yield s
    s.close()


def test_sqlite_pragmas_and_schema(sqlite_store, tmp_path):
    store = sqlite_store
    db = sqlite3.connect(tmp_path / "abonnes.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[1] for r in db.execute("PRAGMA table_info(subscribers)")] == ["id", "email"]
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} == {
        "subscribers", "memberships", "sends", "send_ranges", "sqlite_sequence"}
    assert [r[1] for r in db.execute("PRAGMA table_info(memberships)")] == ["subscriber_id", "list"]
    assert "post_id" in [r[1] for r in db.execute("PRAGMA table_info(sends)")]
    # A send's ranges are ids and checkpoints, by post: no address, nothing about a person.
    assert [r[1] for r in db.execute("PRAGMA table_info(send_ranges)")] == ["post_id", "lo", "hi", "position"]
    db.close()
    assert store._db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_add_is_idempotent_and_case_insensitive(store):
    assert store.add("Jean.Dupont@exemple.fr") is True
    assert store.add("Jean.Dupont@exemple.fr") is False
    assert store.add("jean.dupont@EXEMPLE.FR") is False
    assert "JEAN.dupont@exemple.fr" in store
    assert store.count() == 1
    assert list(store.emails()) == ["Jean.Dupont@exemple.fr"]


def test_emails_sorted_and_positions_stable(store):
    for e in ["c@x.fr", "a@x.fr", "b@x.fr"]:
        store.add(e)
    assert list(store.emails()) == ["a@x.fr", "b@x.fr", "c@x.fr"]
    first = store.subscribers_after(0, 2)
    assert [e for _, e in first] == ["c@x.fr", "a@x.fr"]
    store.remove("c@x.fr")
    store.add("d@x.fr")
    rest = store.subscribers_after(first[-1][0], 10)
    assert [e for _, e in rest] == ["b@x.fr", "d@x.fr"]
    assert rest[0][0] > first[-1][0] and rest[1][0] > rest[0][0]


def test_send_checkpoints_are_per_post(store):
    assert store.send_position("2017-01-fidele") is None and not store.is_sent("2017-01-fidele")
    store.save_send_position("2017-01-fidele", 42)
    store.save_send_position("2017-01-fidele", 43)
    assert store.send_position("2017-01-fidele") == 43 and not store.is_sent("2017-01-fidele")
    store.mark_sent("2017-01-fidele")
    assert store.is_sent("2017-01-fidele") and store.send_position("2017-01-fidele") == 43
    assert store.send_position("autre") is None


def test_sqlite_removed_address_is_in_no_byte_of_the_files(sqlite_store, tmp_path):
    store = sqlite_store
    path = tmp_path / "abonnes.sqlite3"
    secret = "marie.curie+lettre@radium-exemple.fr"
    for n in range(200):  # enough rows for several pages, so the row is not alone
        store.add(f"lecteur{n}@exemple.fr")
    store.add(secret)
    assert secret.encode() in raw_bytes(path)
    assert store.remove(secret) is Erasure.ERASED
    assert store.remove(secret) is Erasure.ABSENT
    data = raw_bytes(path)
    assert secret.encode() not in data
    assert b"radium-exemple" not in data and b"marie.curie" not in data
    assert b"lecteur199@exemple.fr" in data  # the others are still there


def test_many_threads_one_store(store):
    def work(k):
        for n in range(50):
            store.add(f"t{k}-{n}@exemple.fr")
            store.add(f"t{k}-{n}@exemple.fr")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 400


@pytest.mark.parametrize("last_of_its_page", [False, True])
def test_postgres_removed_address_is_in_no_file_of_the_database(postgres_server, last_of_its_page):
    """After ERASED, the address is in no file of the database's folder: table, index, maps, old files.
    (A plain VACUUM leaves it in a page's free space when it was the page's last row, and in the index.)"""
    url = postgres_server.new_database()
    secret = "marie.curie+lettre@radium-exemple.fr"
    with open_store(url) as store:
        store.add_many([f"lecteur{n}@exemple.fr" for n in range(300)])
        store.add(secret)
        if not last_of_its_page:
            store.add_many([f"suivant{n}@exemple.fr" for n in range(50)])
        assert secret.encode() in database_bytes(postgres_server, url)
        assert store.remove(secret.upper()) is Erasure.ERASED
        assert store.remove(secret) is Erasure.ABSENT
        data = database_bytes(postgres_server, url)
        assert b"radium-exemple" not in data and b"marie.curie" not in data
        assert b"lecteur299@exemple.fr" in data  # the scan does see the others
        assert store.count() == 300 + (0 if last_of_its_page else 50)


def test_postgres_two_instances_share_one_database(postgres_server):
    """Two stores on one database, as two service instances: what one adds the other sees, one send at a
    time across both, and unsubscribes from both at once all erased."""
    url = postgres_server.new_database()
    with open_store(url) as one, open_store(url) as two:
        assert one.add("jean@exemple.fr") and not two.add("JEAN@exemple.fr")
        assert "jean@exemple.fr" in two and two.count() == 1
        with one.sending():
            with pytest.raises(SendBusy), two.sending():
                pass
        for _ in range(30):  # released by each when its send ended, not when the server ends its session
            for store in (two, one):
                with store.sending():
                    pass
        leaving = [f"depart{n}@exemple.fr" for n in range(20)]
        one.add_many([f"reste{n}@exemple.fr" for n in range(200)] + leaving)
        answers = {}

        def leave(store, email):
            answers[email] = store.remove(email)

        threads = [threading.Thread(target=leave, args=((one, two)[n % 2], e)) for n, e in enumerate(leaving)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(answers.values()) <= {Erasure.ERASED, Erasure.PENDING}
        assert one.wait_erased(20) and two.wait_erased(20)
        data = database_bytes(postgres_server, url)
        assert [e for e in leaving if e.encode() in data] == []
        assert one.count() == two.count() == 201


def test_postgres_a_killed_sender_frees_the_send_lock(postgres_server):
    """The send lock belongs to the sender's connection: kill -9 the process, and the next send may start."""
    url = postgres_server.new_database()
    script = ("import os, sys\nfrom newsletter.store import open_store\n"
              "store = open_store(sys.argv[1])\n"
              "with store.sending():\n    print('sending', flush=True)\n    sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "sending"
        with open_store(url) as store:
            with pytest.raises(SendBusy, match="another make send"), store.sending():
                pass
            proc.kill()
            proc.wait(10)
            deadline = time.monotonic() + 10
            while True:  # the server notices the closed connection and drops its lock
                try:
                    with store.sending():
                        break
                except SendBusy:
                    assert time.monotonic() < deadline, "the lock outlived its process"
                    time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdin.close()
        proc.stdout.close()


def _add_from_process(path, k):
    s = open_store(path)
    for n in range(30):
        s.add(f"p{k}-{n}@exemple.fr")
        s.add("commun@exemple.fr")
    s.close()


def test_several_processes_share_the_store(store_url):
    path = store_url
    open_store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_from_process, args=(str(path), k)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with open_store(path) as s:
        assert s.count() == 91


def test_add_many_is_all_or_nothing(store):
    store.add("deja@exemple.fr")
    added, present = store.add_many(["a@exemple.fr", "DEJA@exemple.fr"])
    assert added == ["a@exemple.fr"] and present == ["DEJA@exemple.fr"]

    def broken():
        yield "b@exemple.fr"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        store.add_many(broken())
    assert "b@exemple.fr" not in store and store.count() == 2


def test_unsupported_urls_are_named():
    with pytest.raises(StoreError, match="NEWSLETTER_DB : schéma non reconnu"):
        open_store("mysql://h/db")


def test_postgres_unreachable_or_refused_is_named_without_the_password(postgres_server):
    closed = postgres_server.url().replace(f":{postgres_server.port}/", ":1/")
    for url, reason in ((closed, "refused"), (postgres_server.url("pas_de_base"), "does not exist"),
                        (f"postgresql://inconnu:secret@127.0.0.1:{postgres_server.port}/postgres", "inconnu")):
        with pytest.raises(StoreError, match="NEWSLETTER_DB") as caught:
            open_store(url)
        assert reason in str(caught.value) and "secret" not in str(caught.value)


def test_sqlite_url_form(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/u.sqlite3") as s:
        s.add("a@exemple.fr")
    assert (tmp_path / "u.sqlite3").exists()


def test_sqlite_only_the_owner_can_read_the_files(sqlite_store, tmp_path):
    store = sqlite_store
    store.add("lecteur@exemple.fr")
    files = sorted(tmp_path.glob("abonnes.sqlite3*"))
    assert len(files) >= 2  # the database and its WAL
    assert {path.name: path.stat().st_mode & 0o077 for path in files} == {path.name: 0 for path in files}


def test_postgres_import_export_remove_commands(postgres_server, tmp_path):
    """make import / export / remove with NEWSLETTER_DB=postgresql://…"""
    url = postgres_server.new_database()
    env = {**os.environ, "NEWSLETTER_DB": url}
    (tmp_path / "liste.csv").write_text("email\nb@exemple.fr\nA@exemple.fr\n", encoding="utf-8")

    def command(*args):
        return subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    assert "2 adresse(s) ajoutée(s)" in command("import", str(tmp_path / "liste.csv")).stdout
    assert command("export").stdout == "email,listes\nA@exemple.fr,tout\nb@exemple.fr,tout\n"
    assert command("remove", "a@exemple.fr").stdout.strip() == "Adresse effacée."
    assert command("export").stdout == "email,listes\nb@exemple.fr,tout\n"


def test_postgres_instances_opening_a_new_database_at_once_all_start(postgres_server):
    """Eight stores opened at the same moment on an empty database: one creates the schema, none fails."""
    url = postgres_server.new_database()
    barrier, stores, failures = threading.Barrier(8), [], []

    def start():
        barrier.wait()
        try:
            stores.append(open_store(url))
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(stores) == 8
    stores[0].add("premier@exemple.fr")
    assert all("premier@exemple.fr" in s for s in stores)
    for s in stores:
        s.close()
