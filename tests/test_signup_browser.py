"""A real Chromium subscribes through the home page, with and without JavaScript,
against the dev server (site + service on one port) on a freshly built site."""
import email
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from email.policy import default as default_policy
from pathlib import Path

import pytest

from newsletter.signing import Signer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SECRET = "secret-du-navigateur-" + "n" * 20
LINK = re.compile(r"https?://\S+/newsletter/confirmer/[\w.\-]+")


# What the devserver prints: once it listens, and for each confirmation mail it writes.
LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
MAIL_WRITTEN = re.compile(r"mail de confirmation écrit dans (\S+\.eml) ; lien : (\S+)")


class ChildLines:
    """The lines a child process prints, read by a thread as they come; a test waits for one of
    them instead of polling or sleeping."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern, count: int = 1, timeout: float = 30) -> list[re.Match]:
        """The first `count` matches of `pattern` in the printed lines, once they are there."""
        def found():
            return [m for m in map(pattern.search, self.lines) if m]
        with self._changed:
            self._changed.wait_for(lambda: len(found()) >= count or self.ended, timeout)
            matches = found()
            assert len(matches) >= count, f"expected {count} line(s) matching {pattern.pattern!r}:\n" \
                + "".join(self.lines)
            return matches[:count]

    def join(self, timeout: float = 30) -> str:
        self._thread.join(timeout)
        return "".join(self.lines)


@dataclass
class DevServer:
    base: str
    folder: Path
    printed: ChildLines

    def mails(self, count: int) -> list[tuple[email.message.EmailMessage, str]]:
        """The first `count` confirmation mails, in the order the server wrote them (its log says
        which file each went to), each with the link it printed for the developer."""
        written = self.printed.wait_for(MAIL_WRITTEN, count)
        return [(email.message_from_bytes(Path(m[1]).read_bytes(), policy=default_policy), m[2]) for m in written]


@pytest.fixture
def devserver(site, tmp_path):
    """python -m sitebuild.devserver on a free port, with its own database and outbox."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    output = tmp_path / "output"
    shutil.copytree(site, output)
    env = {**os.environ, "NEWSLETTER_DB": str(tmp_path / "abonnes.sqlite3"),
           "NEWSLETTER_OUTBOX": str(tmp_path / "outbox"), "NEWSLETTER_SECRET": SECRET, "PORT": str(port)}
    env.pop("SMTP_URL", None)
    env.pop("PUBLIC_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "sitebuild.devserver", "--port", str(port),
                             "--output", str(output), "--no-watch"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed = ChildLines(proc.stdout)
    try:
        (listening,) = printed.wait_for(LISTENING)  # uvicorn says so once the socket accepts connections
        assert int(listening[1]) == port
        yield DevServer(f"http://127.0.0.1:{port}", tmp_path, printed)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()  # no-op when it has already exited
            printed.join()
            proc.stdout.close()


def db_rows(db: Path) -> list:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT email FROM subscribers").fetchall()
    finally:
        con.close()


def submit_signup(page, base, address, javascript):
    page.goto(base + "/")
    form = page.locator("form.signup").first
    form.locator("input[name=email]").fill(address)
    form.get_by_role("button", name="S’abonner").click()
    if javascript:
        result = page.locator(".signup-result").first
        result.filter(has_text="e-mail de confirmation").wait_for(timeout=10_000)
        assert page.url == base + "/"  # answered in place
        assert form.is_hidden()
    else:
        page.wait_for_url(base + "/newsletter/verifiez/")
        assert "Vérifiez votre boîte mail" in page.locator("h1").inner_text()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_subscribe_confirm_unsubscribe(browser, devserver, javascript):
    base, folder = devserver.base, devserver.folder
    db = folder / "abonnes.sqlite3"
    address = f"lecteur.{'js' if javascript else 'sansjs'}+lettre@exemple.fr"
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    requests_elsewhere = []
    page.on("request", lambda r: r.url.startswith(base) or requests_elsewhere.append(r.url))

    submit_signup(page, base, address, javascript)
    ((mail, printed_link),) = devserver.mails(1)
    assert mail["To"] == address and mail["Subject"] == "Confirmez votre inscription à égoBlog"
    link = LINK.search(mail.get_body(("plain",)).get_content()).group(0)
    assert link.startswith(base + "/newsletter/confirmer/")
    assert printed_link == link  # without SMTP_URL, the developer gets the link in the console
    assert db_rows(db) == []

    page.goto(link)
    assert db_rows(db) == []  # opening the link is not consenting
    page.get_by_role("button", name="Confirmer mon inscription").click()
    page.wait_for_url(base + "/newsletter/confirme/")
    assert "Inscription confirmée" in page.locator("h1").inner_text()
    con = sqlite3.connect(db)
    assert [r[1] for r in con.execute("PRAGMA table_info(subscribers)")] == ["id", "email"]  # the address and a counter, nothing else
    con.close()
    assert db_rows(db) == [(address,)]

    # A second signup: the same answer, and nothing changes.
    submit_signup(page, base, address, javascript)
    (_, (again, _)) = devserver.mails(2)
    assert again["To"] == address
    assert db_rows(db) == [(address,)]

    page.goto(f"{base}/newsletter/desinscription/{Signer([SECRET]).unsubscribe_token(address)}")
    page.get_by_role("button", name="Me désinscrire").click()
    page.wait_for_url(base + "/newsletter/desinscrit/")
    assert db_rows(db) == []
    for f in folder.glob("abonnes.sqlite3*"):
        data = f.read_bytes()
        assert address.encode() not in data and b"lecteur." not in data, f.name
    assert requests_elsewhere == [], "no third-party request"
    assert context.cookies() == []
    context.close()


def test_error_shown_in_place_with_javascript(browser, devserver):
    base = devserver.base
    context = browser.new_context()
    page = context.new_page()
    page.goto(base + "/")
    form = page.locator("form.signup").first
    # The browser's own check would stop "x@localhost"? No: type=email accepts it; the service refuses it.
    form.locator("input[name=email]").fill("lecteur@localhost")
    form.get_by_role("button", name="S’abonner").click()
    page.locator(".signup-result").first.filter(has_text="ne peut pas recevoir").wait_for(timeout=10_000)
    assert form.is_visible() and form.get_by_role("button", name="S’abonner").is_enabled()
    context.close()


def test_error_page_without_javascript(browser, devserver):
    base = devserver.base
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base + "/")
    form = page.locator("form.signup").first
    form.locator("input[name=email]").fill("lecteur@localhost")
    form.get_by_role("button", name="S’abonner").click()
    page.wait_for_url(base + "/newsletter/inscription")
    assert "ne peut pas recevoir" in page.locator("[role=alert]").inner_text()
    context.close()
