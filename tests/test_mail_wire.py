"""`Mail.wire`, the bytes `make send` hands each reader (the message flattened once, filled in per reader),
against `Mail.message` flattened by the email package (the slow builder it replaces): the same headers and
parts for every reader, tricky addresses and links included, lines within the limits, and a DKIM signature
that verifies on what a real relay (aiosmtpd) receives from a real send."""
import dataclasses
import email
import email.policy
import io
import re

import dkim
import pytest

from newsletter.addresses import InvalidAddress, normalize_address
from newsletter.config import Config
from newsletter.links import unsubscribe_mailto, unsubscribe_url
from newsletter.mail_message import build_mail, load_posts
from newsletter.mailer import wire_bytes
from newsletter.sender import send
from newsletter.signing import Signer
from newsletter.store import open_store
from tests.fixtures.mail.support import Sink, beside, build_site, environ, start_server

TRICKY = [
    "x" * 64 + "@" + "sous-domaine." * 14 + "fr",  # the longest local part, a 254-character address
    "lectrice+lettre@exemple.fr", "a+b+c@sous.domaine.exemple.fr", "o'brien@exemple.fr",
    '"jean dupont"@exemple.fr', '"a\\"b"@exemple.fr', "x!y?z#$%&*/=^`{|}~@exemple.fr",
    normalize_address("lea@exämple.fr"),  # an IDN domain, stored in its ASCII form
    normalize_address("Lectrice@Domaine.Exemple.FR"),
]
READERS = TRICKY + [f"lecteur{n:04d}@exemple{n % 7}.fr" for n in range(150)]
SLUGS = [["lettre-test"], ["lettre-test", "autre-billet"]]  # one post, a digest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("wire"))


@pytest.fixture(scope="module")
def config(built):
    return Config.from_env(environ=environ(built))


def links(config, reader, extra=""):
    signer = Signer(config.secrets)
    return unsubscribe_url(config, signer, reader) + extra, unsubscribe_mailto(config, signer, reader)


def split(data: bytes) -> tuple[email.message.EmailMessage, bytes]:
    """The parsed message, and its body with the MIME boundary replaced by a fixed word."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    body = data.split(b"\r\n\r\n", 1)[1]
    return msg, body.replace(msg.get_boundary().encode(), b"BOUNDARY")


def assert_same(fast: bytes, slow: bytes) -> None:
    fast_msg, fast_body = split(fast)
    slow_msg, slow_body = split(slow)
    assert not fast_msg.defects and [part.defects for part in fast_msg.iter_parts()] == [[], []]
    mine = [(name, str(value)) for name, value in fast_msg.items()]
    theirs = [(name, str(value)) for name, value in slow_msg.items()]
    assert [name for name, _ in mine] == [name for name, _ in theirs]
    for (name, value), (_, other) in zip(mine, theirs):
        if name == "Date":  # each its own clock reading
            assert abs((fast_msg["Date"].datetime - slow_msg["Date"].datetime).total_seconds()) < 60
        elif name == "Message-ID":  # each its own
            assert re.fullmatch(r"<[0-9a-f]{32}@[a-z0-9.-]+>", value) and value != other
            assert value.split("@")[1] == other.split("@")[1]
        elif name == "Content-Type":
            assert fast_msg.get_content_type() == slow_msg.get_content_type() == "multipart/alternative"
        else:
            assert value == other, name
    for part, other in zip(fast_msg.iter_parts(), slow_msg.iter_parts(), strict=True):
        assert list(part.items()) == list(other.items())
        assert part.get_content() == other.get_content()
    assert fast_body == slow_body  # the very same encoded bodies, byte for byte


def assert_line_lengths(data: bytes) -> None:
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    boundary = email.message_from_bytes(data, policy=email.policy.default).get_boundary().encode()
    for line in body.split(b"\r\n"):
        if boundary not in line:
            assert len(line) <= 76, line  # quoted-printable (parts' headers are short too)


@pytest.mark.parametrize("slugs", SLUGS, ids=["post", "digest"])
def test_every_reader_gets_what_the_slow_builder_makes(config, slugs):
    mail = build_mail(config, load_posts(config, slugs))
    for n, reader in enumerate(READERS):
        extra = "?liste=" + "rubrique-" * (n % 20) + "&x=<y>" if n % 3 else ""  # longer links, to escape
        url, mailto = links(config, reader, extra)
        fast = mail.wire(reader, url, mailto)
        assert_same(fast, wire_bytes(mail.message(reader, url, mailto)))
        assert_line_lengths(fast)
        parsed = email.message_from_bytes(fast, policy=email.policy.default)
        assert parsed["To"].addresses[0].addr_spec == email.headerregistry.Address(addr_spec=reader).addr_spec
        text, html = (part.get_content() for part in parsed.iter_parts())
        assert url in text and url.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html
        assert str(parsed["List-Unsubscribe"]).strip() == f"<{url}>, <{mailto}>"


def test_each_mail_has_its_own_date_and_message_id_from_one_template(config):
    mail = build_mail(config, load_posts(config, ["lettre-test"]))
    first, second = (mail.wire(reader, *links(config, reader)) for reader in READERS[:2])
    ids = [email.message_from_bytes(data, policy=email.policy.default)["Message-ID"] for data in (first, second)]
    assert ids[0] != ids[1]
    assert first.split(b"\r\n\r\n", 1)[1] != second.split(b"\r\n\r\n", 1)[1]  # each its own link


def test_a_non_ascii_local_part_is_refused_at_signup_and_built_as_before(config):
    with pytest.raises(InvalidAddress):
        normalize_address("élodie@exemple.fr")  # needs SMTPUTF8: never in the store
    mail = build_mail(config, load_posts(config, ["lettre-test"]))
    url, mailto = links(config, "élodie@exemple.fr")
    assert_same(mail.wire("élodie@exemple.fr", url, mailto), wire_bytes(mail.message("élodie@exemple.fr", url, mailto)))


def test_make_send_mails_verify_with_dkim_on_the_relay(built, tmp_path, dns_server):
    """`make send` with a DKIM key: each reader's bytes, as the relay receives them, verify against the
    key a real DNS server publishes, and go to that reader from their own return path."""
    beside(built, tmp_path)
    readers = TRICKY[:3] + TRICKY[-2:]
    with open_store(tmp_path / "subscribers.sqlite3") as store:
        for reader in readers:
            store.add(reader)
    sink = Sink()
    server = start_server(sink)
    try:
        config = Config.from_env(environ=environ(tmp_path, f"smtp://127.0.0.1:{server.port}"))
        config = dataclasses.replace(config, mail_from="égoBlog <lettre@ok.test>", dkim=dns_server.key)
        assert send(["lettre-test"], config, out=io.StringIO(), err=io.StringIO()) == 0
        envelopes = sink.wait_for(len(readers))
    finally:
        server.stop()
    assert sorted(rcpt for envelope in envelopes for rcpt in envelope.rcpt_tos) == sorted(readers)
    for envelope in envelopes:
        assert dkim.verify(envelope.content, dnsfunc=dns_server.dnsfunc)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert msg["To"].addresses[0].addr_spec == envelope.rcpt_tos[0]
        assert envelope.mail_from.startswith("lettre+") and envelope.mail_from.endswith("@ok.test")
        assert_line_lengths(envelope.content)
