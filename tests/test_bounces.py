"""`make bounces` and the signed return path: a real Dovecot on 127.0.0.1, a real Maildir, a real
SQLite store, real bounces in the formats of the main MTAs and providers (tests/fixtures/bounces/)."""
import email
import io
import mailbox
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.bounce_parse import Kind, classify
from newsletter.bounces import run
from newsletter.config import Config
from newsletter.links import unsubscribe_mailto
from newsletter.sender import send
from newsletter.signing import BadLink, Signer
from newsletter.store import open_store
from newsletter.verp import return_path, tokens_in
from tests.conftest import ROOT
from tests.fixtures.imap import dovecot  # noqa: F401 (a fixture)
from tests.fixtures.mail.support import Recorder, beside, build_site, environ, start_server, write_settings

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
SECRET = "secret-for-the-mail-tests-0123456789"

# What each fixture is, and whose address it erases (None: nobody).
EXPECTED = {
    "postfix-user-unknown.eml": (Kind.HARD, "claire.martin@example.org"),
    "exim-permanent.eml": (Kind.HARD, "bruno.petit@example.net"),
    "exchange-ndr.eml": (Kind.HARD, "denise.roux@corp.example.com"),
    "gmail-address-not-found.eml": (Kind.HARD, "emile.leroy@gmail.example"),
    "outlook-com-ndr.eml": (Kind.HARD, "fabien.garnier@outlook.example"),
    "yahoo-failure-notice.eml": (Kind.HARD, "gaelle.henry@yahoo.example"),
    "orange-dsn-no-verp.eml": (Kind.HARD, "helene.blanc@orange.example"),       # Final-Recipient, subscribed
    "free-message-non-remis.eml": (Kind.HARD, "ivan.lambert@free.example"),     # address in the text, subscribed
    "sfr-dsn.eml": (Kind.HARD, "julie.mercier@sfr.example"),
    "laposte-non-remis.eml": (Kind.HARD, "marie-claire.dupont-lefebvre@laposte.example"),  # short-form token
    "qmail-permanent.eml": (Kind.HARD, "karim.benali@example.com"),
    "huge-headers.eml": (Kind.HARD, "theo.marchand@example.org"),
    "wrong-charset.eml": (Kind.HARD, "ursula.meyer@example.org"),
    "arf-yahoo-complaint.eml": (Kind.COMPLAINT, "louise.fontaine@yahoo.example"),  # recipient redacted: the token
    "arf-outlook-jmrp.eml": (Kind.COMPLAINT, "marc.giraud@hotmail.example"),       # Original-Rcpt-To, subscribed
    "unsubscribe-valid.eml": (Kind.UNSUBSCRIBE, "nadia.colin@example.org"),
    "unsubscribe-forged.eml": (Kind.UNSUBSCRIBE, None),
    "temporary-postfix-delayed.eml": (Kind.TEMPORARY, None),
    "temporary-exim-warning.eml": (Kind.TEMPORARY, None),
    "mailbox-full-5-2-2.eml": (Kind.TEMPORARY, None),
    "autoreply-out-of-office.eml": (Kind.UNKNOWN, None),
    "autoreply-exchange-oof.eml": (Kind.UNKNOWN, None),
    "human-reply.eml": (Kind.UNKNOWN, None),
    "bounce-of-author-mail.eml": (Kind.HARD, None),   # a.stranger is not subscribed: nobody to erase
    "forged-verp.eml": (Kind.HARD, None),             # the token is forged, the named address not subscribed
    "bounce-of-forwarded-newsletter.eml": (Kind.HARD, None),  # the reader's tokens are in a forwarded copy only
    "success-dsn.eml": (Kind.UNKNOWN, None),
    "malformed-no-boundary.eml": (Kind.UNKNOWN, None),
    "malformed-missing-parts.eml": (Kind.UNKNOWN, None),
    "malformed-feedback-no-type.eml": (Kind.UNKNOWN, None),
    "binary-garbage.eml": (Kind.UNKNOWN, None),
}
ERASED = {address for kind, address in EXPECTED.values() if address}
# Subscribed and never to be erased: each appears in a fixture that must not touch it.
KEPT = {"olivier.perrin@example.org", "pauline.robin@example.org", "quentin.faure@example.org",
        "sophie.vidal@example.org", "author.friend@example.com", "victor.hugo@example.org"}
LEFT = {name for name, (kind, address) in EXPECTED.items() if address is None and kind is not Kind.TEMPORARY}
SUMMARY = ("15 adresses effacées (13 rejets définitifs, 2 plaintes), 1 désinscription par e-mail, "
           "3 rejets temporaires ignorés, 12 messages non compris laissés dans la boîte.")


def test_every_fixture_is_listed():
    assert sorted(p.name for p in FIXTURES.glob("*.eml")) == sorted(EXPECTED)


@pytest.fixture
def folder(tmp_path):
    write_settings(tmp_path)
    with open_store(tmp_path / "subscribers.sqlite3") as store:
        for address in sorted(ERASED | KEPT):
            store.add(address)
    return tmp_path


def config_of(folder) -> Config:
    return Config.from_env(environ=environ(folder))


def render(name: str, config: Config) -> bytes:
    """A fixture with its placeholders replaced by tokens signed with the test secret."""
    signer = Signer(config.secrets)

    def token(match):
        kind, address = match.group(1).decode(), match.group(2).decode()
        if kind == "verp":
            return return_path(config, signer, address).encode()
        if kind == "unsub":
            return signer.unsubscribe_token(address).encode()
        if kind == "forged-verp":
            return re.sub(r"-[a-z0-9]+@", "-aaaaaaaaaaaaaaaa@", return_path(config, signer, address)).encode()
        return signer.unsubscribe_token(address)[:-4].encode() + b"AAAA"  # forged-unsub

    return re.sub(rb"\{\{([a-z-]+):([^}]+)\}\}", token, (FIXTURES / name).read_bytes())


def subscribers(folder, name="subscribers.sqlite3") -> set[str]:
    with open_store(folder / name) as store:
        return set(store.emails())


def no_trace_on_disk(folder) -> None:
    """No byte of an erased address in any file the run could have written (store, -wal, lock…)."""
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for address in ERASED:
                assert address.encode() not in data, f"{address} left in {path}"


# -- the signed return path ----------------------------------------------------------------------


def test_return_path_names_the_reader_in_at_most_64_characters():
    signer = Signer(["a-secret-long-enough-0123"])
    short, long_ = "lea@example.fr", "a" * 60 + ".marie-claire.dupont-lefebvre@tres-long-domaine.example"
    for address in (short, long_, "ÉLOÏSE@exemple.fr"):
        token = signer.bounce_token(address, room=64 - len("lettre+"))
        assert len("lettre+" + token) <= 64 and re.fullmatch(r"[a-z0-9-]+", token)
        assert signer.read_bounce_token(token.upper(), lambda: ["x@y.fr", address]).lower() == address.lower()
    assert signer.bounce_token(short).startswith("a") and signer.bounce_token(long_, 57).startswith("h")
    assert signer.read_bounce_token(signer.bounce_token(short)) == short  # no lookup needed: it carries it
    rotated = Signer(["the-next-secret-0123456789", "a-secret-long-enough-0123"])
    assert rotated.read_bounce_token(signer.bounce_token(short)) == short


@pytest.mark.parametrize("token", ["", "a", "h", "axyz-abc", "hzzzz", "a" + "b" * 20 + "-" + "c" * 16, "ab!c-d"])
def test_a_forged_or_broken_bounce_token_is_refused(token):
    with pytest.raises(BadLink):
        Signer(["a-secret-long-enough-0123"]).read_bounce_token(token, lambda: ["lea@example.fr"])


def test_a_token_made_with_another_secret_is_refused():
    token = Signer(["someone-elses-secret-0123"]).bounce_token("lea@example.fr")
    with pytest.raises(BadLink):
        Signer(["a-secret-long-enough-0123"]).read_bounce_token(token, lambda: ["lea@example.fr"])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("bounces-site"))


def test_make_send_mails_from_a_signed_return_path_per_reader(built, tmp_path):
    beside(built, tmp_path)
    readers = ["lea@example.fr", "marie-claire.dupont-lefebvre@tres-long-domaine.example"]
    with open_store(tmp_path / "subscribers.sqlite3") as store:
        for address in readers:
            store.add(address)
    handler = Recorder()
    server = start_server(handler)
    try:
        config = Config.from_env(environ=environ(tmp_path, f"smtp://127.0.0.1:{server.port}"))
        assert send(["lettre-test"], config, out=io.StringIO(), err=io.StringIO()) == 0
    finally:
        server.stop()
    signer = Signer(config.secrets)
    seen = {}
    for mail_from, rcpt_tos, content in handler.envelopes:
        local, _, domain = mail_from.rpartition("@")
        assert domain == "egoblog.example" and local.startswith("lettre+") and len(local) <= 64
        assert tokens_in(mail_from) == [local.split("+", 1)[1]]
        seen[rcpt_tos[0]] = signer.read_bounce_token(tokens_in(mail_from)[0], lambda: readers)
        header_from = email.message_from_bytes(content)["From"]
        assert "lettre@egoblog.example" in header_from  # the From header is untouched
    assert seen == {address: address for address in readers}


# -- what each message is ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_is_understood_as_it_should(name, folder):
    assert classify(render(name, config_of(folder))).kind is EXPECTED[name][0]


def test_an_unsubscribe_subject_matches_the_list_unsubscribe_mailto(folder):
    config = config_of(folder)
    mailto = unsubscribe_mailto(config, Signer(config.secrets), "nadia.colin@example.org")
    subject = mailto.split("?subject=", 1)[1]
    verdict = classify(f"From: nadia.colin@example.org\nSubject: {subject}\n\n".encode())
    assert verdict.kind is Kind.UNSUBSCRIBE
    assert Signer(config.secrets).read_unsubscribe_token(verdict.unsubscribe[0]) == "nadia.colin@example.org"


# -- make bounces on a real IMAP server and on a Maildir -----------------------------------------


def test_make_bounces_on_imap_erases_exactly_the_right_readers_and_keeps_nothing(folder, dovecot):
    config = config_of(folder)
    dovecot.empty()
    dovecot.append([b"X-Fixture: " + name.encode() + b"\n" + render(name, config) for name in EXPECTED])
    env = {**os.environ, **environ(folder), "BOUNCE_MAILBOX": dovecot.url()}
    result = subprocess.run([sys.executable, "-m", "newsletter.bounces"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == SUMMARY
    assert "@" not in result.stdout + result.stderr
    assert subscribers(folder) == KEPT
    assert {email.message_from_bytes(raw)["X-Fixture"] for raw in dovecot.contents()} == LEFT
    no_trace_on_disk(folder)

    # Again: nothing left to do but the messages it does not understand, which stay.
    out = io.StringIO()
    assert run(config, dovecot.url(), out=out) == 0
    assert out.getvalue().strip() == ("0 adresse effacée (0 rejet définitif, 0 plainte), 0 désinscription par e-mail, "
                                      "0 rejet temporaire ignoré, 12 messages non compris laissés dans la boîte.")
    assert len(dovecot.contents()) == len(LEFT) and subscribers(folder) == KEPT


def test_a_bounce_about_an_address_already_gone_is_deleted_and_counted(folder, dovecot):
    config = config_of(folder)
    dovecot.empty()
    bounce = render("postfix-user-unknown.eml", config)
    dovecot.append([bounce, bounce])
    out = io.StringIO()
    assert run(config, dovecot.url(), out=out) == 0
    assert out.getvalue().startswith("1 adresse effacée (1 rejet définitif, 0 plainte), 0 désinscription par e-mail, "
                                     "1 message sur une adresse déjà absente")
    assert dovecot.contents() == []


def test_make_bounces_on_a_maildir(folder, tmp_path_factory):
    config = config_of(folder)
    path = tmp_path_factory.mktemp("maildir") / "Maildir"
    box = mailbox.Maildir(path, create=True)
    keys = {box.add(render(name, config)): name for name in EXPECTED}
    box.close()
    out = io.StringIO()
    assert run(config, str(path), out=out) == 0
    assert out.getvalue().strip() == SUMMARY
    assert subscribers(folder) == KEPT
    assert {keys[key] for key in mailbox.Maildir(path, create=False).keys()} == LEFT
    no_trace_on_disk(folder)


# -- errors and the lock -------------------------------------------------------------------------


def test_no_mailbox_configured_is_a_clear_error(folder):
    err = io.StringIO()
    assert run(config_of(folder), "", err=err) == 1
    assert "BOUNCE_MAILBOX" in err.getvalue()


def test_a_refused_login_names_the_server_never_the_password(folder, dovecot):
    err = io.StringIO()
    url = dovecot.url().replace(":motdepasse@", ":mauvais-secret@")
    assert run(config_of(folder), url, err=err) == 1
    assert f"127.0.0.1:{dovecot.port}" in err.getvalue() and "mauvais-secret" not in err.getvalue()
    assert subscribers(folder) == ERASED | KEPT


def test_a_folder_that_is_not_a_maildir_is_a_clear_error(folder, tmp_path):
    err = io.StringIO()
    assert run(config_of(folder), str(tmp_path / "nowhere"), err=err) == 1
    assert "Maildir" in err.getvalue()


def test_a_second_run_while_one_runs_does_nothing(folder, tmp_path_factory):
    import fcntl
    config = config_of(folder)
    path = tmp_path_factory.mktemp("maildir-locked") / "Maildir"
    box = mailbox.Maildir(path, create=True)
    box.add(render("postfix-user-unknown.eml", config))
    with open(folder / "subscribers.sqlite3.bounces-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out = io.StringIO()
        assert run(config, str(path), out=out) == 0
    assert "Another make bounces is running" in out.getvalue()
    assert len(box) == 1 and subscribers(folder) == ERASED | KEPT


# -- make release reads the bounces last, when there is a mailbox --------------------------------

RELEASE_SETTINGS = """\
import sys
sys.path.insert(0, {root!r})
from pelicanconf import *  # noqa
PATH = {folder!r} + "/content"
OUTPUT_PATH = {folder!r} + "/output"
CACHE_PATH = {folder!r} + "/cache"
MAIL_POSTS_PATH = {folder!r} + "/posts"
THEME = {root!r} + "/theme"
PLUGIN_PATHS = [{root!r} + "/plugins"]
PUBLIC_URL = "https://blog.example.fr"
"""


def test_make_release_reads_the_bounces_as_a_fourth_step_and_stops_if_it_fails(tmp_path):
    (tmp_path / "content" / "posts").mkdir(parents=True)
    (tmp_path / "content" / "posts" / "billet.md").write_text(
        "Title: Un billet\nDate: 2026-11-30 09:00\nSlug: billet\nCategory: Humeurs\nSummary: Résumé.\n\nCorps.\n")
    (tmp_path / "settings.py").write_text(RELEASE_SETTINGS.format(root=str(ROOT), folder=str(tmp_path)))
    env = {**os.environ, "DEPLOY_TARGET": str(tmp_path / "site"), "SITEURL": "https://blog.example.fr",
           "NEWSLETTER_SECRET": "release-" + "r" * 32, "NEWSLETTER_FROM": "égoBlog <lettre@blog.example.fr>",
           "NEWSLETTER_DB": str(tmp_path / "abonnes.sqlite3"), "NEWSLETTER_OUTBOX": str(tmp_path / "outbox"),
           "RELEASE_STATE": str(tmp_path / "state"), "BOUNCE_MAILBOX": str(tmp_path / "Maildir")}
    with open_store(tmp_path / "abonnes.sqlite3") as store:
        store.add_many(["claire.martin@example.org", "lea@example.fr"])

    def release():
        return subprocess.run([sys.executable, "-m", "sitebuild.release", "--settings", str(tmp_path / "settings.py")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    failed = release()  # no Maildir there yet: the last step fails, and says so
    assert failed.returncode == 1 and "== 4/4 read the bounces" in failed.stdout
    assert "stopped at step 4/4 (read the bounces)" in failed.stderr
    config = Config.from_env(environ={**env, "NEWSLETTER_SETTINGS": str(tmp_path / "settings.py")})
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(render("postfix-user-unknown.eml", config))
    done = release()
    assert done.returncode == 0, done.stderr
    assert "== 2/4 deploy: skipped" in done.stdout
    assert "1 adresse effacée (1 rejet définitif, 0 plainte)" in done.stdout
    assert subscribers(tmp_path, "abonnes.sqlite3") == {"lea@example.fr"} and len(box) == 0
    del env["BOUNCE_MAILBOX"]
    assert "== 3/3 send what is due" in release().stdout


def test_the_privacy_page_says_bounces_erase_and_nothing_is_kept():
    page = (ROOT / "content" / "pages" / "confidentialite.md").read_text(encoding="utf-8")
    assert "votre adresse est effacée de la même façon et rien n’est gardé de ce retour" in page


@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_make_bounces_over_tls(folder, dovecot, tls):
    config = config_of(folder)
    dovecot.empty()
    dovecot.append([render("sfr-dsn.eml", config), render("human-reply.eml", config)])
    url = dovecot.tls_url() if tls == "imaps" else dovecot.url() + "?starttls=1"
    out = io.StringIO()
    assert run(config, url, out=out, ssl_context=dovecot.tls_context()) == 0
    assert out.getvalue().startswith("1 adresse effacée (1 rejet définitif, 0 plainte)")
    assert "julie.mercier@sfr.example" not in subscribers(folder) and len(dovecot.contents()) == 1


def test_an_untrusted_imap_certificate_is_refused(folder, dovecot):
    err = io.StringIO()
    assert run(config_of(folder), dovecot.tls_url(), err=err) == 1
    assert f"127.0.0.1:{dovecot.tls_port}" in err.getvalue()
    assert subscribers(folder) == ERASED | KEPT


def test_only_the_messages_this_run_processed_are_expunged(folder, dovecot):
    """A message the author marked deleted but kept (not expunged) in the same box stays as it was."""
    config = config_of(folder)
    dovecot.empty()
    dovecot.append([render("human-reply.eml", config), render("sfr-dsn.eml", config)])
    imap = dovecot.client()
    imap.select("INBOX")
    imap.store("1", "+FLAGS.SILENT", r"(\Deleted)")
    imap.logout()
    assert run(config, dovecot.url(), out=io.StringIO()) == 0
    left = dovecot.contents()
    assert len(left) == 1 and b"Subject: Re: Un billet" in left[0]
