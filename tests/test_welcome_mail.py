"""The welcome mail, over real HTTP (uvicorn on loopback) with a real SQLite file and a real aiosmtpd
sink: one per first confirmation, none on a second one, none when NEWSLETTER_WELCOME is False; its
unsubscribe link erases the address; French, French spacing, valid HTML. The service is stopped before
counting mails: its queue is drained on shutdown, so « none » is proven without waiting."""
import asyncio
import dataclasses
import email
import re
import sqlite3
import threading
from contextlib import contextmanager
from email.policy import default as default_policy

import httpx
import pytest

from newsletter.app import create_app
from newsletter.config import Config, ConfigError
from newsletter.ratelimit import NO_LIMITS
from newsletter.serving import serve_in_thread
from newsletter.signing import Signer
from tests.fixtures.mail.support import Recorder, Sink, start_server
from tests.fixtures.typography import badly_spaced
from tests.test_html_valid import vnu
from tests.test_newsletter_app import SECRET, make_config

READER = "lectrice@exemple.fr"
UNSUBSCRIBE = re.compile(r"https?://\S+/newsletter/desinscription/[\w.\-]+")


@contextmanager
def service(tmp_path, smtp_port, welcome=True, settings=None, deadline=10.0):
    config = dataclasses.replace(make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{smtp_port}"),
                                 welcome=welcome, settings=settings or {})
    with serve_in_thread(create_app(config, limits=NO_LIMITS, mail_deadline=deadline)) as url, \
            httpx.Client(base_url=url, follow_redirects=False, timeout=20) as http:
        yield http, config


def confirm_path(address: str) -> str:
    return f"/newsletter/confirmer/{Signer([SECRET]).confirm_token(address)}"


def rows(config) -> list:
    with sqlite3.connect(config.db) as db:
        return db.execute("SELECT email FROM subscribers").fetchall()


@pytest.fixture
def sink():
    handler = Sink()
    server = start_server(handler)
    handler.port = server.port
    yield handler
    server.stop()


def received(sink) -> list:
    return [email.message_from_bytes(e.content, policy=default_policy) for e in sink.envelopes]


@pytest.fixture
def welcome(tmp_path, sink):
    """The welcome mail of one first confirmation, and the service's config (the service stopped)."""
    with service(tmp_path, sink.port) as (http, config):
        assert http.post(confirm_path(READER)).status_code == 303
    (msg,) = received(sink)
    return msg, config


def test_one_welcome_on_the_first_confirmation_none_on_the_second(tmp_path, sink):
    with service(tmp_path, sink.port) as (http, config):
        first = http.post(confirm_path(READER))
        assert first.status_code == 303 and first.headers["location"] == "/newsletter/confirme/"
        assert sink.wait_for(1)[0].rcpt_tos == [READER]
        again = http.post(confirm_path(READER))
        assert again.status_code == 303 and again.headers["location"] == "/newsletter/confirme/"
        assert http.post(confirm_path("autre@exemple.fr"), headers={"Accept": "application/json"}).status_code == 200
    assert [e.rcpt_tos for e in sink.envelopes] == [[READER], ["autre@exemple.fr"]]
    assert all(m["Subject"] == "Bienvenue sur égoBlog" for m in received(sink))
    assert rows(config) == [(READER,), ("autre@exemple.fr",)]


def test_no_welcome_when_turned_off(tmp_path, sink):
    with service(tmp_path, sink.port, welcome=False) as (http, config):
        assert http.post(confirm_path(READER)).status_code == 303
    assert sink.envelopes == []
    assert rows(config) == [(READER,)]


class HeldRelay(Sink):
    """A relay that holds every mail at DATA until the test releases it."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 20)
        return await super().handle_DATA(server, session, envelope)


def test_the_confirmation_does_not_wait_for_the_welcome(tmp_path):
    relay = HeldRelay()
    server = start_server(relay)
    try:
        with service(tmp_path, server.port) as (http, config):
            r = http.post(confirm_path(READER))  # answered while the relay still holds the welcome
            assert r.status_code == 303 and r.headers["location"] == "/newsletter/confirme/"
            assert rows(config) == [(READER,)] and relay.envelopes == []
            relay.release.set()
            assert relay.wait_for(1)[0].rcpt_tos == [READER]
    finally:
        relay.release.set()
        server.stop()


def test_a_welcome_the_relay_refuses_does_not_fail_the_confirmation(tmp_path):
    relay = Recorder(refuse={READER})  # 550 at RCPT: never deliverable
    server = start_server(relay)
    try:
        with service(tmp_path, server.port) as (http, config):
            r = http.post(confirm_path(READER))
            assert r.status_code == 303 and r.headers["location"] == "/newsletter/confirme/"
    finally:
        server.stop()
    assert relay.envelopes == [] and rows(config) == [(READER,)]


def test_the_unsubscribe_link_erases_the_address(welcome, tmp_path, sink):
    msg, config = welcome
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    link = UNSUBSCRIBE.search(text).group(0)
    assert f'href="{link}"' in html
    assert msg["List-Unsubscribe"].strip().startswith(f"<{link}>, <mailto:francois@egoblog.example?subject=unsubscribe-")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert Signer([SECRET]).read_unsubscribe_token(link.rsplit("/", 1)[1]) == READER
    assert rows(config) == [(READER,)]
    with service(tmp_path, sink.port) as (http, _):  # the same store, a new process: links still hold
        path = "/" + link.split("/", 3)[3]
        r = http.post(path, data={"List-Unsubscribe": "One-Click"})  # what a mail client's button does
        assert r.status_code == 200 and "désinscrit" in r.text
    assert rows(config) == []


def test_french_with_french_spacing_and_the_authors_text(tmp_path, sink):
    author = "Un billet par mois, le dimanche ; jamais plus!\n\nEt des réponses : toujours."
    with service(tmp_path, sink.port, settings={"NEWSLETTER_WELCOME_TEXT": author}) as (http, _):
        http.post(confirm_path(READER))
    (msg,) = received(sink)
    assert msg["Content-Language"] == "fr" and msg["Subject"] == "Bienvenue sur égoBlog"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert '<html lang="fr">' in html
    for body in (text, re.sub(r"<[^>]+>", "", html)):
        body = re.sub(r"[ \t\r\n]+", " ", body)  # ordinary spaces only: the narrow no-break ones are the point
        assert "Bienvenue\u202f! Votre inscription à égoBlog est confirmée\u202f:" in body
        assert "le dimanche\u202f; jamais plus\u202f!" in body and "Et des réponses\u202f: toujours." in body
        assert "lettre@egoblog.example" in body  # the From address to add to one's contacts
        assert not badly_spaced(body), badly_spaced(body)
    assert "<p>Et des réponses" in html  # a blank line makes a paragraph


def test_the_html_is_valid(welcome, tmp_path):
    msg, _ = welcome
    page = tmp_path / "bienvenue.html"
    page.write_text(msg.get_body(("html",)).get_content(), encoding="utf-8")
    errors = vnu(page)
    assert not errors, "\n".join(f"{m.get('lastLine', '')}: {m['message']}" for m in errors)


def test_the_setting_must_be_true_or_false(tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text('SITENAME = "égoBlog"\nSITEURL = "https://blog.example.fr"\nNEWSLETTER_WELCOME = "non"\n')
    with pytest.raises(ConfigError, match=r"NEWSLETTER_WELCOME .*'non'"):
        Config.from_env(environ={"NEWSLETTER_SETTINGS": str(settings), "NEWSLETTER_SECRET": SECRET})
    settings.write_text('SITENAME = "égoBlog"\nSITEURL = "https://blog.example.fr"\nNEWSLETTER_WELCOME = False\n')
    assert Config.from_env(environ={"NEWSLETTER_SETTINGS": str(settings), "NEWSLETTER_SECRET": SECRET}).welcome is False
