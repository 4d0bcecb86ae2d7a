"""The SQLite store: one column of addresses, erased to the byte, safe across threads and processes."""
import multiprocessing
import sqlite3
import threading

import pytest

from newsletter.store import Erasure, StoreError, open_store


def db_files(path):
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def raw_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in db_files(path))


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "abonnes.sqlite3")
    yield s
    s.close()


def test_pragmas_and_schema(store, tmp_path):
    db = sqlite3.connect(tmp_path / "abonnes.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[1] for r in db.execute("PRAGMA table_info(subscribers)")] == ["id", "email"]
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} == {
        "subscribers", "memberships", "sends", "sqlite_sequence"}
    assert [r[1] for r in db.execute("PRAGMA table_info(memberships)")] == ["subscriber_id", "list"]
    assert "post_id" in [r[1] for r in db.execute("PRAGMA table_info(sends)")]
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


def test_removed_address_is_in_no_byte_of_the_files(store, tmp_path):
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


def _add_from_process(path, k):
    s = open_store(path)
    for n in range(30):
        s.add(f"p{k}-{n}@exemple.fr")
        s.add("commun@exemple.fr")
    s.close()


def test_several_processes_share_the_file(tmp_path):
    path = tmp_path / "partage.sqlite3"
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


@pytest.mark.parametrize("url, message", [
    ("postgresql://u:p@h/db", "pas encore"),
    ("mysql://h/db", "schéma non reconnu"),
])
def test_unsupported_urls_are_named(url, message):
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_sqlite_url_form(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/u.sqlite3") as s:
        s.add("a@exemple.fr")
    assert (tmp_path / "u.sqlite3").exists()


def test_only_the_owner_can_read_the_files(store, tmp_path):
    store.add("lecteur@exemple.fr")
    files = sorted(tmp_path.glob("abonnes.sqlite3*"))
    assert len(files) >= 2  # the database and its WAL
    assert {path.name: path.stat().st_mode & 0o077 for path in files} == {path.name: 0 for path in files}
