"""make serve's live reload, in a real Chromium: an open page shows a saved edit by itself; production pages
carry no reload script."""
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_signup_browser import LISTENING, ChildLines

pytestmark = pytest.mark.browser

POST = "posts/2015-11-le-cr-aime.md"
POST_URL = "/2015/11/le-cr-aime/"
ADDED = "Une phrase ajoutée pendant que la page était ouverte."


@dataclass
class DevServer:
    base: str
    content: Path


@pytest.fixture
def devserver(tmp_path):
    """python -m sitebuild.devserver, watching its own copy of content/, with its own store and outbox."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    env = {**os.environ, "NEWSLETTER_DB": str(tmp_path / "abonnes.sqlite3"),
           "NEWSLETTER_OUTBOX": str(tmp_path / "outbox"),
           "NEWSLETTER_SECRET": "secret-du-rechargement-" + "r" * 20, "PORT": str(port)}
    env.pop("SMTP_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "sitebuild.devserver", "--port", str(port),
                             "--output", str(tmp_path / "site"), "--content", str(content)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    printed = ChildLines(proc.stdout)
    try:
        printed.wait_for(LISTENING)
        yield DevServer(f"http://127.0.0.1:{port}", content)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)  # an open event stream must not keep it running
        finally:
            proc.kill()
            printed.join()
            proc.stdout.close()
    assert proc.returncode == 0 or proc.returncode == -15, printed.join()


def test_an_open_page_shows_a_saved_edit_by_itself(browser, devserver):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    console_errors = []  # a CSP refusal (inline script, other origin) is reported here
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    with page.expect_response(lambda response: "/_dev/events" in response.url) as stream:
        response = page.goto(devserver.base + POST_URL)
    assert stream.value.ok and stream.value.headers["content-type"].startswith("text/event-stream")
    assert response.headers["content-security-policy"].startswith("default-src 'self';")
    text = page.locator("article.post .content")
    expect(text).not_to_contain_text(ADDED)

    source = devserver.content / POST
    source.write_text(source.read_text(encoding="utf-8") + f"\n{ADDED}\n", encoding="utf-8")

    expect(text).to_contain_text(ADDED, timeout=30_000)  # no reload from the test: the page did it
    assert page.evaluate("performance.getEntriesByType('navigation')[0].type") == "reload"
    assert console_errors == []
    context.close()


def test_production_pages_carry_no_reload_script(site):
    """make build's output (the session's build with pelicanconf.py): no script, no file, no route of the dev
    server's live reload."""
    found = [str(path.relative_to(site)) for path in site.rglob("*") if path.is_file()
             and (b"/_dev/" in path.read_bytes() or b"EventSource" in path.read_bytes() or "reload" in path.name)]
    assert found == []
    assert (site / "index.html").read_text(encoding="utf-8").count("<script") == 1  # signup.js, no other
