"""« Suivre ce fil » (plugins/feeds/follow.py, theme/templates/suivre.html): a French HTML page per feed
scope (the blog, each category) that explains, gives the feeds' addresses, lists the entries and shows
the signup form; the site's visible feed links open it, the <head> still announces the feeds; and in
Chromium it works with JavaScript off, while a feed opened there is plain XML with no XSLT banner.
"""
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree, html

from conftest import build
from test_feeds import ENV, FIXTURES, NS, PUBLIC
from test_typography import page_text
from tests.fixtures.typography import badly_spaced

MIMES = ["application/atom+xml", "application/rss+xml", "application/feed+json"]


@pytest.fixture(scope="module")
def follow_site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("follow") / "output"
    build(FIXTURES, out, env=ENV)
    return out


def doc(path: Path):
    return html.parse(str(path)).getroot()


def follow_pages(site: Path) -> dict:
    """{page: folder of the feeds it explains} for the blog and each category."""
    pages = {site / "suivre" / "index.html": site}
    pages.update({folder / "suivre" / "index.html": folder for folder in (site / "categorie").iterdir()})
    return pages


def test_a_page_for_the_blog_and_each_category_and_none_for_tags(follow_site):
    for page in follow_pages(follow_site):
        assert page.is_file(), page
    assert len(follow_pages(follow_site)) == 1 + 2
    assert not list((follow_site / "etiquette").rglob("suivre"))


def test_the_page_gives_each_feed_s_address_to_copy(follow_site):
    for page, folder in follow_pages(follow_site).items():
        root = doc(page)
        links = root.findall(".//dl[@class='feed-addresses']//a")
        assert [a.get("type") for a in links] == MIMES, page
        prefix = folder.relative_to(follow_site).as_posix()
        expected = [f"{PUBLIC}/{prefix + '/' if prefix != '.' else ''}{name}" for name in ("atom.xml", "rss.xml",
                                                                                         "feed.json")]
        assert [a.findtext("code") for a in links] == expected
        for a in links:
            assert (follow_site / a.get("href").lstrip("/")).is_file(), a.get("href")
        assert [dt.text for dt in root.findall(".//dl[@class='feed-addresses']/dt")] == ["Atom", "RSS", "JSON Feed"]


def test_the_page_lists_the_feed_s_entries_with_french_dates(follow_site):
    for page, folder in follow_pages(follow_site).items():
        atom = etree.parse(str(folder / "atom.xml")).getroot()
        entries = atom.findall("a:entry", NS)
        items = doc(page).findall(".//ol[@class='feed-entries']/li")
        assert [li.findtext(".//h3/a") for li in items] == [e.findtext("a:title", namespaces=NS) for e in entries]
        assert [PUBLIC + li.find(".//h3/a").get("href") for li in items] == [
            e.find("a:link", NS).get("href") for e in entries]
    blog = {li.findtext(".//h3/a"): li for li in doc(follow_site / "suivre" / "index.html").iter("li")}
    summer = " ".join(blog["Un billet d’été"].text_content().split())
    assert "14 juillet 2021" in summer and "Publié en été, corrigé six jours plus tard." in summer
    assert "1er janvier 2019" in blog["Un billet d’hiver"].text_content()


def test_the_page_explains_in_french_and_shows_the_signup_form(follow_site):
    for page in follow_pages(follow_site):
        root = doc(page)
        assert root.get("lang") == "fr"
        text = re.sub(r"[ \t\n]+", " ", root.text_content())  # (str.split would split at U+202F too)
        assert "Qu’est-ce qu’un fil, et comment le suivre\u202f?" in text and "lecteur de flux" in text
        form = root.find(".//form[@class='signup']")
        assert (form.get("method"), form.get("action")) == ("post", "/newsletter/inscription")
        assert badly_spaced(page_text(page)) == [], page
    heading = doc(follow_site / "categorie" / "relation-client" / "suivre" / "index.html").findtext(".//h1")
    assert heading == "Rubrique\u00a0: Relation client"


def test_visible_links_open_the_follow_pages_and_head_links_the_feeds(follow_site):
    for page in follow_site.rglob("index.html"):
        root = doc(page)
        footer = [a.get("href") for a in root.findall(".//footer[@class='site']//a")]
        assert "/suivre/" in footer, page
        visible = [a.get("href") for a in root.find("body").iter("a")]
        assert not [href for href in visible if href and href.endswith((".xml", ".json"))
                    and "/etiquette/" not in href and "suivre" not in page.as_posix()], page
        head = [link.get("href") for link in root.head.findall("link[@rel='alternate']")]
        assert head[:3] == ["/atom.xml", "/rss.xml", "/feed.json"], page
    category = doc(follow_site / "categorie" / "relation-client" / "index.html")
    box = category.find(".//p[@class='subscribe']")
    assert [a.get("href") for a in box.iter("a")] == ["/categorie/relation-client/suivre/", "#newsletter"]


def test_pages_can_be_turned_off(tmp_path):
    from test_feeds import settings_file

    conf = settings_file(tmp_path, FEEDS_PAGE_SAVE_AS="", FEEDS_CATEGORY_PAGE_SAVE_AS="")
    out = tmp_path / "out"
    build(FIXTURES, out, settings=str(conf), env=ENV)
    assert not list(out.rglob("suivre"))
    footer = [a.get("href") for a in doc(out / "index.html").findall(".//footer[@class='site']//a")]
    assert "/suivre/" not in footer
    box = doc(out / "categorie" / "relation-client" / "index.html").find(".//p[@class='subscribe']")
    assert [a.get("href") for a in box.iter("a")][:3] == ["/categorie/relation-client/atom.xml",
                                                           "/categorie/relation-client/rss.xml",
                                                           "/categorie/relation-client/feed.json"]


# In Chromium ---------------------------------------------------------------------------------------

@pytest.fixture
def no_js(browser, served_site):
    context = browser.new_context(java_script_enabled=False, locale="fr-FR", viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.base_url = served_site
    yield page
    context.close()


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/suivre/", "/categorie/humeurs-marketing/suivre/"])
def test_follow_page_works_with_javascript_off(no_js, path):
    """An HTML page, not a feed run through XSLT: it reads, lists the posts, and its form signs up."""
    response = no_js.goto(no_js.base_url + path, wait_until="load")
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    assert no_js.evaluate("document.contentType") == "text/html"
    assert no_js.locator("xslt-warning-banner").count() == 0
    assert no_js.locator("main h1").is_visible()
    addresses = no_js.locator("dl.feed-addresses code").all_inner_texts()
    assert [urlsplit(a).path.rsplit("/", 1)[-1] for a in addresses] == ["atom.xml", "rss.xml", "feed.json"]
    assert no_js.locator("ol.feed-entries > li").count() >= 1
    assert no_js.locator("ol.feed-entries time").first.inner_text().split()[-1].isdigit()  # « 31 août 2017 »
    no_js.fill("form.signup input[name=email]", "lectrice@egoblog.fr")
    with no_js.expect_navigation():
        no_js.click("form.signup button[type=submit]")
    assert urlsplit(no_js.url).path == "/newsletter/verifiez/", no_js.locator("main").inner_text()


@pytest.mark.browser
def test_a_feed_opened_in_chromium_is_plain_xml_without_xslt_banner(no_js):
    """Chromium 156 covered the XSLT view of a feed with a red « XSLT is being removed » banner; the
    feeds now carry no stylesheet, so it shows its plain XML view, and people get the page above."""
    messages = []
    no_js.on("console", lambda message: messages.append(message.text))
    response = no_js.goto(no_js.base_url + "/atom.xml", wait_until="load")
    assert response.status == 200
    assert no_js.locator("xslt-warning-banner").count() == 0
    assert not [m for m in messages if "XSLT" in m], messages
    assert no_js.evaluate("document.contentType") in ("application/xml", "text/xml")
