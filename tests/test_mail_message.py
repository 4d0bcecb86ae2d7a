"""The newsletter mail built from the fixture posts: MIME, headers, HTML, plain text, errors."""
import dataclasses
import email
import email.policy
import json
import re
import sqlite3

import pytest

from newsletter.config import Config
from newsletter.links import unsubscribe_mailto, unsubscribe_url
from newsletter.mail_message import PostError, build_mail, load_posts
from newsletter.preview import render_preview
from newsletter.signing import Signer
from tests.conftest import build
from tests.fixtures.mail.support import CONTENT, environ, write_settings

READER = "lectrice@example.org"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mail")
    settings = write_settings(folder)
    build(CONTENT, folder / "output", settings=str(settings))
    return folder


@pytest.fixture(scope="module")
def config(built):
    return Config.from_env(environ=environ(built))


def message_for(config, slugs, reader=READER):
    """The parsed message, its signer, and the unsubscribe URL it was given (the token carries a timestamp:
    one made again a second later differs)."""
    mail = build_mail(config, load_posts(config, slugs))
    signer = Signer(config.secrets)
    url = unsubscribe_url(config, signer, reader)
    msg = mail.message(reader, url, unsubscribe_mailto(config, signer, reader))
    return email.message_from_bytes(msg.as_bytes(), policy=email.policy.default), signer, url


def test_records_are_written_outside_the_site(built):
    records = {slug: json.loads(record) for slug, record in sqlite3.connect(built / "posts" / "records.sqlite3")
               .execute("SELECT slug, record FROM posts")}
    assert sorted(records) == ["autre-billet", "lettre-test"]  # the draft is not there
    # The records stay beside the site: the only JSON it publishes is the JSON Feeds and the search index.
    published = [p.relative_to(built / "output") for p in (built / "output").rglob("*.json")]
    assert {p.name for p in published if p.parts[0] != "pagefind"} <= {"feed.json"}
    record = records["lettre-test"]
    assert record["url"] == "https://blog.example.fr/2018/03/lettre-test/"
    assert record["date"] == "2018-03-04T09:30:00+01:00"
    assert record["category"]["url"] == "https://blog.example.fr/categorie/humeurs-marketing/"
    assert 'src="https://blog.example.fr/images/graphique.png"' in record["content_html"]
    assert 'href="https://blog.example.fr/2018/03/autre-billet/"' in record["content_html"]


def test_mime_structure_and_utf8(config):
    msg, _, _ = message_for(config, ["lettre-test"])
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    for part in msg.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
        body = part.get_content()
        for needle in ("écrit à la française", "«", "»", "😉", "clin d’œil"):
            assert needle in body, (part.get_content_type(), needle)
    assert "😉" in msg["Subject"] and "« d’essai »" in msg["Subject"].replace("\u202f", " ").replace("\xa0", " ")


def test_headers(config):
    msg, signer, url = message_for(config, ["lettre-test"])
    assert msg["To"] == READER
    assert msg["From"].addresses[0].addr_spec == "lettre@egoblog.example"
    assert msg["Reply-To"].addresses[0].addr_spec == "francois@egoblog.example"
    assert msg["Date"].datetime is not None
    assert re.fullmatch(r"<[0-9a-f]{32}@blog\.example\.fr>", msg["Message-ID"])
    assert msg["List-Id"].endswith("<egoblog.blog.example.fr>")
    links = re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
    assert links[0] == url and links[0].startswith("https://blog.example.fr/")
    assert links[1].startswith("mailto:francois@egoblog.example?subject=unsubscribe-")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert signer.read_unsubscribe_token(links[0].rsplit("/", 1)[1]) == READER


def test_html_is_the_post_untracked(config, built):
    msg, _, url = message_for(config, ["lettre-test"])
    html = msg.get_body(("html",)).get_content()
    (text,) = sqlite3.connect(built / "posts" / "records.sqlite3").execute(
        "SELECT record FROM posts WHERE slug = 'lettre-test'").fetchone()
    record = json.loads(text)
    # Only the post's own images, each with an alt text.
    images = re.findall(r"<img\b[^>]*>", html)
    assert [re.search(r'src="([^"]+)"', i)[1] for i in images] == re.findall(r'<img[^>]*src="([^"]+)"', record["content_html"])
    assert all(re.search(r'\balt="', i) for i in images)
    # Links are the post's links, untouched, plus the site's own and the unsubscribe link.
    links = re.findall(r'<a\b[^>]*href="([^"]+)"', html)
    post_links = re.findall(r'<a\b[^>]*href="([^"]+)"', record["content_html"])
    assert all(link in links for link in post_links)
    own = {record["url"], record["category"]["url"], "https://blog.example.fr/",
           url}
    assert set(links) - set(post_links) <= own
    assert url in links
    assert ">Lire sur le blog</a>" in html and ">Humeurs Marketing</a>" in html
    assert "Vous recevez cette lettre parce que vous vous êtes inscrit sur égoBlog." in html
    # Dark mode and layout kept for the clients that read <style>; the rest is inlined.
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "prefers-color-scheme: dark" in html
    assert 'class="preheader"' in html and "Un billet d’essai pour la lettre" in html
    assert "max-width:600px" in html.replace(" ", "")


def test_only_the_unsubscribe_link_differs_between_readers(config):
    mail = build_mail(config, load_posts(config, ["lettre-test"]))
    a = mail.sample("https://x.example/AAA")
    b = mail.sample("https://x.example/BBB")
    assert a[0].replace("AAA", "BBB") == b[0] and a[1].replace("AAA", "BBB") == b[1]


def test_plain_text_from_markdown(config):
    msg, _, url = message_for(config, ["lettre-test"])
    raw = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "«\u202fguillemets\u202f»" in raw  # French typography applied to the prose
    text = raw.replace("\u202f", " ").replace("\xa0", " ")
    assert "<" not in text.replace("<https", "")
    assert "un article du Monde [1]" in text.replace("\n", " ")
    assert "[1] https://www.lemonde.fr/economie/article/2015/10/17/une-etude.html" in text
    assert "[2] https://blog.example.fr/2018/03/autre-billet/" in text  # intra-site link as the site resolved it
    long_url = "https://example.org/une/tres/longue/adresse/qui/ne/doit/jamais/etre/coupee/au/milieu/index.html"
    # The long link is the list's third reference, on one line of its own, whole (never cut).
    assert "avec un lien [3] ;" in text
    assert f"[3] {long_url}" in text.splitlines()
    assert "Une liste à puces\n-----------------" in text
    assert "\n- premier point" in text and "\n1. Un\n2. Deux" in text
    assert "> Une citation" in text
    assert "[Image : Un graphique des ventes]" in text
    assert "Lire sur le blog : https://blog.example.fr/2018/03/lettre-test/" in text
    assert url in text
    for line in text.splitlines():
        assert len(line) <= 72 or "://" in line, line


def test_digest_is_one_mail_with_each_post(config):
    msg, _, _ = message_for(config, ["lettre-test", "autre-billet"])
    assert msg["Subject"] == "égoBlog\u202f: 2 nouveaux billets"
    html = msg.get_body(("html",)).get_content()
    raw = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "«\u202fguillemets\u202f»" in raw  # French typography applied to the prose
    text = raw.replace("\u202f", " ").replace("\xa0", " ")
    for url in ("https://blog.example.fr/2018/03/lettre-test/", "https://blog.example.fr/2018/03/autre-billet/"):
        assert f'href="{url}"' in html and url in text
    assert html.count(">Lire sur le blog</a>") == 2


def test_unknown_slug_suggests_a_close_match(config):
    with pytest.raises(PostError, match=r"No post with slug 'lettre-tset'.*Did you mean 'lettre-test'"):
        load_posts(config, ["lettre-tset"])


def test_post_not_built(config):
    with pytest.raises(PostError, match="run make build first"):
        load_posts(config, ["brouillon"])


def test_preview_gives_html_and_text(config):
    html, text = render_preview(config, "lettre-test")
    assert html.startswith("<!DOCTYPE html>") and "/newsletter/desinscription/apercu" in html
    assert "Chers lecteurs" in text


def test_posts_built_for_another_site_are_refused(config):
    """A mail must not mix the post's links with unsubscribe links to another address."""
    elsewhere = dataclasses.replace(config, public_url="http://127.0.0.1:8000",
                                    newsletter_url="http://127.0.0.1:8000/newsletter")
    with pytest.raises(PostError, match=r"built for https://blog.example.fr but .* http://127.0.0.1:8000"):
        load_posts(elsewhere, ["lettre-test"])
