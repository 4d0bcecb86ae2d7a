"""What the service's fast paths must not change for a reader (bench/service_bench.py measures the speed):
the link pages set in typography once, the mails flattened once, relay connections kept open, the queue
that absorbs a signup wave, confirmations committed together, mails handed off in one write to a relay
that offers CHUNKING. Real uvicorn, SQLite, aiosmtpd, Postfix."""
import asyncio
import concurrent.futures
import email
import sqlite3
from email.policy import default as default_policy

import httpx
import pytest

from blogcore.typography import fix_html
from newsletter.app import create_app
from newsletter.confirmation import ConfirmationMail
from newsletter.links import confirm_url, list_unsubscribe_headers, unsubscribe_url
from newsletter.mailer import SMTPMailer, wire_bytes
from newsletter.outgoing import ADDRESS_REFUSED, BATCH, QUEUE_SIZE, WORKERS, Outgoing
from newsletter.pages import mail_environment, theme_environment
from newsletter.ratelimit import NO_LIMITS
from newsletter.serving import serve_in_thread
from newsletter.signing import Signer
from newsletter.welcome import WelcomeMail
from tests.fixtures.loops import run_async
from tests.fixtures.mail.support import Controller, Sink, free_port, start_server
from tests.test_asyncsmtp import Pipelining, chunking_server
from tests.test_newsletter_app import SECRET, link_in, make_config, path_of

TRICKY = ["lecteur@exemple.fr", 'a&b<c>"d\'@exemple.fr', "o'brien@exemple.fr", "<script>alert(1)</script>@x.fr",
          "&amp;&#39;@exemple.fr", '"deux mots"@exemple.fr', "élodie@exämple.fr", "x!y?z;@exemple.fr"]
PAGES = {"confirmer": ("service/confirm.html", "Confirmer votre inscription", "confirm_token"),
         "desinscription": ("service/unsubscribe.html", "Se désinscrire", "unsubscribe_token")}


@pytest.fixture
def relay():
    sink = Sink()
    server = start_server(sink)
    try:
        yield sink, server
    finally:
        server.stop()


@pytest.fixture
def app(tmp_path, relay):
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{relay[1].port}")
    with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url, \
            httpx.Client(base_url=url, follow_redirects=False, timeout=60) as client:
        yield client, config


@pytest.mark.parametrize("kind", PAGES)
def test_link_pages_are_the_whole_page_typography_render_with_the_address_as_written(app, kind):
    client, config = app
    template, title, token = PAGES[kind]
    whole_page = theme_environment(config).get_template(template)
    signer = Signer([SECRET])
    for address in TRICKY:
        page = client.get(f"/newsletter/{kind}/{getattr(signer, token)(address)}")
        assert page.status_code == 200
        # Byte for byte what typography over the whole page gave, for addresses it leaves alone.
        assert page.text == fix_html(whole_page.render(page_title=title, email=address)), address
        assert "<script>" not in page.text
    # An address typography would « correct » is shown exactly as it is written, plain spaces kept.
    page = client.get(f"/newsletter/{kind}/{getattr(signer, token)('« a »@exemple.fr')}")
    assert "<strong>« a »@exemple.fr</strong>" in page.text
    assert page.text.count("\u202f") == client.get(f"/newsletter/{kind}/{getattr(signer, token)('a@b.fr')}").text.count("\u202f")


@pytest.mark.parametrize("kind", ["confirmation", "bienvenue"])
def test_mails_flattened_once_read_as_the_message_built_per_reader(tmp_path, kind):
    config = make_config(tmp_path)
    signer = Signer([SECRET])
    for address in ["a@b.fr", "lecteur.au.nom.assez.long+lettre@exemple.fr", "x" * 64 + "@" + "d" * 60 + ".fr"]:
        if kind == "confirmation":
            mail = ConfirmationMail(config, signer, mail_environment(config))
            link, headers = confirm_url(config, signer, address), {"Auto-Submitted": "auto-generated"}
        else:
            mail = WelcomeMail(config, signer, mail_environment(config))
            link, headers = unsubscribe_url(config, signer, address), list_unsubscribe_headers(config, signer, address)
        service_mail = mail.mail if kind == "confirmation" else mail.for_lists(["tout le blog"])
        built = email.message_from_bytes(wire_bytes(service_mail.message(address, link, headers)), policy=default_policy)
        wire = service_mail.wire(address, link, headers)
        sent = email.message_from_bytes(wire, policy=default_policy)
        assert b"\n" not in wire.replace(b"\r\n", b"") and max(map(len, wire.split(b"\r\n"))) <= 998
        assert sent.keys() == built.keys()
        for name in built.keys():
            if name not in ("Date", "Message-ID", "Content-Type"):  # a new one per mail, a random boundary
                assert sent[name] == built[name], name
        assert sent.get_content_type() == "multipart/alternative" and not sent.defects
        for part in ("plain", "html"):
            assert sent.get_body((part,)).get_content() == built.get_body((part,)).get_content()
            assert link in sent.get_body((part,)).get_content().replace("&amp;", "&")


def test_a_relay_connection_closed_meanwhile_is_reopened_and_the_mail_goes(tmp_path):
    sink = Sink()
    port = free_port()
    first = Controller(sink, hostname="127.0.0.1", port=port)
    first.start()
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{port}")
    mail = ConfirmationMail(config, Signer([SECRET]), mail_environment(config))
    mailer = SMTPMailer(config.smtp_url)
    mailer.send_wire(mail.wire("un@exemple.fr")[0], "lettre@egoblog.example", ["un@exemple.fr"])
    first.stop()  # the relay restarts: the mailer's open connection is dead
    second = Controller(sink, hostname="127.0.0.1", port=port)
    second.start()
    try:
        mailer.send_wire(mail.wire("deux@exemple.fr")[0], "lettre@egoblog.example", ["deux@exemple.fr"])
        assert [e.rcpt_tos for e in sink.wait_for(2)] == [["un@exemple.fr"], ["deux@exemple.fr"]]
    finally:
        mailer.close()
        second.stop()


def test_signups_after_the_relay_restarted_still_get_their_mail(tmp_path):
    sink = Sink()
    relay = start_server(sink)
    port = relay.port
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{port}")
    with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url, \
            httpx.Client(base_url=url, follow_redirects=False, timeout=60) as client:
        with concurrent.futures.ThreadPoolExecutor(20) as pool:  # every worker opens a connection
            codes = list(pool.map(lambda n: client.post("/newsletter/inscription", data={"email": f"a{n}@exemple.fr"}).status_code, range(40)))
        assert codes == [303] * 40 and len(sink.wait_for(40)) == 40
        relay.stop()  # the workers' connections are dead now
        relay = Controller(sink, hostname="127.0.0.1", port=port)
        relay.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                codes = list(pool.map(lambda n: client.post("/newsletter/inscription", data={"email": f"b{n}@exemple.fr"}).status_code, range(40)))
            assert codes == [303] * 40
            assert {e.rcpt_tos[0] for e in sink.wait_for(80)[40:]} == {f"b{n}@exemple.fr" for n in range(40)}
        finally:
            relay.stop()


def test_a_wave_larger_than_the_old_queue_is_all_taken(tmp_path, relay):
    sink, server = relay
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{server.port}")
    wave = 2_500  # the queue held 2,000: the rest were answered 503
    assert QUEUE_SIZE >= 2 * wave

    async def wave_of_signups():
        outgoing = Outgoing(config, Signer([SECRET]), deadline=300)
        await outgoing.start()
        try:
            outcomes = [outgoing.submit(f"lecteur{n}@exemple.fr") for n in range(wave)]
            assert None not in outcomes  # None: the handler answers 503
            return await asyncio.gather(*outcomes)
        finally:
            await outgoing.stop()

    assert run_async(wave_of_signups()) == [True] * wave
    assert len({e.rcpt_tos[0] for e in sink.wait_for(wave)}) == wave


def test_confirmations_at_once_are_each_stored_once_with_one_welcome_mail(app, relay):
    client, config = app
    sink = relay[0]
    signer = Signer([SECRET])
    addresses = [f"lecteur{n}@exemple.fr" for n in range(30)]
    paths = [f"/newsletter/confirmer/{signer.confirm_token(a)}" for a in addresses]
    with concurrent.futures.ThreadPoolExecutor(30) as pool:  # each twice, all at once
        codes = list(pool.map(lambda path: client.post(path).status_code, paths + paths))
    assert codes == [303] * 60
    with sqlite3.connect(config.db) as db:
        assert sorted(r[0] for r in db.execute("SELECT email FROM subscribers")) == sorted(addresses)
    welcomes = sink.wait_for(30)
    assert sorted(e.rcpt_tos[0] for e in welcomes) == sorted(addresses)
    assert client.post(paths[0]).status_code == 303  # once more: already there, no mail
    probe = client.post(f"/newsletter/confirmer/{signer.confirm_token('sonde@exemple.fr')}")
    assert probe.status_code == 303
    assert sorted(e.rcpt_tos[0] for e in sink.wait_for(31)) == sorted(addresses + ["sonde@exemple.fr"])


def test_through_postfix_every_signup_gets_its_mail_and_its_link_confirms(tmp_path, postfix):
    """Postfix offers CHUNKING, so each mail leaves in one write (BDAT): what the readers get is the same."""
    config = make_config(tmp_path, smtp_url=postfix.url)
    readers = [f"relais{n}@exemple.fr" for n in range(30)]
    before = len(postfix.sessions())

    def mails(wanted: list[tuple[str, str]]) -> list:
        """The mails (address, subject) wanted, in that order, once they have all come through Postfix."""
        def found(envelopes):
            got = {}
            for e in envelopes:
                msg = email.message_from_bytes(e.content, policy=default_policy)
                got.setdefault((e.rcpt_tos[0], msg["Subject"]), msg)
            return [got[w] for w in wanted] if all(w in got for w in wanted) else []
        return postfix.sink.wait_until(found)

    with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url, \
            httpx.Client(base_url=url, follow_redirects=False, timeout=60) as client:
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda a: client.post("/newsletter/inscription", data={"email": a}).status_code,
                                  readers))
        assert codes == [303] * len(readers)
        confirmations = mails([(a, "Confirmez votre inscription à égoBlog") for a in readers])
        assert [m["To"] for m in confirmations] == readers
        assert client.post(path_of(link_in(confirmations[7]))).status_code == 303
        (welcome,) = mails([(readers[7], "Bienvenue sur égoBlog")])
        assert "/desinscription/" in welcome.get_body(("plain",)).get_content()
    assert sqlite3.connect(config.db).execute("SELECT email FROM subscribers").fetchall() == [(readers[7],)]
    # The service stopped and closed its connections: every mail went as BDAT, none as DATA.
    sessions = postfix.sessions(before, enough=lambda ended: postfix.commands(ended, "bdat") >= 31)
    assert (postfix.commands(sessions, "bdat"), postfix.commands(sessions, "data")) == (31, 0), sessions


def test_through_postfix_a_wave_leaves_in_batches_each_mail_with_its_own_outcome(tmp_path, postfix):
    """More mails than workers: each worker sends the ones waiting back to back in one write (BDAT); a
    refusal among them concerns its own mail only, and nothing arrives twice."""
    config = make_config(tmp_path, smtp_url=postfix.url)
    readers = [f"vague{n}@exemple.fr" for n in range(300)]
    before = len(postfix.sessions())

    async def wave():
        # The deadline: the refused-for-now mail's outcome comes at it; every other mail must leave before
        # it, which took over 1 s once on this 2-core machine with the rest of the suite running beside.
        outgoing = Outgoing(config, Signer([SECRET]), deadline=4.0)
        await outgoing.start()
        try:
            return await asyncio.gather(*[outgoing.submit(address) for address in
                                          readers[:150] + ["inconnu@exemple.fr", "plein@exemple.fr"] + readers[150:]])
        finally:
            await outgoing.stop()

    outcomes = run_async(wave())
    assert outcomes[150:152] == [ADDRESS_REFUSED, False]  # refused for good; refused for now until its deadline
    assert outcomes[:150] + outcomes[152:] == [True] * len(readers)
    mine = postfix.sink.wait_until(lambda envelopes: [e for e in envelopes if e.rcpt_tos[0] in readers]
                                   if sum(e.rcpt_tos[0] in readers for e in envelopes) >= len(readers) else [])
    assert sorted(e.rcpt_tos[0] for e in mine) == sorted(readers)  # each once
    sessions = postfix.sessions(before, enough=lambda ended: postfix.commands(ended, "bdat") >= 302)
    assert postfix.commands(sessions, "data") == 0 and postfix.commands(sessions, "bdat") >= 302


def test_a_connection_dropped_mid_batch_costs_a_resend_not_a_mail(tmp_path):
    """The relay drops the connection while a batch is on it (after taking some of it): the mails whose
    answer never came go again on a new connection, and every reader gets theirs. A mail the relay took
    whose answer was lost with the connection goes again too (at least once, as SMTP allows): at most
    the one batch that was on it arrives twice."""
    handler = Pipelining(chunking=True)
    controller = chunking_server(handler, drop=40)  # the 40th message overall: within a batch
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{controller.port}")
    readers = [f"lot{n}@exemple.fr" for n in range(200)]

    async def wave():
        outgoing = Outgoing(config, Signer([SECRET]), deadline=30)
        await outgoing.start()
        try:
            return await asyncio.gather(*[outgoing.submit(address) for address in readers])
        finally:
            await outgoing.stop()

    try:
        assert run_async(wave()) == [True] * len(readers)
    finally:
        controller.stop()
    received = [e.rcpt_tos[0] for e in handler.envelopes]
    assert sorted(set(received)) == sorted(readers) and len(received) - len(readers) < BATCH
    assert len(handler.sessions) > WORKERS  # the dropped connection was replaced
