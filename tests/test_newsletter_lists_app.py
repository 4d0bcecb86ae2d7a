"""The signup service with lists, over real HTTP with a real SQLite store and a real SMTP server:
the form's choice travels signed in the confirmation link, only known rubriques are accepted, old links
still mean the whole blog, and a reader leaves every list (one click) or only some."""
import dataclasses
import re

import apsw

import httpx
import pytest

from blogcore.records import RecordsWriter
from newsletter.app import create_app
from newsletter.ratelimit import NO_LIMITS
from newsletter.serving import serve_in_thread
from newsletter.signing import Signer
from newsletter.store import open_store
from tests.fixtures.mail.support import Sink, start_server
from tests.test_newsletter_app import JSON, SECRET, Service, link_in, make_config, path_of

RUBRIQUES = {"ethique-biz": "éthique.biz", "humeurs-marketing": "Humeurs Marketing"}


@pytest.fixture
def service(tmp_path):
    records = RecordsWriter(tmp_path / "posts")  # what a build leaves: the rubriques of its posts
    records.put_rubriques(RUBRIQUES)
    records.commit()
    sink = Sink()
    smtp = start_server(sink, enable_SMTPUTF8=True)
    try:
        config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{smtp.port}")
        config = dataclasses.replace(config, settings={"MAIL_POSTS_PATH": str(tmp_path / "posts")})
        with serve_in_thread(create_app(config, limits=NO_LIMITS)) as url, \
                httpx.Client(base_url=url, follow_redirects=False, timeout=20) as client:
            yield Service(client, config, sink)
    finally:
        smtp.stop()


def read(service, sql) -> list[tuple]:
    """The store's rows, read with the store's own SQLite (apsw): a second SQLite library in this process
    (the stdlib's) would drop the service's WAL when it closes, its POSIX locks being the process's."""
    db = apsw.Connection(str(service.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(row) for row in db.execute(sql)]
    finally:
        db.close()


def memberships(service) -> list[tuple[str, str]]:
    return read(service, "SELECT s.email, m.list FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id "
                         "ORDER BY s.email, m.list")


def addresses(service) -> list[str]:
    return [row[0] for row in read(service, "SELECT email FROM subscribers")]


def sign_up(service, address, lists):
    """The form as the site's page posts it (the empty marker first), then the confirmation link: its path."""
    already = len(service.sink.envelopes)
    r = service.http.post("/newsletter/inscription", data={"email": address, "site_web": "", "listes": ["", *lists]})
    assert r.status_code == 303, r.text
    (mail,) = service.mails(already + 1)[already:]
    return path_of(link_in(mail))


def test_a_reader_chooses_one_rubrique_and_is_stored_on_it_only(service):
    path = sign_up(service, "lectrice@exemple.fr", ["ethique-biz"])
    assert addresses(service) == []  # nothing before consent
    assert Signer([SECRET]).read_confirm(path.rsplit("/", 1)[1]) == ("lectrice@exemple.fr", ["ethique-biz"])
    page = service.http.get(path)
    assert page.status_code == 200 and "la rubrique «\u202féthique.biz\u202f»" in page.text
    assert service.http.post(path).status_code == 303
    assert service.http.post(path).status_code == 303  # twice: nothing more
    assert memberships(service) == [("lectrice@exemple.fr", "ethique-biz")]
    welcome = service.mails(2)[1]
    assert welcome["Subject"] == "Bienvenue sur égoBlog"
    assert "Votre inscription porte sur\u202f: la rubrique «\u202féthique.biz\u202f»." in welcome.get_body(("plain",)).get_content()


def test_whole_blog_and_a_rubrique_then_another_rubrique_later(service):
    path = sign_up(service, "les-deux@exemple.fr", ["tout", "humeurs-marketing"])
    assert service.http.post(path).status_code == 303
    service.mails(2)  # the confirmation, the welcome
    later = sign_up(service, "les-deux@exemple.fr", ["ethique-biz"])
    assert service.http.post(later).status_code == 303
    assert memberships(service) == [("les-deux@exemple.fr", ""), ("les-deux@exemple.fr", "ethique-biz"),
                                    ("les-deux@exemple.fr", "humeurs-marketing")]
    last = service.mails(4)[3]  # a second welcome, naming every list the reader is on now
    assert "tout le blog, la rubrique «\u202féthique.biz\u202f» et la rubrique «\u202fHumeurs Marketing\u202f»" in \
        last.get_body(("plain",)).get_content()


@pytest.mark.parametrize("lists, status, words", [
    (["inexistante"], 422, "La rubrique «\u202finexistante\u202f» n’existe pas"),
    (["ethique-biz", "<script>"], 422, "La rubrique «\u202f&lt;script&gt;\u202f» n’existe pas"),
    ([], 422, "Cochez au moins une case"),
])
def test_a_choice_that_is_no_list_is_refused_in_french_and_nothing_is_mailed(service, lists, status, words):
    r = service.http.post("/newsletter/inscription", data={"email": "x@exemple.fr", "listes": ["", *lists]})
    assert r.status_code == status and words in r.text
    assert 'name="listes" value="ethique-biz"' in r.text  # the form again, with the rubriques to choose from
    j = service.http.post("/newsletter/inscription", json={"email": "x@exemple.fr", "listes": lists}, headers=JSON)
    assert j.status_code == status and words.replace("&lt;", "<").replace("&gt;", ">") in j.json()["erreur"]
    service.nothing_else_sent(0)


def test_a_form_without_the_choice_and_an_old_link_mean_the_whole_blog(service):
    r = service.http.post("/newsletter/inscription", json={"email": "ancien@exemple.fr"}, headers=JSON)
    assert r.status_code == 202
    assert Signer([SECRET]).read_confirm(link_in(service.mails(1)[0]).rsplit("/", 1)[1])[1] == [""]
    # A link mailed before lists existed: the address alone, signed the same way.
    from itsdangerous import URLSafeTimedSerializer
    old = URLSafeTimedSerializer([SECRET], salt="newsletter.confirm").dumps("fidele@exemple.fr")
    assert service.http.post(f"/newsletter/confirmer/{old}").status_code == 303
    assert memberships(service) == [("fidele@exemple.fr", "")]


def subscribed(service, address, lists):
    with open_store(service.db) as store:
        store.add(address, lists)
    return f"/newsletter/desinscription/{Signer([SECRET]).unsubscribe_token(address)}"


def test_unsubscribe_page_offers_everything_or_some_lists(service):
    path = subscribed(service, "multi@exemple.fr", ["", "ethique-biz", "humeurs-marketing"])
    page = service.http.get(path)
    assert page.status_code == 200 and "Me désinscrire de tout" in page.text
    assert re.findall(r'name="quitter" value="([^"]*)"', page.text) == ["", "tout", "ethique-biz", "humeurs-marketing"]
    r = service.http.post(path, data={"quitter": ["", "ethique-biz"]})
    assert r.status_code == 200 and "vous ne recevrez plus les billets de la rubrique «\u202féthique.biz\u202f»" in r.text
    assert "Vous restez inscrit à tout le blog et la rubrique «\u202fHumeurs Marketing\u202f»" in r.text
    assert memberships(service) == [("multi@exemple.fr", ""), ("multi@exemple.fr", "humeurs-marketing")]
    files = b"".join(p.read_bytes() for p in service.db.parent.glob(service.db.name + "*"))
    assert b"ethique-biz" not in files  # the list left is erased on disk, not just unlinked
    nothing = service.http.post(path, data={"quitter": [""]})
    assert nothing.status_code == 422 and "Cochez au moins une liste à quitter" in nothing.text
    assert len(memberships(service)) == 2
    last = service.http.post(path, data={"quitter": ["", "tout", "humeurs-marketing"]}, headers=JSON)
    assert last.status_code == 200 and "effacée" in last.json()["message"]  # off the last list: erased
    assert addresses(service) == [] and memberships(service) == []


def test_one_click_and_the_plain_button_leave_every_list(service):
    path = subscribed(service, "clic@exemple.fr", ["ethique-biz", "humeurs-marketing"])
    r = service.http.post(path, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and addresses(service) == [] and memberships(service) == []
    path = subscribed(service, "bouton@exemple.fr", ["", "ethique-biz"])
    r = service.http.post(path)
    assert r.status_code == 303 and r.headers["location"] == "/newsletter/desinscrit/"
    assert addresses(service) == [] and memberships(service) == []
