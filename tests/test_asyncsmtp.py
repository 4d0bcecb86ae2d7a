"""The service's asyncio SMTP client (newsletter/asyncsmtp.py) against real SMTP servers on 127.0.0.1:
aiosmtpd, with and without PIPELINING, and Postfix, which offers PIPELINING and CHUNKING (BDAT): what
arrives, TLS, logins, and every failure as smtplib names it."""
import asyncio
import email
import gc
import smtplib
import socket
import threading
from email.policy import default as default_policy

import pytest
from aiosmtpd.smtp import SMTP

from newsletter.asyncsmtp import AsyncSMTP
from newsletter.mailer import MailerError, Relay, ReplyLost, temporary
from tests.fixtures.mail.support import Controller, Sink
from tests.test_newsletter_mailer import (PASSWORD, USER, authenticator, certificate, client_tls,  # noqa: F401
                                          free_port, server_tls)

SENDER = "lettre@egoblog.example"
LOOP: asyncio.AbstractEventLoop
CREDENTIALS = f"{USER}:p%40ss%3Aw%C3%B6rd%2F1"


class Pipelining(Sink):
    """aiosmtpd reads commands line by line, so it takes pipelined ones; it only does not say so. With
    `chunking`, it says CHUNKING too (for a Chunking server: chunking_server)."""

    def __init__(self, pipelining=True, chunking=False):
        super().__init__()
        self.pipelining, self.chunking, self.sessions = pipelining, chunking, []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sessions.append(session)
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if self.chunking:
            responses.insert(-1, "250-CHUNKING")
        return responses


def mail(subject: str, body: bytes = b"Un billet, en fran\xc3\xa7ais.\r\n") -> bytes:
    return (f"From: <{SENDER}>\r\nTo: <lecteur@exemple.fr>\r\nSubject: {subject}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").encode() + body


def serve(handler, **options) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller


@pytest.fixture(scope="module", autouse=True)
def loop():
    """One event loop for the module, running in a thread as the service's does: a connection closed
    at the end of a test finishes closing (TLS shutdown included) while the loop goes on."""
    global LOOP
    LOOP = asyncio.new_event_loop()
    thread = threading.Thread(target=LOOP.run_forever, daemon=True)
    thread.start()
    yield LOOP
    LOOP.call_soon_threadsafe(LOOP.stop)
    thread.join(10)
    LOOP.close()


def run(coroutine):
    return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, 30), LOOP).result(60)


async def send_all(url: str, messages: list[tuple[bytes, list[str]]], ssl_context=None):
    """Every message on one connection; each outcome (refused recipients, or the exception)."""
    relay = await AsyncSMTP.open(Relay.from_url(url), ssl_context)
    outcomes = []
    try:
        for data, recipients in messages:
            try:
                outcomes.append(await relay.send(data, SENDER, recipients))
            except smtplib.SMTPException as exc:
                outcomes.append(exc)
    finally:
        relay.close()
        await relay.wait_closed()  # before the test stops the relay (a TLS goodbye takes a few turns)
    return outcomes


DOTTED = b"Premiere ligne\r\n.ligne qui commence par un point\r\n..deux points\r\n.\r\nfin\r\n"


def arrived(sink: Sink, subjects: list[str]) -> list:
    """The envelopes of the mails with these subjects (each test its own), in that order, once all came."""
    def mine(envelopes):
        found = {}
        for envelope in envelopes:
            found.setdefault(email.message_from_bytes(envelope.content, policy=default_policy)["Subject"], envelope)
        return [found[s] for s in subjects] if all(s in found for s in subjects) else []
    return sink.wait_until(mine)


def test_through_postfix_each_mail_is_one_write_and_arrives_as_it_was(postfix):
    """Postfix offers CHUNKING: each mail goes as MAIL FROM, RCPT TO, BDAT and the message in one write,
    with no dot-stuffing (BDAT counts bytes), and arrives whole, dots and all."""
    assert {"pipelining", "chunking"} <= postfix.features()
    before = len(postfix.sessions())
    outcomes = run(send_all(postfix.url, [
        (mail("bdat un"), ["lecteur@exemple.fr"]), (mail("bdat deux", DOTTED), ["a@exemple.fr", "b@exemple.fr"]),
        (mail("bdat trois", b"ligne\nautre ligne\n"), ["c@exemple.fr"])]))
    assert outcomes == [{}, {}, {}]
    sessions = postfix.sessions(before, enough=len)
    assert len(sessions) == 1 and "bdat=3 " in sessions[0] and "data=" not in sessions[0], sessions
    one, two, three = arrived(postfix.sink, ["bdat un", "bdat deux", "bdat trois"])
    assert [e.rcpt_tos for e in (one, two, three)] == [["lecteur@exemple.fr"], ["a@exemple.fr", "b@exemple.fr"],
                                                       ["c@exemple.fr"]]
    assert one.mail_from == SENDER
    assert email.message_from_bytes(one.content, policy=default_policy).get_content().rstrip() == "Un billet, en français."
    assert two.content.endswith(DOTTED)  # the dots the relay got are the message's own
    assert three.content.endswith(b"ligne\r\nautre ligne\r\n")


def assert_refused_as_smtplib_says(refused, full, later, partly, fine) -> None:
    """The outcomes of five mails: to inconnu (550 at RCPT), plein (452), plus-tard (451 once sent), to
    inconnu and lu, and to lecteur."""
    assert isinstance(refused, smtplib.SMTPRecipientsRefused) and not temporary(refused)
    assert refused.recipients["inconnu@exemple.fr"][0] == 550
    assert isinstance(full, smtplib.SMTPRecipientsRefused) and temporary(full)
    assert isinstance(later, smtplib.SMTPDataError) and later.smtp_code == 451 and temporary(later)
    assert list(partly) == ["inconnu@exemple.fr"]  # as smtplib's sendmail: the others got it
    assert fine == {}


def test_through_postfix_refusals_are_smtplib_errors_and_the_connection_goes_on(postfix):
    before = len(postfix.sessions())
    refused, full, later, partly, fine = run(send_all(postfix.url, [
        (mail("refus 1"), ["inconnu@exemple.fr"]), (mail("refus 2"), ["plein@exemple.fr"]),
        (mail("refus 3"), ["plus-tard@exemple.fr"]), (mail("refus 4"), ["inconnu@exemple.fr", "lu@exemple.fr"]),
        (mail("refus 5"), ["lecteur@exemple.fr"])]))
    assert_refused_as_smtplib_says(refused, full, later, partly, fine)
    sessions = postfix.sessions(before, enough=len)
    assert len(sessions) == 1, "one connection for all five: each refusal was followed by RSET"
    four, five = arrived(postfix.sink, ["refus 4", "refus 5"])
    assert (four.rcpt_tos, five.rcpt_tos) == (["lu@exemple.fr"], ["lecteur@exemple.fr"])
    assert not {"refus 1", "refus 2", "refus 3"} & {
        email.message_from_bytes(e.content, policy=default_policy)["Subject"] for e in postfix.sink.envelopes}


def test_through_postfix_messages_back_to_back_each_get_their_own_answer(postfix):
    """send_many: five transactions in one write, refusals among them; each answered on its own, the
    connection goes on (RSET before each MAIL FROM: Postfix 3.7's smtpd dies without it after a refused BDAT)."""
    before = len(postfix.sessions())

    async def scenario():
        relay = await AsyncSMTP.open(Relay.from_url(postfix.url))
        try:
            assert relay.chunking
            return await relay.send_many([
                (mail("lot 1"), SENDER, ["plus-tard@exemple.fr"]), (mail("lot 2"), SENDER, ["lu@exemple.fr"]),
                (mail("lot 3"), SENDER, ["inconnu@exemple.fr"]), (mail("lot 4"), SENDER, ["plein@exemple.fr"]),
                (mail("lot 5", DOTTED), SENDER, ["inconnu@exemple.fr", "lecteur@exemple.fr"])])
        finally:
            relay.close()

    later, fine, refused, full, partly = run(scenario())
    assert isinstance(later, smtplib.SMTPDataError) and later.smtp_code == 451
    assert fine == {} and list(partly) == ["inconnu@exemple.fr"]
    assert isinstance(refused, smtplib.SMTPRecipientsRefused) and not temporary(refused)
    assert isinstance(full, smtplib.SMTPRecipientsRefused) and temporary(full)
    sessions = postfix.sessions(before, enough=len)
    assert len(sessions) == 1 and "bdat=2/5 " in sessions[0] and "rset=5 " in sessions[0], sessions  # 2 of 5 taken
    two, five = arrived(postfix.sink, ["lot 2", "lot 5"])
    assert (two.rcpt_tos, five.rcpt_tos) == (["lu@exemple.fr"], ["lecteur@exemple.fr"])
    assert five.content.endswith(DOTTED)


class Chunking(SMTP):
    """aiosmtpd, which lacks BDAT, given just enough of it (one chunk a message, LAST) for the faults
    Postfix cannot be asked for: the connection dropped once the `drop`-th message of the server is in,
    unanswered, or with `silent` the server falling silent from then on, the connection left open."""

    drop, silent, chunks = 1, False, 0  # chunking_server sets them, for each server its own

    async def smtp_BDAT(self, arg):
        content = await self._reader.readexactly(int(arg.split()[0]))
        server = type(self)
        server.chunks += 1
        if server.chunks >= server.drop and server.silent:
            await asyncio.Event().wait()  # until the server stops
        if server.chunks == server.drop:
            self.transport.close()
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)


def chunking_server(handler: Pipelining, drop: int, silent: bool = False) -> Controller:
    """A started Chunking server for `handler` (made with chunking=True)."""
    faulty = type("Faulty", (Chunking,), {"drop": drop, "silent": silent, "chunks": 0})

    class Serving(Controller):
        def factory(self):
            return self.session(faulty(self.handler, **self.SMTP_kwargs))

    controller = Serving(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


def test_a_connection_dropped_after_a_chunked_message_is_a_lost_reply():
    handler = Pipelining(chunking=True)
    controller = chunking_server(handler, drop=1)
    try:
        (outcome,) = run(send_all(f"smtp://127.0.0.1:{controller.port}", [(mail("1"), ["lecteur@exemple.fr"])]))
    finally:
        controller.stop()
    assert isinstance(outcome, ReplyLost)  # the whole message went out: the relay may well have taken it
    assert len(handler.sessions) == 1


def test_a_connection_dropped_mid_batch_loses_the_answers_of_that_message_and_the_next():
    handler = Pipelining(chunking=True)
    controller = chunking_server(handler, drop=3)

    async def scenario():
        relay = await AsyncSMTP.open(Relay.from_url(f"smtp://127.0.0.1:{controller.port}"))
        try:
            return await relay.send_many([(mail(f"m{n}"), SENDER, [f"r{n}@exemple.fr"]) for n in range(1, 6)])
        finally:
            relay.abort()

    try:
        outcomes = run(scenario())
    finally:
        controller.stop()
    assert outcomes[:2] == [{}, {}]
    assert all(isinstance(outcome, ReplyLost) for outcome in outcomes[2:])  # went out; answers never came
    assert [e.rcpt_tos for e in handler.envelopes] == [["r1@exemple.fr"], ["r2@exemple.fr"]]


def test_a_relay_that_falls_silent_mid_batch_leaves_those_messages_lost_replies_at_the_deadline(caplog):
    handler = Pipelining(chunking=True)
    controller = chunking_server(handler, drop=2, silent=True)

    async def scenario():
        relay = await AsyncSMTP.open(Relay.from_url(f"smtp://127.0.0.1:{controller.port}"))
        deadline = asyncio.get_running_loop().time() + 1.0
        outcomes = await relay.send_many([(mail(f"m{n}"), SENDER, [f"r{n}@exemple.fr"]) for n in range(1, 4)],
                                         deadline)
        closed = relay.closed
        del relay
        for _ in range(3):  # the closing connection fails what still waits for a reply
            await asyncio.sleep(0)
        gc.collect()  # a reply future left with an exception nobody read is reported by now
        return outcomes, closed

    try:
        (first, second, third), closed = run(scenario())
    finally:
        controller.stop()
    assert first == {} and isinstance(second, ReplyLost) and isinstance(third, ReplyLost) and closed
    assert "never retrieved" not in caplog.text


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_messages_arrive_whole_on_one_connection(pipelining):
    handler = Pipelining(pipelining)
    controller = serve(handler)
    dotted = DOTTED
    bare_lf = b"ligne\nautre ligne\n"
    try:
        outcomes = run(send_all(f"smtp://127.0.0.1:{controller.port}", [
            (mail("un"), ["lecteur@exemple.fr"]), (mail("deux", dotted), ["a@exemple.fr", "b@exemple.fr"]),
            (mail("trois", bare_lf), ["c@exemple.fr"])]))
    finally:
        controller.stop()
    assert outcomes == [{}, {}, {}]
    assert len(handler.sessions) == 1, "one SMTP session for every message"
    assert [e.rcpt_tos for e in handler.envelopes] == [["lecteur@exemple.fr"], ["a@exemple.fr", "b@exemple.fr"],
                                                       ["c@exemple.fr"]]
    assert handler.envelopes[0].mail_from == SENDER
    messages = [email.message_from_bytes(e.content, policy=default_policy) for e in handler.envelopes]
    assert [m["Subject"] for m in messages] == ["un", "deux", "trois"]
    assert messages[0].get_content().rstrip() == "Un billet, en français."
    assert handler.envelopes[1].content.endswith(dotted)  # the dots the relay got are the message's own
    assert handler.envelopes[2].content.endswith(b"ligne\r\nautre ligne\r\n")


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_refusals_are_smtplib_errors_and_the_connection_goes_on(pipelining):
    class Refusing(Pipelining):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("inconnu"):
                return "550 5.1.1 no such user"
            if address.startswith("plein"):
                return "452 4.2.2 mailbox full"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            if envelope.rcpt_tos == ["plus-tard@exemple.fr"]:
                return "451 4.3.0 try again later"
            return await super().handle_DATA(server, session, envelope)

    handler = Refusing(pipelining)
    controller = serve(handler)
    try:
        refused, full, later, partly, fine = run(send_all(f"smtp://127.0.0.1:{controller.port}", [
            (mail("1"), ["inconnu@exemple.fr"]), (mail("2"), ["plein@exemple.fr"]),
            (mail("3"), ["plus-tard@exemple.fr"]), (mail("4"), ["inconnu@exemple.fr", "lu@exemple.fr"]),
            (mail("5"), ["lecteur@exemple.fr"])]))
    finally:
        controller.stop()
    assert_refused_as_smtplib_says(refused, full, later, partly, fine)
    assert [e.rcpt_tos for e in handler.envelopes] == [["lu@exemple.fr"], ["lecteur@exemple.fr"]]
    assert len(handler.sessions) == 1, "each refusal was followed by RSET, not a new connection"


def test_a_connection_dropped_after_the_message_is_a_lost_reply():
    class Dropping(Pipelining):
        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            server.transport.close()

    handler = Dropping()
    controller = serve(handler)
    try:
        (outcome,) = run(send_all(f"smtp://127.0.0.1:{controller.port}", [(mail("1"), ["lecteur@exemple.fr"])]))
    finally:
        controller.stop()
    assert isinstance(outcome, ReplyLost) and len(handler.envelopes) == 1  # it may well have been taken


def test_a_connection_the_relay_closed_while_idle_is_seen_closed():
    handler = Pipelining()
    controller = serve(handler)

    async def scenario():
        relay = await AsyncSMTP.open(Relay.from_url(f"smtp://127.0.0.1:{controller.port}"))
        await relay.send(mail("1"), SENDER, ["lecteur@exemple.fr"])
        controller.stop()  # the relay goes away: its end of the connection closes
        for _ in range(500):
            if relay.closed:
                break
            await asyncio.sleep(0.01)
        assert relay.closed  # so the worker opens a new one instead of failing a reader's mail
        with pytest.raises(smtplib.SMTPServerDisconnected):
            await relay.send(mail("2"), SENDER, ["lecteur@exemple.fr"])

    run(scenario())
    assert len(handler.envelopes) == 1


def test_starttls_with_auth_plain(server_tls, client_tls):
    handler = Pipelining()
    controller = serve(handler, tls_context=server_tls, require_starttls=True, authenticator=authenticator,
                       auth_required=True)
    try:
        outcomes = run(send_all(f"smtp://{CREDENTIALS}@127.0.0.1:{controller.port}?starttls=1",
                                [(mail("1"), ["lecteur@exemple.fr"])], client_tls))
    finally:
        controller.stop()
    assert outcomes == [{}] and len(handler.envelopes) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_auth_login_only(server_tls, client_tls):
    handler = Pipelining()
    controller = serve(handler, ssl_context=server_tls, authenticator=authenticator, auth_required=True,
                       auth_require_tls=False, auth_exclude_mechanism=["PLAIN"])
    try:
        outcomes = run(send_all(f"smtps://{CREDENTIALS}@127.0.0.1:{controller.port}",
                                [(mail("1"), ["lecteur@exemple.fr"])], client_tls))
    finally:
        controller.stop()
    assert outcomes == [{}] and len(handler.envelopes) == 1


@pytest.mark.parametrize("case", ["wrong password", "untrusted certificate", "nobody listening"])
def test_a_relay_that_cannot_be_used_is_a_mailer_error_naming_the_host_not_the_password(case, server_tls,
                                                                                        client_tls):
    port = free_port()
    controller = None
    if case == "wrong password":
        controller = serve(Sink(), tls_context=server_tls, authenticator=authenticator, auth_required=True)
        url, context = f"smtp://{USER}:mauvais-secret@127.0.0.1:{controller.port}?starttls=1", client_tls
    elif case == "untrusted certificate":
        controller = serve(Sink(), ssl_context=server_tls)
        url, context = f"smtps://{USER}:mauvais-secret@127.0.0.1:{controller.port}", None
    else:
        url, context = f"smtp://{USER}:mauvais-secret@127.0.0.1:{port}", None
    try:
        with pytest.raises(MailerError) as info:
            run(send_all(url, [(mail("1"), ["lecteur@exemple.fr"])], context))
    finally:
        if controller is not None:
            controller.stop()
    where = f"127.0.0.1:{controller.port if controller else port}"
    assert where in str(info.value) and "SMTP_URL" in str(info.value)
    assert "mauvais-secret" not in str(info.value)
    if case == "wrong password":
        assert "identifiants refusés" in str(info.value)


def test_a_relay_that_never_greets_is_left_when_the_caller_gives_up():
    """The caller's deadline cancels open(): the half-made connection is closed, not left to the garbage."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        async def give_up():
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(AsyncSMTP.open(Relay.from_url(f"smtp://127.0.0.1:{listener.getsockname()[1]}")),
                                       0.3)

        run(give_up())
        connection, _ = listener.accept()
        connection.settimeout(10)
        assert connection.recv(100) == b""  # closed by the client: end of stream, no greeting ever asked for
        connection.close()
    finally:
        listener.close()
