"""A post's Lang decides its typography, its dates and its page's <html lang>: French rules for French posts only."""
import json
import re
import shutil

import lxml.html
import pytest

from newsletter.config import Config
from newsletter.mail_message import build_mail, load_posts
from tests.conftest import ROOT, build
from tests.fixtures.mail.support import environ, write_settings

ENGLISH = """\
Title: What now? A test: really
Date: 2016-05-04 10:00
Slug: what-now
Lang: en
Summary: Is it true? Yes: it is!

Is it true? Yes: it is! "Quoted" text; and more...
"""
ENGLISH_PAGE = "what-now-en.html"  # Pelican's ARTICLE_LANG_SAVE_AS for a post not in DEFAULT_LANG
FRENCH_PAGE = "2015/11/le-cr-aime/index.html"
SPACED = re.compile("[\u00a0\u202f][?:;!]")  # a no-break space before a mark: French typography


@pytest.fixture(scope="module")
def english_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("english")
    content = folder / "content"
    shutil.copytree(ROOT / "content", content)
    (content / "posts" / "2016-05-what-now.md").write_text(ENGLISH, encoding="utf-8")
    build(content, folder / "output", settings=str(write_settings(folder, content)))
    return folder


def test_an_english_post_keeps_its_own_spacing_and_says_it_is_english(english_site):
    source = (english_site / "output" / ENGLISH_PAGE).read_text(encoding="utf-8")
    doc = lxml.html.fromstring(source)
    assert doc.get("lang") == "en"
    body = doc.cssselect("main article .content")[0].text_content()
    assert "Is it true? Yes: it is!" in body and not SPACED.search(body)
    assert doc.cssselect("main h1")[0].text_content() == "What now? A test: really"
    assert doc.cssselect("main article .meta time")[0].text_content() == "4 May 2016"
    data = json.loads(doc.cssselect('script[type="application/ld+json"]')[0].text)
    assert data["inLanguage"] == "en" and data["datePublished"] == "2016-05-04T10:00:00+02:00"
    assert doc.cssselect('meta[property="og:locale"]')[0].get("content") == "en"


def test_french_posts_keep_theirs(english_site):
    doc = lxml.html.fromstring((english_site / "output" / FRENCH_PAGE).read_text(encoding="utf-8"))
    assert doc.get("lang") == "fr"
    assert SPACED.search(doc.cssselect("main article .content")[0].text_content())
    assert re.fullmatch(r"15 novembre 2015", doc.cssselect("main article .meta time")[0].text_content())
    home = (english_site / "output" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in home


def test_the_feed_carries_the_english_post_unspaced(english_site):
    feed = (english_site / "output" / "atom.xml").read_text(encoding="utf-8")
    entry = feed.split("<id>tag:egoblog.fr,2016-05-04:what-now</id>")[1].split("</entry>")[0]
    assert "What now? A test: really" in entry and "Is it true? Yes: it is!" in entry
    assert not SPACED.search(entry)


def test_the_mail_of_an_english_post_keeps_its_spacing_and_the_frame_stays_french(english_site):
    config = Config.from_env(environ=environ(english_site))
    mail = build_mail(config, load_posts(config, ["what-now"]))
    html, text = mail.sample("https://blog.example.fr/desinscription")
    assert "Is it true? Yes: it is!" in html and "Is it true? Yes: it is!" in text
    assert "What now? A test: really" in text and "4 May 2016" in text and "4 May 2016" in html
    assert "Lire sur le blog\u202f:" in text  # the mail's own French words keep French typography
    assert mail.subject == "What now? A test: really"
