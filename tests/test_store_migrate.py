"""make migrate-store: SQLite → PostgreSQL → SQLite with ids, send state and the id counter kept; an
empty target only; all or nothing, even when killed half-way; the source untouched."""
import hashlib
import subprocess
import sys

import pytest

from newsletter.store import StoreError, open_store
from tests.conftest import ROOT


def migrate(source, target):
    return subprocess.run([sys.executable, "-m", "newsletter.migrate", str(source), str(target)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def digest(path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))
                                   if not p.name.endswith(".send-lock"))).hexdigest()


def fill(store):
    """Readers with gaps in their ids (left readers), the last ids left too, on lists, and sends in every
    state, a parallel send's ranges included."""
    store.add_many([f"Lecteur{n}@Exemple.fr" for n in range(1200)])
    store.add_many([f"lecteur{n}@exemple.fr" for n in range(0, 1200, 7)], ["ethique-biz"])
    store.add("rubrique-seule@exemple.fr", ["humeurs-marketing"])
    for n in (3, 500, 1199, 1198):
        store.remove(f"lecteur{n}@exemple.fr")
    store.save_send_position("2026-11-billet", 700)
    store.start_ranges("2026-11-billet", [(700, 900), (900, None)])
    store.save_range_position("2026-11-billet", 900, 950)
    store.mark_many_sent(["2017-01-fidele", "digest:a,b"])
    store.save_send_position("2017-01-fidele", 1197)


def contents(store):
    return (store.subscribers_after(0, 10_000), store.send_states(), sorted(store.emails()), store.memberships(),
            store.send_ranges("2026-11-billet"))


def test_sqlite_to_postgres_and_back_keeps_everything(tmp_path, postgres_server):
    source, back = tmp_path / "abonnes.sqlite3", tmp_path / "retour.sqlite3"
    url = postgres_server.new_database()
    with open_store(source) as store:
        fill(store)
        before = contents(store)
    untouched = digest(source)

    result = migrate(source, url)
    assert result.returncode == 0, result.stderr
    assert "1197 abonné(s) et 3 envoi(s) copiés" in result.stdout
    assert digest(source) == untouched
    with open_store(url) as store:
        assert contents(store) == before
        assert "LECTEUR7@exemple.fr" in store
        top = store.high_water()
        assert top == before[0][-1][0]  # the source's highest id
        store.add("nouveau@exemple.fr")  # after it
        assert store.subscribers_after(top, 10) == [(top + 1, "nouveau@exemple.fr")]
        store.remove("nouveau@exemple.fr")
        with_new = contents(store)

    result = migrate(url, back)
    assert result.returncode == 0, result.stderr
    with open_store(back) as store:
        assert contents(store) == with_new
        store.add("suivant@exemple.fr")  # top + 1 was handed out (then removed) in PostgreSQL
        assert store.subscribers_after(top, 10) == [(top + 2, "suivant@exemple.fr")]


@pytest.mark.parametrize("direction", ["to_postgres", "to_sqlite"])
def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(tmp_path, postgres_server, direction):
    sqlite_path, url = tmp_path / "abonnes.sqlite3", postgres_server.new_database()
    source, target = (sqlite_path, url) if direction == "to_postgres" else (url, sqlite_path)
    with open_store(source) as store:
        fill(store)
    with open_store(target) as store:
        store.add("deja@exemple.fr")
        before = contents(store)
    result = migrate(source, target)
    assert result.returncode == 1
    assert "n’est pas vide" in result.stderr and "rien n’a été copié" in result.stderr
    with open_store(target) as store:
        assert contents(store) == before


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_error_half_way_leaves_the_target_empty(store_url, backend):
    def rows():
        for n in range(1, 2001):
            if n == 1000:
                raise RuntimeError("disque plein")
            yield n, f"lecteur{n}@exemple.fr"

    with open_store(store_url) as store:
        with pytest.raises(RuntimeError, match="disque plein"):
            store.load_copy(2000, rows(), {"billet": (999, False)})
        assert store.count() == 0 and store.send_states() == {}
        assert store.load_copy(0, iter([(5, "a@exemple.fr")]), {}) == 1  # and it is still usable


# Copies 1,000 rows into the target, says so, then waits to be killed inside the transaction.
KILLED_COPY = """
import sys
from newsletter.store import open_store
def rows():
    for n in range(1, 100_001):
        if n == 1000:
            print("halfway", flush=True)
            sys.stdin.readline()
        yield n, f"lecteur{n}@exemple.fr"
store = open_store(sys.argv[1])
store.load_copy(100_000, rows(), {"billet": (5, True)})
"""


def test_a_copy_killed_half_way_leaves_the_target_empty(store_url):
    open_store(store_url).close()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_COPY, store_url], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "halfway"
        proc.kill()  # kill -9
        proc.wait(10)
    finally:
        proc.stdin.close()
        proc.stdout.close()
    with open_store(store_url) as store:
        assert store.count() == 0 and store.send_states() == {} and store.high_water() == 0


def test_a_missing_source_file_is_named_and_no_target_file_is_made(tmp_path):
    result = migrate(tmp_path / "absent.sqlite3", tmp_path / "cible.sqlite3")
    assert result.returncode == 1 and "absent.sqlite3 n’existe pas" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_same_store_twice_is_refused(tmp_path):
    with pytest.raises(StoreError, match="même base"):
        from newsletter.migrate import migrate as copy
        copy(str(tmp_path / "a.sqlite3"), str(tmp_path / "a.sqlite3"))


def test_make_migrate_store_passes_from_and_to():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "migrate-store", "FROM=var/a.sqlite3",
                          "TO=postgresql://lettre@localhost/lettre"], cwd=ROOT, capture_output=True, text=True)
    assert 'invoke migrate-store --source "var/a.sqlite3" --target "postgresql://lettre@localhost/lettre"' in dry.stdout
