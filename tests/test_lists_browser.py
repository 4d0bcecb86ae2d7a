"""A real Chromium signs up for one rubrique only in the site's own form (dev server: built site + service),
confirms from the mail the service wrote, and `make send` (a real aiosmtpd server) then mails that rubrique's
post to this reader once, and the other rubrique's post not at all. The store holds addresses per list only."""
import io
import sqlite3
from collections import Counter

import pytest

from newsletter.config import Config
from newsletter.sender import send
from tests.fixtures.mail.support import Recorder, start_server
from tests.test_signup_browser import LINK, SECRET, devserver  # noqa: F401 - the dev server fixture

pytestmark = pytest.mark.browser

ETHIQUE_POST = "fidele-par-anticipation"  # content/posts: in « éthique.biz »
HUMEURS_POST = "le-like-abondant"         # in « Humeurs Marketing »


@pytest.fixture
def records_settings(site, tmp_path, monkeypatch):
    """Settings whose post records are the session build's: the service reads its rubriques there (the dev
    server started by `devserver` inherits NEWSLETTER_SETTINGS), and the sender its posts."""
    settings = tmp_path / "reglages.py"
    settings.write_text(f"from pelicanconf import *  # noqa\nMAIL_POSTS_PATH = {str(site.parent / 'var' / 'posts')!r}\n")
    monkeypatch.setenv("NEWSLETTER_SETTINGS", str(settings))
    return settings


def dump(db) -> dict:
    """Every table of the store, every row."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
    finally:
        con.close()


def test_a_reader_of_one_rubrique_gets_its_post_once_and_not_the_others(browser, records_settings, devserver):
    base, folder = devserver.base, devserver.folder
    db = folder / "abonnes.sqlite3"
    address = "lectrice.ethique@exemple.fr"
    context = browser.new_context()
    page = context.new_page()
    elsewhere = []
    page.on("request", lambda r: r.url.startswith(base) or elsewhere.append(r.url))

    page.goto(base + "/")
    form = page.locator("form.signup").first
    form.locator("input[name=email]").fill(address)
    assert form.get_by_label("tout le blog").is_checked()  # the default
    form.get_by_label("tout le blog").uncheck()
    form.get_by_label("la rubrique «\u202féthique.biz\u202f»").check()
    form.get_by_role("button", name="S’abonner").click()
    page.locator(".signup-result").first.filter(has_text="e-mail de confirmation").wait_for(timeout=10_000)

    ((mail, _),) = devserver.mails(1)
    assert mail["To"] == address
    link = LINK.search(mail.get_body(("plain",)).get_content()).group(0)
    assert dump(db)["subscribers"] == []  # nothing before consent
    page.goto(link)
    assert "la rubrique «\u202féthique.biz\u202f»" in page.locator("article").inner_text()
    page.get_by_role("button", name="Confirmer mon inscription").click()
    page.wait_for_url(base + "/newsletter/confirme/")
    assert elsewhere == [] and context.cookies() == []
    context.close()

    # A whole-blog reader beside her, through the same form without touching the choice.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base + "/")
    form = page.locator("form.signup").first
    form.locator("input[name=email]").fill("tout.le.blog@exemple.fr")
    form.get_by_role("button", name="S’abonner").click()
    page.wait_for_url(base + "/newsletter/verifiez/")
    (_, (second, _)) = devserver.mails(2)
    page.goto(LINK.search(second.get_body(("plain",)).get_content()).group(0))
    page.get_by_role("button", name="Confirmer mon inscription").click()
    page.wait_for_url(base + "/newsletter/confirme/")
    context.close()

    store = dump(db)
    ids = {email: id_ for id_, email in store["subscribers"]}
    assert set(store) == {"subscribers", "memberships", "sends", "send_ranges", "sqlite_sequence"}
    assert sorted(ids) == [address, "tout.le.blog@exemple.fr"]
    assert store["memberships"] == sorted([(ids[address], "ethiquebiz"), (ids["tout.le.blog@exemple.fr"], "")])
    assert store["sends"] == []

    handler = Recorder()
    smtp = start_server(handler)
    try:
        config = Config.from_env(environ={"NEWSLETTER_SETTINGS": str(records_settings), "NEWSLETTER_DB": str(db),
                                          "NEWSLETTER_SECRET": SECRET, "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"})
        out = io.StringIO()
        assert send([ETHIQUE_POST], config, out=out, err=out) == 0, out.getvalue()
        assert send([HUMEURS_POST], config, out=out, err=out) == 0, out.getvalue()
        assert send([ETHIQUE_POST], config, out=out, err=out) == 0 and "already sent" in out.getvalue()
    finally:
        smtp.stop()
    subjects = [(rcpts[0], raw.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0]) for _, rcpts, raw in handler.envelopes]
    assert Counter(r for r, _ in subjects) == Counter({address: 1, "tout.le.blog@exemple.fr": 2})
    assert len({s for r, s in subjects if r == address}) == 1
    assert handler.recipients[:2] == sorted([address, "tout.le.blog@exemple.fr"], key=ids.get)  # the post on ethique
    assert handler.recipients[2:] == ["tout.le.blog@exemple.fr"]                                 # the other: not her

    store = dump(db)  # after the sends: still addresses per list, and sends by post only
    assert store["memberships"] == sorted([(ids[address], "ethiquebiz"), (ids["tout.le.blog@exemple.fr"], "")])
    assert {row[0] for row in store["sends"]} == {ETHIQUE_POST, HUMEURS_POST}
