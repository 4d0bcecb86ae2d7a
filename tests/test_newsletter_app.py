"""The signup service over real HTTP (uvicorn on loopback), with a real SQLite file and
a real aiosmtpd server for mail (its arrival order is the order the worker sent them in),
or the outbox."""
import dataclasses
import email
import re
import sqlite3
import time
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest

from newsletter.app import PREVIEW_CSP, create_app
from newsletter.config import Config
from newsletter.ratelimit import NO_LIMITS, Limits, RateLimiter
from newsletter.serving import serve_in_thread
from newsletter.signing import Signer
from tests.fixtures.mail.support import Recorder, Sink, start_server
from tests.fixtures.typography import badly_spaced

SECRET = "secret-de-test-" + "x" * 24
JSON = {"Accept": "application/json"}
LINK = re.compile(r"https?://\S+/newsletter/confirmer/[\w.\-]+")


def make_config(tmp_path: Path, smtp_url=None) -> Config:
    return Config(public_url="http://127.0.0.1:8000", newsletter_url="http://127.0.0.1:8000/newsletter",
                  mail_from="égoBlog <lettre@egoblog.example>", reply_to="francois@egoblog.example",
                  site_name="égoBlog", db=str(tmp_path / "abonnes.sqlite3"), outbox=tmp_path / "outbox",
                  smtp_url=smtp_url, secrets=[SECRET])


class Service:
    """A running app: its HTTP client, its database file and the SMTP sink it mails to."""

    def __init__(self, client: httpx.Client, config: Config, sink: Sink):
        self.http, self.config, self.sink = client, config, sink
        self.db = Path(config.db)

    def signup(self, address, json=False, **extra):
        data = {"email": address, "site_web": "", **extra}
        if json:
            return self.http.post("/newsletter/inscription", json=data, headers=JSON)
        return self.http.post("/newsletter/inscription", data=data)

    def mails(self, count: int, timeout: float = 10) -> list[email.message.EmailMessage]:
        """Wait until the SMTP server has received `count` mails, and return them in arrival order."""
        envelopes = self.sink.wait_for(count, timeout)
        assert len(envelopes) == count, f"expected {count} mail(s), found {len(envelopes)}"
        return [email.message_from_bytes(e.content, policy=default_policy) for e in envelopes]

    def nothing_else_sent(self, already: int) -> None:
        """The worker handles mails in order: once a probe's mail is out, anything queued before is too."""
        assert self.signup("sonde@exemple.fr").status_code == 303
        last = self.mails(already + 1)[-1]
        assert last["To"] == "sonde@exemple.fr"

    def rows(self) -> list[tuple]:
        db = sqlite3.connect(self.db)
        try:
            return db.execute("SELECT email FROM subscribers").fetchall()
        finally:
            db.close()


def link_in(msg) -> str:
    return LINK.search(msg.get_body(("plain",)).get_content()).group(0)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@pytest.fixture
def service(tmp_path):
    sink = Sink()
    smtp = start_server(sink, enable_SMTPUTF8=True)
    try:
        config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{smtp.port}")
        with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url, \
                httpx.Client(base_url=url, follow_redirects=False, timeout=20) as client:
            yield Service(client, config, sink)
    finally:
        smtp.stop()


# -- signup -----------------------------------------------------------------

def test_form_signup_redirects_and_mails_a_signed_link(service):
    r = service.signup("Lecteur+lettre@Exemple.FR")
    assert r.status_code == 303 and r.headers["location"] == "/newsletter/verifiez/"
    (msg,) = service.mails(1)
    assert msg["Subject"] == "Confirmez votre inscription à égoBlog"
    assert msg["To"] == "Lecteur+lettre@exemple.fr"
    assert msg["From"] == "égoBlog <lettre@egoblog.example>"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    link = link_in(msg)
    assert "48\u00a0heures" in text and link in html and "Confirmer mon inscription" in html
    assert Signer([SECRET]).read_confirm_token(link.rsplit("/", 1)[1]) == "Lecteur+lettre@exemple.fr"
    assert "<img" not in html
    assert service.rows() == []  # nothing stored before consent


def test_json_signup(service):
    r = service.signup("lecteur@exemple.fr", json=True)
    assert r.status_code == 202
    assert "e-mail de confirmation" in r.json()["message"]
    assert service.mails(1)[0]["To"] == "lecteur@exemple.fr"


def test_multipart_signup(service):
    r = service.http.post("/newsletter/inscription", files={"email": (None, "multi@exemple.fr")})
    assert r.status_code == 303
    assert service.mails(1)[0]["To"] == "multi@exemple.fr"


GOOD = [
    ("prenom.nom@exemple.fr", "prenom.nom@exemple.fr"),
    ("prenom+lettre@exemple.fr", "prenom+lettre@exemple.fr"),
    ("Prenom@EXEMPLE.FR", "Prenom@exemple.fr"),
    ("  espaces@exemple.fr  ", "espaces@exemple.fr"),
    ("lecteur@exämple.fr", "lecteur@xn--exmple-cua.fr"),
    ("lecteur@xn--exmple-cua.fr", "lecteur@xn--exmple-cua.fr"),
    ("eleve@école.fr", "eleve@xn--cole-9oa.fr"),
    ("a@sous.domaine.exemple.co.uk", "a@sous.domaine.exemple.co.uk"),
    ("x_y-z'o@exemple.fr", "x_y-z'o@exemple.fr"),
]


@pytest.mark.parametrize("typed, stored", GOOD)
def test_good_addresses_are_accepted_and_normalised(service, typed, stored):
    assert service.signup(typed, json=True).status_code == 202
    (msg,) = service.mails(1)
    assert msg["To"] == stored
    token = link_in(msg).rsplit("/", 1)[1]
    assert Signer([SECRET]).read_confirm_token(token) == stored


BAD = [
    "élève@école.fr",  # non-ASCII before @: SMTPUTF8 only, which many servers refuse
    "пример@пример.рф",
    "",
    "   ",
    "sans-arobase.fr",
    "@exemple.fr",
    "lecteur@",
    "deux@@exemple.fr",
    "a@b@exemple.fr",
    "lecteur@exemple",
    "lecteur@localhost",
    "lecteur@machine.local",
    "lecteur@site.test",
    "lecteur@site.example",
    "lecteur@example.com",
    "lecteur@site.invalid",
    "lecteur@site.localhost",
    "lecteur@service.internal",
    "lecteur@abcdefghijklmnop.onion",
    "lecteur@1.0.0.127.in-addr.arpa",
    "lecteur@[127.0.0.1]",
    "lecteur@[IPv6:::1]",
    "lecteur@exemple.fr\r\nBcc: victime@exemple.fr",
    "lecteur@exemple.fr\nBcc: victime@exemple.fr",
    "lecteur@exemple.fr\rX: y",
    "lecteur\x00@exemple.fr",
    "lecteur@exemple.fr\x00",
    "lecteur@exemple.fr,autre@exemple.fr",
    "lecteur@exemple.fr; autre@exemple.fr",
    "lecteur@exemple.fr autre@exemple.fr",
    "Jean <lecteur@exemple.fr>",
    '"jean dupont"@exemple.fr',
    "jean..dupont@exemple.fr",
    ".jean@exemple.fr",
    "jean.@exemple.fr",
    "jean@-exemple.fr",
    "jean@exemple-.fr",
    "jean@exemple..fr",
    "jean@exe_mple.fr",
    "j" * 65 + "@exemple.fr",
    "jean@" + ("a" * 63 + ".") * 4 + "fr",
    "x@" + "a" * 250 + ".fr",
    "jean(commentaire)@exemple.fr",
    "jean@exemple.fr\t\x0b",
    "=?utf-8?q?pirate=40ailleurs.fr?=@exemple.fr",  # RFC 2047 encoded words: a mail program may decode them
    "=?utf-8?b?cGlyYXRl?=@exemple.fr",
]


@pytest.mark.parametrize("address", BAD)
def test_bad_addresses_get_a_french_4xx(service, address):
    r = service.signup(address, json=True)
    assert r.status_code == 422
    assert "adresse e-mail" in r.json()["erreur"]
    page = service.signup(address)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "adresse e-mail" in page.text and 'class="signup"' in page.text


def test_bad_addresses_send_no_mail(service):
    for address in BAD:
        assert service.signup(address, json=True).status_code == 422
    service.nothing_else_sent(0)


def test_two_email_fields_are_refused(service):
    r = service.http.post("/newsletter/inscription", content="email=a%40exemple.fr&email=b%40exemple.fr",
                          headers={"Content-Type": "application/x-www-form-urlencoded", **JSON})
    assert r.status_code == 422 and "une seule adresse" in r.json()["erreur"]


def test_honeypot_gets_the_usual_answer_and_nothing_is_sent(service):
    normal = service.signup("humain@exemple.fr")
    bot = service.signup("robot@exemple.fr", site_web="http://spam.example")
    assert (bot.status_code, bot.headers["location"]) == (normal.status_code, normal.headers["location"])
    assert service.signup("robot@exemple.fr", json=True, site_web="x").json() == \
        service.signup("humain2@exemple.fr", json=True).json()
    service.nothing_else_sent(2)
    assert [m["To"] for m in service.mails(3)][:2] == ["humain@exemple.fr", "humain2@exemple.fr"]


def test_same_answer_for_new_pending_and_subscribed(service):
    def answer(r):
        return r.status_code, r.content, {k: v for k, v in r.headers.items() if k != "date"}

    new = answer(service.signup("nouveau@exemple.fr", json=True))
    confirm_link = link_in(service.mails(1)[0])
    pending = answer(service.signup("nouveau@exemple.fr", json=True))
    service.http.post(path_of(confirm_link))
    assert service.rows() == [("nouveau@exemple.fr",)]
    subscribed = answer(service.signup("nouveau@exemple.fr", json=True))
    assert new == pending == subscribed
    # No shortcut for known addresses: each request sent its mail (and the confirmation, a welcome).
    subjects = sorted(m["Subject"] for m in service.mails(4))
    assert subjects == ["Bienvenue sur égoBlog"] + ["Confirmez votre inscription à égoBlog"] * 3
    assert service.rows() == [("nouveau@exemple.fr",)]


# -- confirm ------------------------------------------------------------------

def test_confirm_get_shows_a_button_and_stores_nothing(service):
    service.signup("lecteur@exemple.fr")
    path = path_of(link_in(service.mails(1)[0]))
    page = service.http.get(path)
    assert page.status_code == 200
    assert '<meta name="robots" content="noindex">' in page.text
    assert "Confirmer mon inscription" in page.text and 'method="post"' in page.text
    assert service.http.head(path).status_code == 200
    assert service.rows() == []


def test_confirm_post_stores_exactly_the_address(service):
    service.signup("Lecteur@Exämple.fr")
    path = path_of(link_in(service.mails(1)[0]))
    r = service.http.post(path)
    assert r.status_code == 303 and r.headers["location"] == "/newsletter/confirme/"
    assert service.http.post(path).status_code == 303  # twice: nothing more
    db = sqlite3.connect(service.db)
    tables = {r[0]: [c[1] for c in db.execute(f"PRAGMA table_info({r[0]})")]
              for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables["subscribers"] == ["id", "email"]  # the address, and a counter that orders the sender's walk
    assert db.execute("SELECT * FROM subscribers").fetchall() == [(1, "Lecteur@xn--exmple-cua.fr")]
    assert set(tables) == {"subscribers", "memberships", "sends", "send_ranges", "sqlite_sequence"}
    assert db.execute("SELECT * FROM memberships").fetchall() == [(1, "")]  # the whole blog's list
    assert db.execute("SELECT count(*) FROM sends").fetchone() == (0,)
    db.close()
    json = service.http.post(path, headers=JSON)
    assert json.status_code == 200 and "confirmée" in json.json()["message"]


def test_expired_link_says_so_and_offers_the_form(service):
    token = Signer([SECRET], clock=lambda: time.time() - 49 * 3600).confirm_token("tard@exemple.fr")
    for method in ("GET", "POST"):
        r = service.http.request(method, f"/newsletter/confirmer/{token}")
        assert r.status_code == 410
        assert "expiré" in r.text and 'class="signup"' in r.text
    assert service.http.post(f"/newsletter/confirmer/{token}", headers=JSON).json()["erreur"].startswith("Ce lien")
    assert service.rows() == []


@pytest.mark.parametrize("token", [
    "n-importe-quoi",
    Signer(["un-autre-secret-" + "z" * 20]).confirm_token("pirate@exemple.fr"),
    Signer([SECRET]).unsubscribe_token("pirate@exemple.fr"),
], ids=["garbage", "other-secret", "unsubscribe-token"])  # tokens carry the time: ids keep xdist workers in step
def test_bad_link(service, token):
    for method in ("GET", "POST"):
        r = service.http.request(method, f"/newsletter/confirmer/{token}")
        assert r.status_code == 400 and "pas valide" in r.text
    assert service.rows() == []


# -- unsubscribe --------------------------------------------------------------

def subscribe(service, address):
    already = len(service.sink.envelopes)
    service.signup(address)
    (mail,) = service.mails(already + 1)[already:]
    assert mail["To"] == address
    assert service.http.post(path_of(link_in(mail))).status_code == 303


def test_unsubscribe_page_then_post_erases_every_byte(service):
    others = [f"autre{n}@exemple.fr" for n in range(5)]
    from newsletter.store import open_store
    with open_store(service.db) as store:
        for o in others:
            store.add(o)
    address = "marie.curie+lettre@radium-exemple.fr"
    subscribe(service, address)
    token = Signer([SECRET]).unsubscribe_token(address)
    page = service.http.get(f"/newsletter/desinscription/{token}")
    assert page.status_code == 200 and "Me désinscrire" in page.text and "noindex" in page.text
    assert (address,) in service.rows()
    r = service.http.post(f"/newsletter/desinscription/{token}")
    assert r.status_code == 303 and r.headers["location"] == "/newsletter/desinscrit/"
    assert sorted(service.rows()) == sorted((o,) for o in others)
    files = [p for p in service.db.parent.iterdir() if p.name.startswith(service.db.name)]
    assert files
    for f in files:
        data = f.read_bytes()
        assert address.encode() not in data and b"radium-exemple" not in data, f.name
    # Idempotent.
    assert service.http.post(f"/newsletter/desinscription/{token}").status_code == 303


def test_one_click_unsubscribe_rfc8058(service):
    subscribe(service, "clic@exemple.fr")
    token = Signer([SECRET]).unsubscribe_token("clic@exemple.fr")
    r = service.http.post(f"/newsletter/desinscription/{token}", data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert service.rows() == []
    r = service.http.post(f"/newsletter/desinscription/{token}",
                          files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200


def test_unsubscribe_accepts_links_signed_with_the_previous_secret(tmp_path):
    old = "ancien-secret-" + "o" * 24
    config = make_config(tmp_path)
    config = Config(**{**config.__dict__, "secrets": [SECRET, old]})
    from newsletter.store import open_store
    with open_store(config.db) as store:
        store.add("fidele@exemple.fr")
    with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url:
        token = Signer([old]).unsubscribe_token("fidele@exemple.fr")
        assert httpx.post(f"{url}/newsletter/desinscription/{token}").status_code == 303
    with open_store(config.db) as store:
        assert store.count() == 0


def test_bad_unsubscribe_link(service):
    r = service.http.post("/newsletter/desinscription/abc.def.ghi")
    assert r.status_code == 400 and "pas valide" in r.text


# -- HTTP errors, headers -----------------------------------------------------

def test_body_too_large(service):
    r = service.http.post("/newsletter/inscription", data={"email": "a@exemple.fr", "x": "y" * 5000}, headers=JSON)
    assert r.status_code == 413 and "volumineux" in r.json()["erreur"]

    def chunks():  # no Content-Length: the limit holds on the stream too
        for _ in range(10):
            yield b"x" * 1000

    r = service.http.post("/newsletter/inscription", content=chunks(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "volumineux" in r.text


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", ""])
def test_other_content_types(service, ctype):
    r = service.http.post("/newsletter/inscription", content=b"email=a%40exemple.fr",
                          headers={"Content-Type": ctype, **JSON} if ctype else JSON)
    assert r.status_code == 415 and "Format non accepté" in r.json()["erreur"]


def test_malformed_json(service):
    r = service.http.post("/newsletter/inscription", content=b"{not json",
                          headers={"Content-Type": "application/json", **JSON})
    assert r.status_code == 400 and "erreur" in r.json()


@pytest.mark.parametrize("body", [
    b'{"email": ' + b"[" * 1500 + b"]" * 1500 + b"}",  # 3 KiB, nested 1,500 deep
    b'{"email": "a@\\ud800.test"}',  # a lone surrogate in a domain that would be refused
    b'{"email": "\\ud800a@exemple.fr"}',
    b'{"email": "a@exemple.fr", "site_web": ["\\udfff"]}',
], ids=["nested-1500", "surrogate-in-refused-domain", "surrogate-in-local-part", "surrogate-in-honeypot"])
def test_json_no_text_can_carry_is_refused_not_crashed(service, body):
    """Valid JSON that is no text, or too deep to read: a French 400, nothing queued."""
    r = service.http.post("/newsletter/inscription", content=body,
                          headers={"Content-Type": "application/json", **JSON})
    assert r.status_code == 400 and "illisible" in r.json()["erreur"], r.text
    assert service.sink.envelopes == []


def test_a_client_gone_mid_body_is_no_server_error(service):
    """A body cut short (the reader closed the tab): no traceback, no ERROR, and the service answers on."""
    import logging
    import socket
    from urllib.parse import urlsplit

    from sitebuild.build import ErrorLog

    errors = ErrorLog()
    server_log = logging.getLogger("uvicorn.error")  # where uvicorn reports an exception of the app
    server_log.addHandler(errors)
    where = urlsplit(str(service.http.base_url))
    with socket.create_connection((where.hostname, where.port)) as raw:
        raw.sendall(b"POST /newsletter/inscription HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a")
        # Once a later request is answered, the cut one is known to be in the app, waiting for its body.
        assert service.http.get("/newsletter/nulle-part").status_code == 404
    assert service.http.get("/newsletter/nulle-part").status_code == 404  # the disconnect is seen meanwhile
    assert service.signup("apres.coupure@exemple.fr").status_code == 303
    service.mails(1)
    server_log.removeHandler(errors)
    assert errors.messages == []


def test_unknown_route_and_wrong_method(service):
    r = service.http.get("/newsletter/nulle-part", headers=JSON)
    assert r.status_code == 404 and r.json() == {"erreur": "Cette page n’existe pas."}
    r = service.http.get("/newsletter/nulle-part")
    assert r.status_code == 404 and "Cette page n’existe pas." in r.text
    for method in ("GET", "PUT", "DELETE"):
        r = service.http.request(method, "/newsletter/inscription", headers=JSON)
        assert r.status_code == 405 and r.headers["allow"] == "POST" and "méthode" in r.json()["erreur"]
    r = service.http.put("/newsletter/confirmer/abc")
    assert r.status_code == 405 and "méthode" in r.text


def test_security_headers_everywhere_and_no_cookie(service):
    responses = [
        service.signup("a@exemple.fr"),
        service.signup("mauvaise", json=True),
        service.http.get("/nulle-part"),
        service.http.get("/newsletter/inscription"),
        service.http.get("/newsletter/confirmer/abc"),
        service.http.get("/newsletter/confirmer/" + Signer([SECRET]).confirm_token("a@exemple.fr")),
        service.http.post("/newsletter/confirmer/" + Signer([SECRET]).confirm_token("a@exemple.fr")),
        service.signup("b@exemple.fr"),  # the same 303 again (made once a page): its headers once each
    ]
    for r in responses:
        assert len(r.headers.get_list("content-security-policy")) == 1
        csp = r.headers["content-security-policy"]
        for part in ("default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
            assert part in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in r.headers
    assert not service.http.cookies


def test_an_endpoint_that_fails_answers_the_french_500_with_the_security_headers(service, caplog):
    """The endpoints are called straight (app.Front), not through Starlette's error middleware: a failure
    still gets its French page (or JSON), the security headers, and a log line without the address."""
    token = Signer([SECRET]).unsubscribe_token("lecteur@exemple.fr")
    db = sqlite3.connect(service.db)
    db.executescript("DROP TABLE memberships; DROP TABLE subscribers")  # what the page and the erasure read
    db.commit()
    db.close()
    with caplog.at_level("ERROR"):  # the server closes the connection after an error: a new one each
        page = service.http.get(f"/newsletter/desinscription/{token}", headers={"Connection": "close"})
        data = service.http.post(f"/newsletter/desinscription/{token}", headers={**JSON, "Connection": "close"})
    assert page.status_code == 500 and page.text == "Une erreur interne est survenue. Réessayez un peu plus tard."
    assert data.status_code == 500 and data.json() == {"erreur": page.text}
    for r in (page, data):
        assert "default-src 'self'" in r.headers["content-security-policy"] and "set-cookie" not in r.headers
    assert "unhandled error: SQLError" in caplog.text and "lecteur@exemple.fr" not in caplog.text


# -- rate limits ----------------------------------------------------------------

def test_rate_limits_per_client_and_per_address(tmp_path):
    config = make_config(tmp_path)
    limits = Limits(signup_per_client=(5, 60), mail_per_address=(2, 3600), links_per_client=None)
    started = time.monotonic()

    def retry_after(response, window: int) -> int:
        """Retry-After: whole seconds, no more than the limit's window, no less than what remains of it."""
        value = int(response.headers["retry-after"])
        assert window - (time.monotonic() - started) - 1 <= value <= window, (value, window)
        return value

    with serve_in_thread(create_app(config, limits=limits)) as url, httpx.Client(base_url=url) as http:
        post = lambda a: http.post("/newsletter/inscription", json={"email": a}, headers=JSON)  # noqa: E731
        assert [post("cible@exemple.fr").status_code for _ in range(3)] == [202, 202, 429]
        r = post("CIBLE@exemple.fr")
        assert r.status_code == 429 and "cette adresse" in r.json()["erreur"]
        retry_after(r, 3600)  # the per-address window is an hour: "come back in a minute" would be wrong
        assert post("autre@exemple.fr").status_code == 202
        r = post("encore@exemple.fr")
        assert r.status_code == 429 and "votre connexion" in r.json()["erreur"]
        retry_after(r, 60)
        html = http.post("/newsletter/inscription", data={"email": "x@exemple.fr"})
        assert html.status_code == 429 and "Trop de demandes" in html.text
        retry_after(html, 60)
    # Only the allowed requests produced mail.
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


# -- SMTP ---------------------------------------------------------------------

def test_confirmation_goes_through_smtp_when_configured(tmp_path):
    sink = Sink()
    controller = start_server(sink, enable_SMTPUTF8=True)
    try:
        config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{controller.port}")
        with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url:
            for a in ("smtp@exemple.fr", "eleve@école.fr"):
                assert httpx.post(f"{url}/newsletter/inscription", data={"email": a}).status_code == 303
            sink.wait_for(2)
    finally:
        controller.stop()
    assert [e.rcpt_tos for e in sink.envelopes] == [["smtp@exemple.fr"], ["eleve@xn--cole-9oa.fr"]]
    msg = email.message_from_bytes(sink.envelopes[0].content, policy=default_policy)
    assert msg["Subject"] == "Confirmez votre inscription à égoBlog"
    assert not (tmp_path / "outbox").exists()


# -- dev server ---------------------------------------------------------------

def test_dev_server_previews_the_mail_of_a_post(tmp_path, site):
    config = dataclasses.replace(make_config(tmp_path), settings={"MAIL_POSTS_PATH": str(site.parent / "var" / "posts")})
    with serve_in_thread(create_app(config, limits=NO_LIMITS, static_dir=site)) as url, \
            httpx.Client(base_url=url, timeout=20) as client:
        page = client.get("/newsletter/apercu/le-cr-aime")
        assert page.status_code == 200 and "Lire sur le blog" in page.text and "aime" in page.text
        assert page.headers.get_list("content-security-policy") == [PREVIEW_CSP]  # its own, not doubled
        assert page.headers["x-frame-options"] == "DENY"  # the others added
        text = client.get("/newsletter/apercu/le-cr-aime?texte")
        assert text.headers["content-type"].startswith("text/plain") and "Chers amis, lecteurs" in text.text
        missing = client.get("/newsletter/apercu/le-cr-aim")
        assert missing.status_code == 404 and "Did you mean 'le-cr-aime'?" in missing.text
    with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url, httpx.Client(base_url=url) as client:
        assert client.get("/newsletter/apercu/le-cr-aime").status_code == 404  # never in production


# -- French typography in what the service says -------------------------------------------

def test_answers_pages_and_mail_use_french_spacing(service):
    texts = [service.signup("lecteur@exemple.fr", json=True).json()["message"],
             service.signup("pas-une-adresse", json=True).json()["erreur"],
             re.sub(r"<[^>]+>", " ", service.signup("pas-une-adresse").text)]
    (mail,) = service.mails(1)
    texts += [part.get_content() for part in mail.walk() if part.get_content_maintype() == "text"]
    token = Signer([SECRET]).unsubscribe_token("lecteur@exemple.fr")
    texts.append(re.sub(r"<[^>]+>", " ", service.http.get(f"/newsletter/desinscription/{token}").text))
    for text in texts:
        assert not badly_spaced(text), badly_spaced(text)


@pytest.mark.parametrize("hosts, shared", [
    (["2001:db8:1:2::5", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::1:1"], True),  # one /64: one client
    (["2001:db8:1:2::5", "2001:db8:1:3::5"], False),  # two /64s: two clients
    (["192.0.2.7", "::ffff:192.0.2.7"], True),  # IPv4, directly or through a dual-stack socket
    (["192.0.2.7", "192.0.2.8"], False),
], ids=["ipv6-same-64", "ipv6-other-64", "ipv4-mapped", "ipv4"])
def test_per_client_limits_count_an_ipv6_client_by_its_64(hosts, shared):
    """Rate limits are keyed by client_key: 30 addresses of one /64 must not pass as 30 clients."""
    from starlette.requests import Request

    from newsletter.app import client_key

    keys = {client_key(Request({"type": "http", "client": (host, 50000), "headers": []})) for host in hosts}
    assert (len(keys) == 1) == shared, keys


# -- the confirmation mail is sent, or the reader is told to retry ------------------------------------

def signup_with_relay(tmp_path, smtp_url, address="lecteur@exemple.fr", deadline=2.0):
    """One JSON signup on a service whose relay is smtp_url; the response and the store's row count."""
    config = make_config(tmp_path, smtp_url=smtp_url)
    with serve_in_thread(create_app(config, limits=NO_LIMITS, mail_deadline=deadline)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/newsletter/inscription", json={"email": address}, headers=JSON)
        page = http.post("/newsletter/inscription", data={"email": address})
    with sqlite3.connect(config.db) as db:
        rows = db.execute("SELECT count(*) FROM subscribers").fetchone()[0]
    return r, page, rows


def test_relay_down_the_reader_is_told_to_retry_not_that_a_mail_left(tmp_path):
    r, page, rows = signup_with_relay(tmp_path, "smtp://127.0.0.1:9", deadline=1.0)  # nothing listens there
    assert r.status_code == 503 and "n’a pas pu partir" in r.json()["erreur"] and r.headers["retry-after"] == "300"
    assert page.status_code == 503 and "Réessayez dans quelques minutes" in page.text
    assert "verifiez" not in page.headers.get("location", "")
    assert rows == 0


def test_a_temporary_refusal_is_retried_and_the_mail_leaves_once(tmp_path):
    handler = Recorder(defer_once={"lecteur@exemple.fr"})  # 451 at the first DATA, then accepted
    server = start_server(handler)
    try:
        r, _, rows = signup_with_relay(tmp_path, f"smtp://127.0.0.1:{server.port}")
    finally:
        server.stop()
    assert r.status_code == 202, r.text
    assert handler.deferred == ["lecteur@exemple.fr"]
    assert handler.recipients == ["lecteur@exemple.fr"] * 2  # the JSON signup, then the form
    assert rows == 0  # nothing before consent


def test_a_recipient_the_relay_refuses_for_good_is_told_to_check_the_address(tmp_path):
    handler = Recorder(refuse={"lecteur@exemple.fr"})  # 550 at RCPT: the relay will never take it
    server = start_server(handler)
    try:
        r, _, _ = signup_with_relay(tmp_path, f"smtp://127.0.0.1:{server.port}")
    finally:
        server.stop()
    assert r.status_code == 422 and "refuse d’écrire à cette adresse" in r.json()["erreur"]
    assert "Rien n’a été enregistré" in r.json()["erreur"] and "retry-after" not in r.headers
    assert handler.envelopes == []


def test_retry_after_is_what_remains_of_the_refusing_window():
    clock = [1000.0]
    limiter = RateLimiter((3, 3600), clock=lambda: clock[0])
    for step in (0, 10, 20):
        clock[0] += step
        assert limiter.wait("cible@exemple.fr") == 0
    clock[0] += 70  # 100 s after the first hit
    assert limiter.wait("cible@exemple.fr") == 3500  # the first hit leaves the window in 3,500 s, not 60
    clock[0] += 3500
    assert limiter.wait("cible@exemple.fr") == 0


def test_beyond_its_bound_a_limiter_forgets_the_client_hit_least_recently(monkeypatch):
    """The memory bound drops the key hit longest ago, never one in use: a client just refused stays refused."""
    import newsletter.ratelimit as ratelimit
    monkeypatch.setattr(ratelimit, "MAX_KEYS", 3)
    clock = [0.0]
    limiter = RateLimiter((1, 60), clock=lambda: clock[0])
    for client in ("a", "b", "c"):
        assert limiter.wait(client) == 0
    assert limiter.wait("a") == 60        # refused, and now the most recent
    assert limiter.wait("d") == 0         # a fourth client: "b", hit longest ago, is forgotten
    assert limiter.wait("a") == 60 and limiter.wait("c") == 60 and limiter.wait("d") == 60
    assert limiter.wait("b") == 0         # forgotten, so let in again
    for n in range(1000):                 # a wave of new clients keeps the bound
        limiter.wait(f"vague{n}")
    assert len(limiter._hits) == 3
