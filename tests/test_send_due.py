"""`make send` without POST (every post due, once, oldest first) and the test send (`TO=`):
real Pelican builds of a small blog, a real SQLite store, a real aiosmtpd server on 127.0.0.1."""
import email
import email.policy
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from blogcore.records import RecordsWriter, read_record, read_records
from newsletter.app import create_app
from newsletter.config import Config
from newsletter.ratelimit import NO_LIMITS
from newsletter.sender import BASELINE, MAX_DUE, send, send_due, send_test
from newsletter.serving import serve_in_thread
from newsletter.store import open_store
from tests.conftest import ROOT, build
from tests.fixtures.mail.support import Recorder, environ, start_server, write_settings
from tests.test_sender import HoldAt

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)  # the sender's clock in these tests
READERS = [f"lectrice{n:02d}@exemple.fr" for n in range(5)]
ARCHIVE = [("premier-billet", "2019-01-10 09:00", "Premier billet"),
           ("deuxieme-billet", "2019-02-10 09:00", "Deuxième billet"),
           ("troisieme-billet", "2019-03-10 09:00", "Troisième billet")]


class Blog:
    """A blog in a temporary folder: its content, its build (records in posts/), its store of READERS."""

    def __init__(self, folder: Path, readers=READERS):
        self.folder, self.content = folder, folder / "content"
        (self.content / "posts").mkdir(parents=True)
        write_settings(folder, self.content)
        with open_store(self.db) as store:
            for address in readers:
                store.add(address)

    @property
    def db(self) -> Path:
        return self.folder / "subscribers.sqlite3"

    def write(self, slug: str, date: str, title: str) -> None:
        (self.content / "posts" / f"{slug}.md").write_text(
            f"Title: {title}\nDate: {date}\nSlug: {slug}\nSummary: Le résumé de « {title} ».\n\n"
            f"Le texte de « {title} », en entier.\n", encoding="utf-8")

    def build(self) -> None:
        build(self.content, self.folder / "output", settings=str(self.folder / "settings.py"))

    def config(self, smtp=None) -> Config:
        url = f"smtp://127.0.0.1:{smtp.port}" if smtp else None
        return Config.from_env(environ=environ(self.folder, url))

    def env(self, smtp=None, **extra) -> dict:
        url = f"smtp://127.0.0.1:{smtp.port}" if smtp else None
        return {**os.environ, **environ(self.folder, url, **extra)}

    def due(self, smtp=None, now=NOW, **options):
        """`make send` without POST, in-process: (exit status, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        status = send_due(self.config(smtp), now=now, out=out, err=err, **options)
        return status, out.getvalue(), err.getvalue()

    def states(self) -> dict:
        with open_store(self.db) as store:
            return store.send_states()

    def files(self) -> dict:
        """Every file of the store (database, WAL, lock) with its bytes."""
        return {p.name: p.read_bytes() for p in self.folder.iterdir() if p.name.startswith(self.db.name)}


@pytest.fixture
def blog(tmp_path):
    """A blog of three published posts, built, whose newsletter never ran `make send`."""
    blog = Blog(tmp_path)
    for slug, date, title in ARCHIVE:
        blog.write(slug, date, title)
    blog.build()
    return blog


@pytest.fixture
def started(blog):
    """The same blog after its first `make send` (the archive recorded)."""
    assert blog.due()[0] == 0
    return blog


@pytest.fixture
def smtp():
    server = start_server(Recorder())
    yield server
    server.stop()


def subjects(handler) -> list[str]:
    return [email.message_from_bytes(raw, policy=email.policy.default)["Subject"] for _, _, raw in handler.envelopes]


# -- the first run ------------------------------------------------------------------------


def test_the_first_run_records_the_archive_mails_nothing_and_says_so(blog, smtp):
    status, out, err = blog.due(smtp)
    assert status == 0, err
    assert smtp.handler.envelopes == []
    assert "3 published post(s) are now recorded as already sent; nobody is mailed the archive" in out
    assert "The next new post will be mailed once to every subscriber" in out
    assert blog.states() == {**{slug: (0, True) for slug, _, _ in ARCHIVE}, BASELINE: (0, True)}
    # The marker is about the blog: the sends table holds no address, nothing about a person.
    db = sqlite3.connect(blog.db)
    rows = db.execute("SELECT * FROM sends").fetchall()
    db.close()
    assert not any("@" in str(value) for row in rows for value in row)


def test_a_new_post_is_sent_once_then_there_is_nothing_to_send(started, smtp):
    started.write("nouveau-billet", "2024-12-20 08:00", "Un nouveau billet")
    started.build()
    status, out, err = started.due(smtp)
    assert status == 0, err
    assert Counter(smtp.handler.recipients) == Counter(READERS)
    assert subjects(smtp.handler) == ["Un nouveau billet"] * len(READERS)
    assert "First make send" not in out and "nouveau-billet is recorded as sent" in out

    # The second run, as make release runs it: the stable interface, in its own process.
    again = subprocess.run([sys.executable, "-m", "newsletter.sender"], cwd=ROOT, env=started.env(smtp),
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "Nothing to send" in again.stdout
    assert len(smtp.handler.envelopes) == len(READERS)


def test_two_posts_due_go_oldest_first_each_as_its_own_mail(started, smtp):
    # Slugs in the opposite order to the dates: the order must come from the dates.
    started.write("a-plus-recent", "2024-11-02 08:00", "Le plus récent")
    started.write("z-plus-ancien", "2024-11-01 08:00", "Le plus ancien")
    started.build()
    status, _, err = started.due(smtp)
    assert status == 0, err
    assert subjects(smtp.handler) == ["Le plus ancien"] * len(READERS) + ["Le plus récent"] * len(READERS)
    assert Counter(smtp.handler.recipients) == Counter(READERS * 2)
    assert started.states()["a-plus-recent"][1] and started.states()["z-plus-ancien"][1]


def test_an_old_dated_post_published_after_the_first_run_is_mailed(started, smtp):
    # Kept as a draft for years, published with its first date: it is new to the readers.
    started.write("sorti-du-tiroir", "2015-06-01 08:00", "Sorti du tiroir")
    started.build()
    assert started.due(smtp)[0] == 0
    assert subjects(smtp.handler) == ["Sorti du tiroir"] * len(READERS)


# -- dry run --------------------------------------------------------------------------------


def test_dry_run_of_the_first_run_changes_nothing(blog, smtp):
    before = blog.files()
    result = subprocess.run([sys.executable, "-m", "newsletter.sender"], cwd=ROOT, env=blog.env(smtp, DRY_RUN="1"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "3 published post(s) would be recorded as already sent" in result.stdout
    assert blog.files() == before
    assert smtp.handler.envelopes == []


def test_dry_run_lists_what_would_go_and_changes_nothing(started, smtp):
    started.write("billet-d-hiver", "2024-12-01 08:00", "Billet d’hiver")
    started.write("billet-de-noel", "2024-12-24 08:00", "Billet de Noël")
    started.build()
    before = started.files()
    status, out, err = started.due(smtp, dry_run=True)
    assert status == 0, err
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert lines == ["  2024-12-01 08:00  « Billet d’hiver »  billet-d-hiver  → 5 readers",
                     "  2024-12-24 08:00  « Billet de Noël »  billet-de-noel  → 5 readers"]
    assert "DRY RUN: nothing is sent, nothing recorded. 2 post(s) due" in out
    assert started.files() == before
    assert smtp.handler.envelopes == []


# -- interrupted, refused, guarded ------------------------------------------------------------


def test_a_killed_due_send_resumes_and_everyone_gets_each_post_once(tmp_path):
    readers = [f"lecteur{n:02d}@exemple.fr" for n in range(30)]
    blog = Blog(tmp_path, readers)
    blog.write("ancien", "2019-01-01 08:00", "Ancien")
    blog.build()
    assert blog.due()[0] == 0
    blog.write("premier-nouveau", "2024-10-01 08:00", "Premier nouveau")
    blog.write("second-nouveau", "2024-10-02 08:00", "Second nouveau")
    blog.build()
    handler = HoldAt(12)  # killed while the 12th mail of the first post is in flight
    server = start_server(handler)
    command = [sys.executable, "-m", "newsletter.sender"]
    try:
        sender = subprocess.Popen(command, cwd=ROOT, env=blog.env(server), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            assert handler.held.wait(60), "the sender never reached message 12"
            sender.send_signal(signal.SIGKILL)
            sender.communicate(timeout=30)
        finally:
            handler.release.set()
        assert sender.returncode == -signal.SIGKILL
        in_flight = handler.recipients[-1]
        with open_store(blog.db) as store:  # position (id) of the 11th reader, saved in the one range
            assert store.send_ranges("premier-nouveau") == [(0, None, 11)]

        again = subprocess.run(command, cwd=ROOT, env=blog.env(server), capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "Resuming premier-nouveau after subscriber position 11: 19 to go" in again.stdout
    finally:
        handler.release.set()
        server.stop()
    first = [r for (_, rcpts, raw), r in zip(handler.envelopes, handler.recipients)
             if email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == "Premier nouveau"]
    assert in_flight == readers[11]
    assert Counter(first) == Counter(readers + [in_flight])  # once each, the one in flight twice
    assert Counter(handler.recipients) == Counter(readers * 2 + [in_flight])
    assert subjects(handler)[-1] == "Second nouveau"  # and only after the first post was finished


def test_a_post_sent_with_POST_is_not_sent_again_by_make_send(started, smtp):
    started.write("envoye-a-la-main", "2024-12-01 08:00", "Envoyé à la main")
    started.build()
    assert send(["envoye-a-la-main"], started.config(smtp), now=NOW, out=io.StringIO(), err=io.StringIO()) == 0
    status, out, _ = started.due(smtp)
    assert status == 0 and "Nothing to send" in out
    assert len(smtp.handler.envelopes) == len(READERS)


def test_an_interrupted_digest_must_be_finished_first(started, smtp):
    started.write("billet-un", "2024-12-01 08:00", "Billet un")
    started.write("billet-deux", "2024-12-02 08:00", "Billet deux")
    started.build()
    with open_store(started.db) as store:
        store.save_send_position("billet-un,billet-deux", 2)  # a digest stopped after two readers
    status, _, err = started.due(smtp)
    assert status == 1 and "make send POST=billet-un,billet-deux" in err
    assert smtp.handler.envelopes == []


def test_more_new_posts_than_max_due_at_once_send_nothing_until_the_author_decides(started, smtp):
    for n in range(MAX_DUE + 1):  # an archive imported after the newsletter started
        started.write(f"importe-{n}", f"2012-01-{n + 1:02d} 08:00", f"Importé {n}")
    started.build()
    status, _, err = started.due(smtp)
    assert status == 1 and f"{MAX_DUE + 1} posts are due at once" in err and "Nothing was sent" in err
    assert "importe-0" in err and "--skip-due" in err
    assert smtp.handler.envelopes == []
    status, out, _ = started.due(smtp, skip=True)
    assert status == 0 and f"{MAX_DUE + 1} post(s) recorded as sent without mailing anyone" in out
    status, out, _ = started.due(smtp)
    assert status == 0 and "Nothing to send" in out and smtp.handler.envelopes == []


def test_no_records_is_a_clear_error_not_an_empty_archive(tmp_path, smtp):
    blog = Blog(tmp_path)  # never built
    result = subprocess.run([sys.executable, "-m", "newsletter.sender"], cwd=ROOT, env=blog.env(smtp),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "run make build" in result.stderr and "Traceback" not in result.stderr
    assert BASELINE not in blog.states()


# -- dates in the future ----------------------------------------------------------------------


def add_record(blog: Blog, slug: str, date: str, title: str) -> None:
    """A record as the build writes it (blogcore.records), for a post the build would leave out."""
    source = blog.content / "posts" / "premier-billet.md"
    folder = blog.folder / "posts"
    record, _ = read_record(folder, "premier-billet")
    writer = RecordsWriter(folder)
    writer.put("added-by-the-test", {**record, "slug": slug, "date": date, "title": title, "title_text": title,
                                     "url": record["url"].replace("premier-billet", slug),
                                     "source_path": str(source)})
    writer.commit()


def test_a_future_dated_record_is_never_sent_before_its_date(blog, smtp):
    add_record(blog, "programme", "2025-03-01T08:00:00+01:00", "Programmé")
    status, out, _ = blog.due(smtp)  # first run: the future post is not archive
    assert status == 0 and "3 published post(s) are now recorded" in out
    assert "Not yet: programme is dated 2025-03-01 08:00, in the future" in out
    status, out, _ = blog.due(smtp)
    assert status == 0 and "Nothing to send" in out and smtp.handler.envelopes == []
    err = io.StringIO()
    assert send(["programme"], blog.config(smtp), now=NOW, out=io.StringIO(), err=err) == 1
    assert "in the future" in err.getvalue() and smtp.handler.envelopes == []
    assert "programme" not in blog.states()

    status, _, err = blog.due(smtp, now=datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc))  # its date has passed
    assert status == 0, err
    assert subjects(smtp.handler) == ["Programmé"] * len(READERS)


# -- the test send ------------------------------------------------------------------------------


def body(raw: bytes) -> str:
    """The text part, with the reader's own unsubscribe link blanked."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return re.sub(r"/desinscription/\S+", "/desinscription/…", msg.get_body(("plain",)).get_content())


def test_a_test_send_reaches_one_address_records_nothing_and_is_what_readers_get(started, smtp):
    started.write("a-relire", "2024-12-01 08:00", "À relire avant l’envoi")
    started.build()
    before = started.files()
    out, err = io.StringIO(), io.StringIO()
    status = send_test(["a-relire"], "Moi@Exemple.fr", started.config(smtp), out=out, err=err)
    assert status == 0, err.getvalue()
    assert "sent to Moi@exemple.fr only" in out.getvalue()
    assert smtp.handler.recipients == ["Moi@exemple.fr"]
    assert started.files() == before  # no send position, no lock file, not a byte changed

    # Still due for the readers, who then get the same mail (only To and the unsubscribe token differ).
    assert started.due(smtp)[0] == 0
    assert Counter(smtp.handler.recipients) == Counter(["Moi@exemple.fr"] + READERS)
    test_mail, reader_mail = smtp.handler.envelopes[0][2], smtp.handler.envelopes[1][2]
    assert body(test_mail) == body(reader_mail)
    test_msg = email.message_from_bytes(test_mail, policy=email.policy.default)
    reader_msg = email.message_from_bytes(reader_mail, policy=email.policy.default)
    for header in ("Subject", "From", "Reply-To", "List-Id", "List-Unsubscribe-Post", "Content-Type"):
        assert test_msg[header].split(";")[0] == reader_msg[header].split(";")[0], header
    assert test_msg["To"] == "Moi@exemple.fr" and reader_msg["To"] in READERS


def test_the_unsubscribe_link_of_a_test_send_is_harmless_and_french(started, smtp):
    assert send_test(["premier-billet"], "moi@exemple.fr", started.config(smtp),
                     out=io.StringIO(), err=io.StringIO()) == 0
    msg = email.message_from_bytes(smtp.handler.envelopes[0][2], policy=email.policy.default)
    link = re.search(r"<(https://blog\.example\.fr(/newsletter/desinscription/[^>]+))>", msg["List-Unsubscribe"])
    assert link.group(1) in msg.get_body(("plain",)).get_content()
    with serve_in_thread(create_app(started.config(smtp), limits=NO_LIMITS)) as url, \
            httpx.Client(base_url=url, timeout=20) as client:
        page = client.get(link.group(2))
        assert page.status_code == 200 and "Me désinscrire" in page.text and "moi@exemple.fr" in page.text
        one_click = client.post(link.group(2), data={"List-Unsubscribe": "One-Click"})  # RFC 8058, as mail apps do
        assert one_click.status_code == 200 and "désinscrit" in one_click.text
    with open_store(started.db) as store:
        assert sorted(store.emails()) == sorted(READERS)  # the author was no subscriber; nobody else was touched


def test_a_test_send_to_an_invalid_address_is_a_clear_error(started, smtp):
    before = started.files()
    result = subprocess.run([sys.executable, "-m", "newsletter.sender", "premier-billet", "--to", "moi@exemple"],
                            cwd=ROOT, env=started.env(smtp), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "TO='moi@exemple'" in result.stderr and "ne peut pas recevoir de courrier" in result.stderr
    assert "Traceback" not in result.stderr
    assert smtp.handler.envelopes == [] and started.files() == before


def test_make_send_with_post_and_to_goes_through_the_task(started, smtp):
    # tasks.py's send task, as the Makefile calls it (POST, TO; DRY_RUN from the environment).
    before = started.files()
    command = [sys.executable, "-m", "invoke", "send", "--post", "deuxieme-billet", "--to", "moi@exemple.fr"]
    result = subprocess.run(command, cwd=ROOT, env=started.env(smtp), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert smtp.handler.recipients == ["moi@exemple.fr"] and subjects(smtp.handler) == ["Deuxième billet"]
    dry = subprocess.run([sys.executable, "-m", "invoke", "send", "--post", "", "--to", ""], cwd=ROOT,
                         env=started.env(smtp, DRY_RUN="1"), capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "Nothing to send" in dry.stdout, dry.stderr
    assert started.files() == before


def test_read_records_reads_every_record_at_once(blog):
    records = read_records(blog.folder / "posts")
    assert sorted(r["slug"] for r in records) == sorted(slug for slug, _, _ in ARCHIVE)
    assert read_record(blog.folder / "posts", "premier-billet")[0] in records
    assert read_records(blog.folder / "nowhere") is None
