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
import time
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest

from newsletter.signing import Signer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SECRET = "secret-du-navigateur-" + "n" * 20
LINK = re.compile(r"https?://\S+/newsletter/confirmer/[\w.\-]+")


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
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("devserver did not start:\n" + proc.communicate()[0])
        time.sleep(0.1)
    yield base, tmp_path
    proc.terminate()
    log = proc.communicate(timeout=30)[0]
    assert "Lien" in log or "lien" in log  # the confirmation link was printed for the developer


def wait_for_mails(outbox: Path, count: int) -> list:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        files = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if outbox.exists() else []
        if len(files) >= count:
            return [email.message_from_bytes(f.read_bytes(), policy=default_policy) for f in files]
        time.sleep(0.05)
    raise AssertionError(f"{count} mail(s) expected in {outbox}")


def db_rows(db: Path) -> list:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT * FROM subscribers").fetchall()
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
    base, folder = devserver
    db, outbox = folder / "abonnes.sqlite3", folder / "outbox"
    address = f"lecteur.{'js' if javascript else 'sansjs'}+lettre@exemple.fr"
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    requests_elsewhere = []
    page.on("request", lambda r: r.url.startswith(base) or requests_elsewhere.append(r.url))

    submit_signup(page, base, address, javascript)
    (mail,) = wait_for_mails(outbox, 1)
    assert mail["To"] == address and mail["Subject"] == "Confirmez votre inscription à égoBlog"
    link = LINK.search(mail.get_body(("plain",)).get_content()).group(0)
    assert link.startswith(base + "/newsletter/confirmer/")
    assert db_rows(db) == []

    page.goto(link)
    assert db_rows(db) == []  # opening the link is not consenting
    page.get_by_role("button", name="Confirmer mon inscription").click()
    page.wait_for_url(base + "/newsletter/confirme/")
    assert "Inscription confirmée" in page.locator("h1").inner_text()
    con = sqlite3.connect(db)
    assert [r[1] for r in con.execute("PRAGMA table_info(subscribers)")] == ["email"]
    con.close()
    assert db_rows(db) == [(address,)]

    # A second signup: the same answer, and nothing changes.
    submit_signup(page, base, address, javascript)
    wait_for_mails(outbox, 2)
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
    base, _ = devserver
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
    base, _ = devserver
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base + "/")
    form = page.locator("form.signup").first
    form.locator("input[name=email]").fill("lecteur@localhost")
    form.get_by_role("button", name="S’abonner").click()
    page.wait_for_url(base + "/newsletter/inscription")
    assert "ne peut pas recevoir" in page.locator("[role=alert]").inner_text()
    context.close()
