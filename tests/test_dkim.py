"""DKIM: every kind of mail, as the relay (aiosmtpd on 127.0.0.1) or the outbox receives it, verifies with
dkimpy's verifier against the key published by a real DNS server (dnsmasq on 127.0.0.1), still verifies
after a relay adds its headers, and fails when what the reader sees is changed."""
import asyncio
import re

import dkim
import pytest

from newsletter.config import Config, ConfigError, read_dkim
from newsletter.confirmation import ConfirmationMail
from newsletter.mail_message import PLACEHOLDER, Mail
from newsletter.mailer import ReplyLost, open_mailer
from newsletter.outgoing import Outgoing
from newsletter.pages import mail_environment
from newsletter.signing import Signer
from tests.fixtures.loops import run_async
from tests.fixtures.dns import SELECTOR
from tests.fixtures.mail.support import Controller, Sink, free_port

READER = "lectrice@exemple.fr"
SIGNED = ["from", "to", "reply-to", "subject", "date", "message-id", "mime-version", "content-type"]


def config(tmp_path, key, smtp_url=None, mail_from="égoBlog <lettre@ok.test>") -> Config:
    return Config(public_url="https://blog.ok.test", newsletter_url="https://blog.ok.test/newsletter",
                  mail_from=mail_from, reply_to="francois@ok.test", site_name="égoBlog",
                  db=str(tmp_path / "s.sqlite3"), outbox=tmp_path / "outbox", smtp_url=smtp_url,
                  secrets=["s" * 32], dkim=key)


@pytest.fixture(scope="module")
def relay():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


def newsletter_message(cfg: Config):
    """A newsletter as the sender builds it (mail_message.Mail), without a site build."""
    text = f"Un billet, « déjà » en français.\n\nSe désinscrire : {PLACEHOLDER}\n"
    html = f"<p>Un billet, « déjà ».</p>\n<p><a href=\"{PLACEHOLDER}\">Se désinscrire</a></p>\n"
    mail = Mail(subject="Un billet", html=html, text=text, domain="ok.test",
                headers=[("From", "=?utf-8?q?=C3=A9goBlog?= <lettre@ok.test>"), ("Reply-To", "francois@ok.test"),
                         ("Subject", "Un billet"), ("List-Id", "egoBlog <egoblog.ok.test>")])
    return mail.message(READER, "https://blog.ok.test/newsletter/unsubscribe?t=abc",
                        "mailto:lettre@ok.test?subject=unsubscribe-abc")


def tags(data: bytes) -> dict[str, str]:
    header = re.search(rb"^DKIM-Signature:(.*?)\r\n(?=\S)", data, re.S | re.M).group(1)
    header = re.sub(rb"\s+", b"", header).decode()
    return dict(part.split("=", 1) for part in header.split(";") if part)


def test_confirmation_mail_sent_by_the_service_verifies(tmp_path, dns_server, relay):
    sink, url = relay
    async def signup():
        outgoing = Outgoing(config(tmp_path, dns_server.key, url), Signer(["s" * 32]))
        await outgoing.start()
        try:
            return await asyncio.wait_for(outgoing.submit(READER), 10)
        finally:
            await outgoing.stop()

    assert run_async(signup()) is True
    data = sink.envelopes[-1].content
    assert dkim.verify(data, dnsfunc=dns_server.dnsfunc)
    t = tags(data)
    assert (t["d"], t["s"], t["c"], t["a"]) == ("ok.test", SELECTOR, "relaxed/relaxed", "rsa-sha256")
    assert t["h"].lower().split(":") == SIGNED + ["from"]  # From once more than present: none can be added


def test_newsletter_verifies_with_its_list_headers_signed(tmp_path, dns_server, relay):
    sink, url = relay
    with open_mailer(config(tmp_path, dns_server.key, url)) as mailer:
        mailer.send(newsletter_message(config(tmp_path, dns_server.key)))
    data = sink.envelopes[-1].content
    assert dkim.verify(data, dnsfunc=dns_server.dnsfunc)
    h = tags(data)["h"].lower().split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "list-id"} <= set(h) and h.count("from") == 2
    assert sink.envelopes[-1].mail_from == "lettre@ok.test" and sink.envelopes[-1].rcpt_tos == [READER]


def test_outbox_mail_is_signed_too(tmp_path, dns_server):
    cfg = config(tmp_path, dns_server.key)
    mail = ConfirmationMail(cfg, Signer(["s" * 32]), mail_environment(cfg))
    with open_mailer(cfg) as mailer:
        path = mailer.send(mail.message(READER)[0])
    assert dkim.verify(path.read_bytes(), dnsfunc=dns_server.dnsfunc)


@pytest.mark.parametrize("relayed, still_valid", [
    (b"Received: from blog (blog [192.0.2.7]) by mx.exemple.fr with ESMTPS id 4Xy; "
     b"Thu, 3 Dec 2026 10:00:00 +0100\r\n", True),
    (b"Return-Path: <lettre@ok.test>\r\nX-Spam-Status: No, score=0.1\r\n", True),
    (b"From: Escroc <escroc@ok.test>\r\n", False),  # a second From: the oversigned From refuses it
])
def test_relay_added_headers(tmp_path, dns_server, relayed, still_valid):
    cfg = config(tmp_path, dns_server.key)
    with open_mailer(cfg) as mailer:
        data = mailer.send(newsletter_message(cfg)).read_bytes()
    assert bool(dkim.verify(relayed + data, dnsfunc=dns_server.dnsfunc)) is still_valid


def test_refolded_headers_still_verify_and_a_changed_body_does_not(tmp_path, dns_server):
    cfg = config(tmp_path, dns_server.key)
    with open_mailer(cfg) as mailer:
        data = mailer.send(newsletter_message(cfg)).read_bytes()
    refolded = data.replace(b"Subject: Un billet", b"Subject:   Un\r\n\tbillet")  # relaxed: same header
    assert dkim.verify(refolded, dnsfunc=dns_server.dnsfunc)
    assert not dkim.verify(data.replace(b"Un billet, =C2=AB", b"Un autre, =C2=AB"), dnsfunc=dns_server.dnsfunc)
    assert not dkim.verify(data.replace(b"Subject: Un billet", b"Subject: Gagnez"), dnsfunc=dns_server.dnsfunc)


def test_a_signature_with_another_key_does_not_verify(tmp_path, dns_server):
    cfg = config(tmp_path, dns_server.other_key)
    with open_mailer(cfg) as mailer:
        data = mailer.send(newsletter_message(cfg)).read_bytes()
    assert not dkim.verify(data, dnsfunc=dns_server.dnsfunc)


def test_reply_lost_still_detected_with_signed_bytes(tmp_path, dns_server):
    """The message's data goes out whole, signed, then the connection drops before the answer."""
    class Dropping(Sink):
        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            server.transport.close()

    sink = Dropping()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with pytest.raises(ReplyLost):
            with open_mailer(config(tmp_path, dns_server.key, f"smtp://127.0.0.1:{controller.port}")) as mailer:
                mailer.send(newsletter_message(config(tmp_path, dns_server.key)))
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1 and dkim.verify(sink.envelopes[0].content, dnsfunc=dns_server.dnsfunc)


def test_unsigned_without_dkim_settings(tmp_path):
    with open_mailer(config(tmp_path, None)) as mailer:
        data = mailer.send(newsletter_message(config(tmp_path, None))).read_bytes()
    assert b"DKIM-Signature" not in data and b"\r\n" in data


# -- configuration: a bad key stops the start, naming the variable ----------------------------


def test_key_from_file_or_from_the_variable(dns_server):
    from_file = read_dkim({"DKIM_SELECTOR": SELECTOR, "DKIM_KEY_FILE": str(dns_server.key_file)})
    pem = dns_server.key_file.read_text()
    inline = read_dkim({"DKIM_SELECTOR": SELECTOR, "DKIM_KEY": pem.replace("\n", "\\n")})
    assert from_file.public_key_b64() == inline.public_key_b64() == dns_server.key.public_key_b64()
    assert read_dkim({}) is None


@pytest.mark.parametrize("env, names", [
    ({"DKIM_SELECTOR": SELECTOR}, "DKIM_KEY_FILE"),
    ({"DKIM_KEY_FILE": "{key}"}, "DKIM_SELECTOR"),
    ({"DKIM_SELECTOR": SELECTOR, "DKIM_KEY_FILE": "{missing}"}, "DKIM_KEY_FILE=.*missing.pem.*illisible"),
    ({"DKIM_SELECTOR": SELECTOR, "DKIM_KEY_FILE": "{garbage}"}, "DKIM_KEY_FILE=.*garbage.pem.*PEM"),
    ({"DKIM_SELECTOR": SELECTOR, "DKIM_KEY_FILE": "{broken}"}, "DKIM_KEY_FILE=.*broken.pem.*illisible"),
    ({"DKIM_SELECTOR": SELECTOR, "DKIM_KEY": "pas une clé"}, "DKIM_KEY :"),
    ({"DKIM_SELECTOR": "mauvais_sélecteur", "DKIM_KEY_FILE": "{key}"}, "DKIM_SELECTOR"),
    ({"DKIM_SELECTOR": SELECTOR, "DKIM_KEY_FILE": "{key}", "DKIM_KEY": "x"}, "DKIM_KEY_FILE et DKIM_KEY"),
])
def test_bad_dkim_settings_are_refused_with_the_variable_named(tmp_path, dns_server, env, names):
    (tmp_path / "garbage.pem").write_text("ceci n’est pas une clé\n")
    pem = dns_server.key_file.read_text().splitlines()
    (tmp_path / "broken.pem").write_text("\n".join(pem[:5] + pem[-1:]) + "\n")  # truncated body
    paths = {"key": dns_server.key_file, "missing": tmp_path / "missing.pem",
             "garbage": tmp_path / "garbage.pem", "broken": tmp_path / "broken.pem"}
    env = {k: v.format(**paths) for k, v in env.items()}
    with pytest.raises(ConfigError, match=names):
        read_dkim(env)


def test_from_env_refuses_dkim_without_a_from_address(tmp_path, dns_server):
    settings = tmp_path / "s.py"
    settings.write_text("SITENAME = 'x'\nPUBLIC_URL = 'https://blog.ok.test'\nNEWSLETTER_FROM = ''\n")
    env = {"NEWSLETTER_SETTINGS": str(settings), "NEWSLETTER_SECRET": "s" * 32,
           "DKIM_SELECTOR": SELECTOR, "DKIM_KEY_FILE": str(dns_server.key_file)}
    with pytest.raises(ConfigError, match="NEWSLETTER_FROM"):
        Config.from_env(environ=env)


def test_make_send_test_send_is_signed_end_to_end(tmp_path_factory, dns_server, relay):
    """`make send POST=… TO=…`'s command, configured by the environment only, through a real site build."""
    import subprocess
    import sys

    from tests.conftest import ROOT, build
    from tests.fixtures.mail.support import CONTENT, environ, write_settings

    sink, url = relay
    folder = tmp_path_factory.mktemp("dkim-send")
    settings = write_settings(folder)
    settings.write_text(settings.read_text() + "NEWSLETTER_FROM = 'égoBlog <lettre@ok.test>'\n")
    build(CONTENT, folder / "output", settings=str(settings))
    env = {**environ(folder, url, DKIM_SELECTOR=SELECTOR, DKIM_KEY_FILE=str(dns_server.key_file)),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "newsletter.sender", "lettre-test", "--to", READER], cwd=ROOT,
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    data = sink.envelopes[-1].content
    assert b"List-Unsubscribe-Post" in data and dkim.verify(data, dnsfunc=dns_server.dnsfunc)
    assert tags(data)["d"] == "ok.test"
