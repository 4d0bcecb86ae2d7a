"""The mailer against a real SMTP server (aiosmtpd on 127.0.0.1): plain, STARTTLS,
implicit TLS, authentication, errors; and the outbox backend."""
import email
import smtplib
import socket
import ssl
import subprocess
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from newsletter.config import Config
from newsletter.mailer import MailerError, OutboxMailer, SMTPMailer, open_mailer
from tests.fixtures.mail.support import Controller, Sink

USER, PASSWORD = "lettre", "p@ss:wörd/1"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made by the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def server_tls(certificate):
    cert, key = certificate
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
def client_tls(certificate):
    return ssl.create_default_context(cafile=str(certificate[0]))


def start(controller):
    controller.start()
    return controller


def config(tmp_path, smtp_url=None) -> Config:
    return Config(public_url="http://127.0.0.1:8000", newsletter_url="http://127.0.0.1:8000/newsletter",
                  mail_from="égoBlog <lettre@egoblog.example>", reply_to="francois@egoblog.example",
                  site_name="égoBlog", db=str(tmp_path / "s.sqlite3"), outbox=tmp_path / "outbox",
                  smtp_url=smtp_url, secrets=["s" * 32])


def message(to="lecteur@exemple.fr", subject="Bonjour") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "égoBlog <lettre@egoblog.example>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Un billet, en français : « déjà ».")
    return msg


def received(sink, index=0):
    return email.message_from_bytes(sink.envelopes[index].content, policy=default_policy)


def test_plain_smtp_one_connection_for_many_messages(tmp_path):
    sink = Sink()
    sessions = []

    class Counting(Sink):
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            sessions.append(session)
            session.host_name = hostname
            return responses

    sink = Counting()
    port = free_port()
    controller = start(Controller(sink, hostname="127.0.0.1", port=port))
    try:
        with open_mailer(config(tmp_path, f"smtp://127.0.0.1:{port}")) as mailer:
            for n in range(3):
                mailer.send(message(subject=f"n°{n}"))
    finally:
        controller.stop()
    assert [received(sink, n)["Subject"] for n in range(3)] == ["n°0", "n°1", "n°2"]
    assert sink.envelopes[0].rcpt_tos == ["lecteur@exemple.fr"]
    assert "« déjà »" in received(sink).get_content()
    assert len({id(s) for s in sessions}) == 1, "one SMTP session for all messages"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_plain_smtp_with_url_encoded_credentials(tmp_path):
    sink = Sink()
    port = free_port()
    controller = start(Controller(sink, hostname="127.0.0.1", port=port, authenticator=authenticator,
                                  auth_required=True, auth_require_tls=False))
    try:
        url = f"smtp://{USER}:p%40ss%3Aw%C3%B6rd%2F1@127.0.0.1:{port}"
        with open_mailer(config(tmp_path, url)) as mailer:
            mailer.send(message())
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1


def test_starttls_with_auth(tmp_path, server_tls, client_tls):
    sink = Sink()
    port = free_port()
    controller = start(Controller(sink, hostname="127.0.0.1", port=port, tls_context=server_tls,
                                  require_starttls=True, authenticator=authenticator, auth_required=True))
    try:
        url = f"smtp://{USER}:p%40ss%3Aw%C3%B6rd%2F1@127.0.0.1:{port}?starttls=1"
        with open_mailer(config(tmp_path, url), ssl_context=client_tls) as mailer:
            mailer.send(message())
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_auth(tmp_path, server_tls, client_tls):
    sink = Sink()
    port = free_port()
    # aiosmtpd does not see that an implicit-TLS session is encrypted: allow AUTH explicitly.
    controller = start(Controller(sink, hostname="127.0.0.1", port=port, ssl_context=server_tls,
                                  authenticator=authenticator, auth_required=True, auth_require_tls=False))
    try:
        url = f"smtps://{USER}:p%40ss%3Aw%C3%B6rd%2F1@127.0.0.1:{port}"
        with open_mailer(config(tmp_path, url), ssl_context=client_tls) as mailer:
            mailer.send(message())
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1


def test_untrusted_certificate_is_refused(tmp_path, server_tls):
    sink = Sink()
    port = free_port()
    controller = start(Controller(sink, hostname="127.0.0.1", port=port, ssl_context=server_tls))
    try:
        with pytest.raises(MailerError, match=rf"127\.0\.0\.1:{port}"):
            with open_mailer(config(tmp_path, f"smtps://127.0.0.1:{port}")) as mailer:
                mailer.send(message())
    finally:
        controller.stop()
    assert sink.envelopes == []


def test_refused_login_names_the_host_not_the_password(tmp_path, server_tls, client_tls):
    port = free_port()
    controller = start(Controller(Sink(), hostname="127.0.0.1", port=port, tls_context=server_tls,
                                  authenticator=authenticator, auth_required=True))
    try:
        with pytest.raises(MailerError) as info:
            with open_mailer(config(tmp_path, f"smtp://{USER}:mauvais-secret@127.0.0.1:{port}?starttls=1"),
                             ssl_context=client_tls) as mailer:
                mailer.send(message())
    finally:
        controller.stop()
    assert f"127.0.0.1:{port}" in str(info.value) and "SMTP_URL" in str(info.value)
    assert "mauvais-secret" not in str(info.value)


def test_unreachable_server(tmp_path):
    port = free_port()
    with pytest.raises(MailerError, match=rf"SMTP_URL.*127\.0\.0\.1:{port}.*injoignable"):
        with open_mailer(config(tmp_path, f"smtp://u:secret@127.0.0.1:{port}")) as mailer:
            mailer.send(message())


def test_recipient_refused_propagates_as_smtplib_error(tmp_path):
    class Refusing(Sink):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 no such user"

    port = free_port()
    controller = start(Controller(Refusing(), hostname="127.0.0.1", port=port))
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            with open_mailer(config(tmp_path, f"smtp://127.0.0.1:{port}")) as mailer:
                mailer.send(message())
    finally:
        controller.stop()


def test_reconnects_once_after_the_server_drops_the_connection(tmp_path):
    sink = Sink()
    port = free_port()
    controller = start(Controller(sink, hostname="127.0.0.1", port=port))
    try:
        mailer = SMTPMailer(f"smtp://127.0.0.1:{port}")
        mailer.send(message(subject="1"))
        mailer._smtp.sock.close()  # as if the server had timed the idle connection out
        mailer.send(message(subject="2"))
        mailer.close()
    finally:
        controller.stop()
    assert [received(sink, n)["Subject"] for n in range(2)] == ["1", "2"]


def test_outbox_writes_one_complete_eml_per_message(tmp_path):
    with open_mailer(config(tmp_path)) as mailer:
        assert isinstance(mailer, OutboxMailer)
        paths = [mailer.send(message(subject=f"n°{n}")) for n in range(3)]
    files = sorted((tmp_path / "outbox").iterdir())
    assert sorted(paths) == files and len(files) == 3
    assert all(f.suffix == ".eml" and "lecteur" not in f.name for f in files)
    subjects = {email.message_from_bytes(f.read_bytes(), policy=default_policy)["Subject"] for f in files}
    assert subjects == {"n°0", "n°1", "n°2"}
    assert not list((tmp_path / "outbox").glob(".tmp-*"))
