"""deploy/nginx.conf in front of two instances of `python -m newsletter.server` on one store.

Debian's nginx runs the shipped file (tests/fixtures/nginx.py swaps only ports, paths and the
certificate) over TLS, serving a `make publish` build deployed by `make deploy`'s code; the instances
are the production entry point with --proxy-headers; mail goes to an aiosmtpd sink. Which instance
served a signup is read from its confirmation mail: Python's make_msgid puts the sending process's
pid in the Message-ID. Client addresses: a test binds its connections to 127.0.0.x / 127.0.1.x, which
nginx sees as $remote_addr.
"""
from __future__ import annotations

import asyncio
import email
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest

from newsletter.store import open_store
from sitebuild.deploy import deploy, parse_target
from tests.conftest import ROOT, missing
from tests.fixtures.mail.support import Sink, start_server
from tests.fixtures.nginx import running_nginx
from tests.fixtures.sshd import free_port

pytestmark = pytest.mark.browser

SECRET = "nginx-tests-secret-0123456789abcdef"
FROM = "égoBlog <lettre@blog.exemple.fr>"
POST = "le-cr-aime"
LINK = re.compile(r"https://\S+/newsletter/confirmer/[\w.\-]+")
PID = re.compile(r"<\d+\.(\d+)\.")  # make_msgid: <time.pid.random@domain>
JSON = {"Accept": "application/json"}
SERVICE_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


# -- the store: one place to switch ------------------------------------------------------------

@pytest.fixture
def store_url(tmp_path) -> str:
    """The one store both instances share. At merge with the PostgreSQL store, this becomes
    `return postgres_server.new_database()` (tests/fixtures/postgres.py, fixture `postgres_server`):
    the issue asks for two instances on one PostgreSQL. Every check below goes through open_store."""
    return str(tmp_path / "subscribers.sqlite3")


# -- the site, built and deployed once ---------------------------------------------------------

@dataclass
class Release:
    ports: tuple[int, int]  # nginx's (http, https)
    siteurl: str
    settings: Path          # the instances' and the sender's NEWSLETTER_SETTINGS
    current: Path           # the document root: the deploy target's `current`

    def env(self, store_url: str, smtp_port: int) -> dict:
        return {**os.environ, "SITEURL": self.siteurl, "NEWSLETTER_SETTINGS": str(self.settings),
                "NEWSLETTER_SECRET": SECRET, "NEWSLETTER_FROM": FROM, "NEWSLETTER_DB": store_url,
                "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "NEWSLETTER_OUTBOX": str(self.settings.parent / "outbox")}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Release:
    """make publish for https://127.0.0.1:PORT (nginx's port, chosen first), then make deploy into a folder."""
    work = tmp_path_factory.mktemp("nginx-site")
    ports = (free_port(), free_port())
    siteurl = f"https://127.0.0.1:{ports[1]}"
    env = {**os.environ, "SITEURL": siteurl, "NEWSLETTER_SECRET": SECRET, "NEWSLETTER_FROM": FROM}
    built = subprocess.run(
        [sys.executable, "-m", "sitebuild", "--settings", "publishconf.py", "--output", str(work / "output"),
         "-e", f'CACHE_PATH="{work / "cache"}"', f'MAIL_POSTS_PATH="{work / "posts"}"'],
        cwd=ROOT, capture_output=True, text=True, env=env)
    assert built.returncode == 0, built.stderr
    settings = work / "settings.py"
    settings.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom publishconf import *  # noqa\n"
                        f"MAIL_POSTS_PATH = {str(work / 'posts')!r}\n", encoding="utf-8")
    deploy(work / "output", parse_target(str(work / "srv"), {}), environ={"SITEURL": siteurl})
    current = (work / "srv" / "current").resolve()
    search = current / "recherche" / "index.html"
    if not search.exists():  # the search page is built by another branch; its location is nginx's part
        search.parent.mkdir()
        search.write_text('<!doctype html><html lang="fr"><title>Recherche</title><p>Recherche</p></html>')
    return Release(ports, siteurl, settings, work / "srv" / "current")


# -- two instances, nginx, a mail sink ---------------------------------------------------------

@dataclass
class Instance:
    port: int
    env: dict
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> "Instance":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "newsletter.server", "--port", str(self.port),
                                          "--proxy-headers"], cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:  # listening once a connection is accepted
            assert self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, "the instance did not start:\n" + self.log.read_text()
                time.sleep(0.05)

    @property
    def pid(self) -> str:
        return str(self.proc.pid)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Stack:
    release: Release
    nginx: object
    instances: list[Instance]
    sink: Sink
    store_url: str
    tls: ssl.SSLContext = field(init=False)

    def __post_init__(self):
        self.tls = ssl.create_default_context(cafile=str(self.nginx.cert))

    def client(self, source: str = "127.0.0.1", **options) -> httpx.Client:
        """A client whose connections come from `source` (nginx's $remote_addr)."""
        transport = httpx.HTTPTransport(local_address=source, verify=self.tls)
        return httpx.Client(base_url=self.nginx.https, transport=transport, timeout=60, **options)

    def mails(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.original_content, policy=default_policy) for e in self.sink.envelopes]

    def mails_to(self, address: str, count: int = 1) -> list[email.message.EmailMessage]:
        """The first `count` mails to `address`, once they are in the sink (woken by each arrival)."""
        deadline = time.monotonic() + 20
        while True:
            found = [m for m in self.mails() if m["To"] == address]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, f"{len(found)} mail(s) to {address}, expected {count}"
                return found[:count]
            self.sink.wait_for(len(self.sink.envelopes) + 1, timeout=max(0.0, deadline - time.monotonic()))

    def stored(self) -> list[str]:
        with open_store(self.store_url) as store:
            return [address for _, address in store.subscribers_after(0, 100_000)]


@pytest.fixture
def stack(release, store_url, tmp_path):
    sink = Sink()
    smtp = start_server(sink)
    env = release.env(store_url, smtp.port)
    instances = [Instance(free_port(), env, tmp_path / f"instance-{n}.log") for n in (1, 2)]
    try:
        for instance in instances:
            instance.start()
        with running_nginx(tmp_path / "nginx", release.current, [f"127.0.0.1:{i.port}" for i in instances],
                           ports=release.ports) as nginx:
            yield Stack(release, nginx, instances, sink, store_url)
    finally:
        for instance in instances:
            instance.stop()
        smtp.stop()
    for instance in instances:  # nothing about a client in the service's own output either
        assert "127.0.1." not in instance.log.read_text() and "127.0.0.2" not in instance.log.read_text()


def pid_of(mail) -> str:
    return PID.match(mail["Message-ID"])[1]


def link_in(mail) -> str:
    return LINK.search(mail.get_body(("plain",)).get_content()).group(0)


def assert_nothing_about_clients_logged(stack: Stack) -> None:
    assert stack.nginx.access_log.read_bytes() == b"", "an access log line was written"
    errors = stack.nginx.error_log.read_text()
    assert "client:" not in errors and "request:" not in errors and "/newsletter/" not in errors, errors


# -- the reader's whole flow, in Chromium --------------------------------------------------------

def test_signup_confirm_send_unsubscribe_through_nginx_in_chromium(browser, stack):
    base, address = stack.nginx.https, "lectrice.nginx@exemple.fr"
    context = browser.new_context(ignore_https_errors=True)  # the test's self-signed certificate
    page = context.new_page()
    elsewhere = []
    page.on("request", lambda r: r.url.startswith(base) or r.url.startswith("data:") or elsewhere.append(r.url))

    home = page.goto(base + "/")
    assert home.status == 200 and home.headers["content-security-policy"] == SERVICE_CSP
    form = page.locator("form.signup").first
    form.locator("input[name=email]").fill(address)
    form.get_by_role("button", name="S’abonner").click()
    page.locator(".signup-result").first.filter(has_text="e-mail de confirmation").wait_for(timeout=15_000)

    (mail,) = stack.mails_to(address)
    link = link_in(mail)
    assert link.startswith(base + "/newsletter/confirmer/")
    assert stack.stored() == []  # nothing before consent
    page.goto(link)
    page.get_by_role("button", name="Confirmer mon inscription").click()
    page.wait_for_url(base + "/newsletter/confirme/")
    assert "Inscription confirmée" in page.locator("h1").inner_text()
    assert stack.stored() == [address]

    # The author sends a post: the sender, on the same store, into the same relay.
    sent = subprocess.run([sys.executable, "-m", "newsletter.sender", POST], cwd=ROOT, capture_output=True, text=True,
                          env=stack.instances[0].env)
    assert sent.returncode == 0, sent.stderr
    # Three mails: the confirmation and the welcome mail (an instance's), and the post (the sender's).
    (letter,) = [m for m in stack.mails_to(address, 3) if not PID.match(m["Message-ID"])]
    assert letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.search(r"<(https://[^>]+)>", letter["List-Unsubscribe"])[1]
    assert unsubscribe.startswith(base + "/newsletter/desinscription/")

    # The mail provider's one-click unsubscribe (RFC 8058): a POST, no cookie, no page.
    with stack.client() as provider:
        answer = provider.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "désinscrit" in answer.text
    assert stack.stored() == []
    assert elsewhere == [] and context.cookies() == []
    context.close()
    assert_nothing_about_clients_logged(stack)
