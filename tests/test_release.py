"""make release end to end: a real build with publishconf-like settings, a deploy over a real sshd on
127.0.0.1, a send to a real SMTP sink; twice in a row, with a draft, a scheduled post, a failure, a lock."""
import email
import email.policy
import fcntl
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from newsletter.store import open_store
from tests.conftest import ROOT
from tests.fixtures.mail.support import Recorder, start_server
from tests.fixtures.sshd import free_port, running_sshd

READERS = ["lectrice@exemple.fr", "lecteur@exemple.org", "abonne@exemple.net"]
SETTINGS = """\
import sys
sys.path.insert(0, {root!r})
from pelicanconf import *  # noqa
PATH = {folder!r} + "/content"
OUTPUT_PATH = {folder!r} + "/output"
CACHE_PATH = {folder!r} + "/cache"
MAIL_POSTS_PATH = {folder!r} + "/posts"
THEME = {root!r} + "/theme"
PLUGIN_PATHS = [{root!r} + "/plugins"]
PUBLIC_URL = "https://blog.example.fr"
"""
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()
NEXT_YEAR = (date.today() + timedelta(days=366)).isoformat()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with running_sshd(tmp_path_factory.mktemp("sshd-release")) as server:
        yield server


@pytest.fixture
def smtp():
    handler = Recorder()
    server = start_server(handler)
    yield handler, server.port
    server.stop()


class Blog:
    def __init__(self, folder: Path, sshd, smtp_port: int):
        self.folder = folder
        (folder / "content" / "posts").mkdir(parents=True)
        (folder / "settings.py").write_text(SETTINGS.format(root=str(ROOT), folder=str(folder)))
        self.site = folder / "serveur"
        self.env = {**os.environ, **sshd.env(), "DEPLOY_TARGET": sshd.target(self.site),
                    "SITEURL": "https://blog.example.fr", "NEWSLETTER_SECRET": "release-" + "r" * 32,
                    "NEWSLETTER_FROM": "égoBlog <lettre@blog.example.fr>",
                    "NEWSLETTER_DB": str(folder / "abonnes.sqlite3"), "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                    "RELEASE_STATE": str(folder / "state")}
        with open_store(folder / "abonnes.sqlite3") as store:
            store.add_many(READERS)

    def post(self, slug: str, title: str, day: str, status: str = "") -> Path:
        path = self.folder / "content" / "posts" / f"{slug}.md"
        path.write_text(f"Title: {title}\nDate: {day} 09:00\nSlug: {slug}\nCategory: Humeurs Marketing\n"
                        + (f"Status: {status}\n" if status else "")
                        + f"Summary: Résumé de « {title} ».\n\nLe corps du billet « {title} », avec un lien.\n")
        return path

    def release(self, **env) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sitebuild.release", "--settings",
                               str(self.folder / "settings.py")], cwd=ROOT, env={**self.env, **env},
                              capture_output=True, text=True, timeout=300)

    def live(self) -> str:
        """Every byte the web server serves, as text."""
        current = self.site / "current"
        return "\n".join(p.read_text(errors="replace") for p in current.rglob("*") if p.is_file())


def subjects(handler) -> list[tuple[str, str]]:
    found = []
    for _, rcpts, content in handler.envelopes:
        msg = email.message_from_bytes(content, policy=email.policy.default)
        found += [(rcpt, msg["Subject"]) for rcpt in rcpts]
    return sorted(found)


@pytest.fixture
def blog(tmp_path, sshd, smtp):
    return Blog(tmp_path, sshd, smtp[1])


def test_release_twice_mails_each_new_post_once_and_then_says_nothing_to_do(blog, smtp):
    handler, _ = smtp
    blog.post("archive-un", "Premier billet d’archive", "2019-05-12")
    blog.post("archive-deux", "Second billet d’archive", "2020-01-03")
    blog.post("brouillon", "Un brouillon secret", YESTERDAY, status="draft")
    scheduled = blog.post("programme", "Le billet programmé", NEXT_YEAR)

    first = blog.release()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "First make send on this blog" in first.stdout  # the archive is recorded, not mailed
    assert handler.envelopes == []
    live = blog.live()
    assert "Premier billet d’archive" in live and "Second billet d’archive" in live
    assert "brouillon" not in live.lower() and "programmé" not in live.lower()

    again = blog.release()
    assert again.returncode == 0 and "Nothing new since the last release" in again.stdout, again.stdout
    assert "skipped" in again.stdout and handler.envelopes == []

    blog.post("nouveau", "Un billet tout neuf", YESTERDAY)
    third = blog.release()
    assert third.returncode == 0, third.stdout + third.stderr
    assert "Un billet tout neuf" in blog.live()
    assert subjects(handler) == sorted((r, "Un billet tout neuf") for r in READERS)

    fourth = blog.release()
    assert "Nothing new since the last release" in fourth.stdout
    assert len(handler.envelopes) == 3

    # The scheduled post's date passes (here: its date is set in the past); the next run publishes and mails it.
    scheduled.write_text(scheduled.read_text().replace(NEXT_YEAR, YESTERDAY))
    fifth = blog.release()
    assert fifth.returncode == 0, fifth.stdout + fifth.stderr
    assert "Le billet programmé" in blog.live()
    assert [s for s in subjects(handler) if s[1] == "Le billet programmé"] == sorted(
        (r, "Le billet programmé") for r in READERS)
    assert "brouillon secret" not in blog.live()


def test_a_failed_deploy_stops_before_any_mail_and_the_next_run_finishes(blog, smtp, sshd):
    handler, _ = smtp
    blog.post("archive", "Un billet d’archive", "2019-05-12")
    assert blog.release().returncode == 0
    blog.post("nouveau", "Le nouveau billet", YESTERDAY)
    failed = blog.release(DEPLOY_SSH_PORT=str(free_port()))  # nothing listens there
    assert failed.returncode == 1
    assert "stopped at step 2/3 (deploy)" in failed.stderr and "nothing was mailed" in failed.stderr
    assert handler.envelopes == [] and "Le nouveau billet" not in blog.live()
    fixed = blog.release()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Le nouveau billet" in blog.live() and len(handler.envelopes) == 3


def test_a_build_error_stops_the_release_and_the_live_site_stays(blog, smtp):
    handler, _ = smtp
    blog.post("archive", "Un billet d’archive", "2019-05-12")
    assert blog.release().returncode == 0
    before = blog.live()
    broken = blog.post("casse", "Un billet", YESTERDAY)
    broken.write_text("Title: Un billet\nDate: pas une date\n\nCorps.\n")
    failed = blog.release()
    assert failed.returncode == 1 and "stopped at step 1/3 (build" in failed.stderr
    assert blog.live() == before and handler.envelopes == []


def test_a_second_release_while_one_runs_does_nothing(blog, smtp):
    state = blog.folder / "state"
    state.mkdir()
    with open(state / "release.lock", "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        second = blog.release()
    assert second.returncode == 0 and "Another make release is running" in second.stdout
    assert not (blog.folder / "output").exists() and not (blog.site / "current").exists()
    assert smtp[0].envelopes == []
