"""The theme as a reader meets it, on the real built site: posts, listings, signup form, privacy.

Posts are read with Pelican's own reader, so the expectations follow content/posts/.
"""
import json
import re
import shutil
import textwrap
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
import lxml.html
import pytest
from pelican.contents import Article
from pelican.readers import Readers
from pelican.settings import read_settings

from blogcore import dates
from plugins.theme_extras import json_ld, reading_minutes
from tests.conftest import ROOT, build

PUBLIC_URL = "http://127.0.0.1:8000"
FRENCH_DATE = re.compile(r"^(1er|[12]?[0-9]|3[01]) (janvier|février|mars|avril|mai|juin|juillet|août|septembre"
                         r"|octobre|novembre|décembre) \d{4}$")
PARIS = ZoneInfo("Europe/Paris")  # pelicanconf's TIMEZONE


def fr_date(date, year=True):
    return dates.fr_date(date, PARIS, year)


def iso_date(date):
    return dates.iso_date(date, PARIS)


def text(node) -> str:
    """Visible text with spaces normalised (no-break spaces included)."""
    return " ".join(node.text_content().split())


def read_posts():
    """Every post of content/posts/ as Pelican reads it (title, date, category, tags, URL)."""
    settings = read_settings(str(ROOT / "pelicanconf.py"), override={"PATH": str(ROOT / "content")})
    readers = Readers(settings)
    posts = [readers.read_file(str(ROOT / "content"), str(path), content_class=Article, context={})
             for path in sorted((ROOT / "content" / "posts").glob("*.md"))]
    return sorted((p for p in posts if p.status == "published"), key=lambda p: p.date)


POSTS = read_posts()


def target(site: Path, href: str) -> Path:
    """The file a root-relative link is served from."""
    path = site / unquote(urlsplit(href).path).lstrip("/")
    return path / "index.html" if href.endswith("/") or path.is_dir() else path


def page(site: Path, href: str):
    file = target(site, href)
    assert file.is_file(), f"{href} leads nowhere ({file})"
    return lxml.html.fromstring(file.read_text(encoding="utf-8"))


def html_files(site: Path):
    files = sorted(site.rglob("*.html"))
    assert len(files) > 10, f"only {len(files)} page(s) in {site}"
    return files


@pytest.fixture(scope="module")
def posts_html(site):
    return {post.url: page(site, "/" + post.url) for post in POSTS}


# --- The French date filter --------------------------------------------------------------------

MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]


@pytest.mark.parametrize("month", range(1, 13))
def test_french_date_every_month(month):
    assert fr_date(datetime(2016, month, 17, 9, 30)) == f"17 {MONTHS[month - 1]} 2016"


@pytest.mark.parametrize("moment, expected", [
    (datetime(2017, 1, 1), "1er janvier 2017"),
    (datetime(2015, 10, 17), "17 octobre 2015"),
    (datetime(2015, 10, 2), "2 octobre 2015"),
    (datetime(2015, 10, 31, 23, 30, tzinfo=ZoneInfo("UTC")), "1er novembre 2015"),  # already the 1st in Paris
])
def test_french_date_first_day_and_time_zone(moment, expected):
    assert fr_date(moment) == expected


def test_french_date_without_year_for_archives():
    assert fr_date(datetime(2017, 1, 1), year=False) == "1er janvier"


@pytest.mark.parametrize("moment, offset", [(datetime(2015, 10, 17, 8), "+02:00"), (datetime(2017, 1, 9, 8), "+01:00")])
def test_datetime_carries_paris_offset(moment, offset):
    assert iso_date(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S") + offset
    assert iso_date(moment.replace(tzinfo=PARIS)) == iso_date(moment)


def test_reading_time_counts_words_not_tags():
    assert reading_minutes("<p>" + "mot " * 460 + "</p>", 230) == 2
    assert reading_minutes("<p>" + "<em>mot</em> " * 461 + "</p>", 230) == 3
    assert reading_minutes("", 230) == 1


# --- Post pages ----------------------------------------------------------------------------------

def test_there_are_posts():
    assert len(POSTS) >= 5


@pytest.mark.parametrize("post", POSTS, ids=[p.slug for p in POSTS])
def test_post_page_shows_title_date_author_category_and_reading_time(site, posts_html, post):
    doc = posts_html[post.url]
    article = doc.cssselect("main article")[0]
    assert [text(h) for h in doc.cssselect("h1")] == [" ".join(post.title.split())]
    time = article.cssselect("time[datetime]")[0]
    assert time.get("datetime") == iso_date(post.date)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", time.get("datetime"))
    assert FRENCH_DATE.match(text(time)) and text(time) == fr_date(post.date)
    meta = text(article.cssselect(".meta")[0])
    assert re.search(r"\b\d+ min de lecture\b", meta), meta
    author = article.cssselect("a[rel=author]")[0]
    assert text(author) == post.author.name
    assert "/" + post.url in listed(page(site, author.get("href")))
    category = [a for a in article.cssselect(".meta a") if text(a) == post.category.name][0]
    assert "/" + post.url in listed(page(site, category.get("href")))


@pytest.mark.parametrize("post", POSTS, ids=[p.slug for p in POSTS])
def test_post_tags_link_to_tag_pages_listing_the_post(site, posts_html, post):
    links = posts_html[post.url].cssselect("main article a[rel=tag]")
    assert sorted(text(a) for a in links) == sorted(t.name for t in post.tags)
    for link in links:
        listing = page(site, link.get("href"))
        assert "/" + post.url in listed(listing)
        assert text(listing.cssselect("h1")[0]) == f"Étiquette : {text(link)}"


def test_previous_and_next_follow_the_dates(site, posts_html):
    for index, post in enumerate(POSTS):
        doc = posts_html[post.url]
        prev, nxt = doc.cssselect(".neighbours a[rel=prev]"), doc.cssselect(".neighbours a[rel=next]")
        expected_prev = POSTS[index - 1] if index else None
        expected_next = POSTS[index + 1] if index + 1 < len(POSTS) else None
        assert [a.get("href") for a in prev] == (["/" + expected_prev.url] if expected_prev else [])
        assert [a.get("href") for a in nxt] == (["/" + expected_next.url] if expected_next else [])
        for link in prev + nxt:
            assert target(site, link.get("href")).is_file()
        if prev:
            assert "Billet précédent" in text(prev[0])
        if nxt:
            assert "Billet suivant" in text(nxt[0])


@pytest.mark.parametrize("post", POSTS, ids=[p.slug for p in POSTS])
def test_reply_by_email_with_subject(posts_html, post):
    link = [a for a in posts_html[post.url].cssselect("main a") if text(a) == "Répondre par e-mail"][0]
    parts = urlsplit(link.get("href"))
    assert parts.scheme == "mailto" and "@" in parts.path
    subject = parse_qs(parts.query)["subject"][0]
    assert " ".join(post.title.split()) in " ".join(subject.split())


@pytest.mark.parametrize("post", POSTS, ids=[p.slug for p in POSTS])
def test_post_open_graph_and_json_ld(posts_html, post):
    doc = posts_html[post.url]
    og = {m.get("property"): m.get("content") for m in doc.cssselect("meta[property]")}
    url = f"{PUBLIC_URL}/{post.url}"
    assert og["og:type"] == "article" and og["og:locale"] == "fr_FR" and og["og:url"] == url
    assert og["og:title"].split() == post.title.split() and og["og:description"]  # typography changes only spaces
    assert og["article:published_time"] == iso_date(post.date)
    assert doc.cssselect("link[rel=canonical]")[0].get("href") == url
    assert doc.cssselect("meta[name=description]")[0].get("content") == og["og:description"]
    (script,) = doc.cssselect('script[type="application/ld+json"]')
    data = json.loads(script.text)
    assert data["@type"] == "BlogPosting" and data["headline"].split() == post.title.split()
    assert data["datePublished"] == iso_date(post.date) and data["dateModified"]
    assert data["inLanguage"] == "fr-FR" and data["mainEntityOfPage"]["@id"] == url
    assert data["author"][0]["name"] == post.author.name and data["description"] == og["og:description"]


# --- Listings ------------------------------------------------------------------------------------

def listed(doc) -> list[str]:
    return [a.get("href") for a in doc.cssselect("main h2 a, main .archive a")]


def test_home_lists_posts_newest_first(site):
    assert listed(page(site, "/"))[:10] == ["/" + p.url for p in reversed(POSTS)][:10]


def test_archives_group_posts_by_year_with_french_dates(site):
    doc = page(site, "/archives/")
    years = [text(h) for h in doc.cssselect("main h2")]
    assert years == sorted({str(p.date.year) for p in POSTS}, reverse=True)
    links = [a.get("href") for a in doc.cssselect("main .archive a")]
    assert sorted(links) == sorted("/" + p.url for p in POSTS)
    for section in doc.cssselect("main section"):
        year = text(section.cssselect("h2")[0])
        for item in section.cssselect("li"):
            time = item.cssselect("time")[0]
            assert time.get("datetime").startswith(year)
            assert re.fullmatch(r"(1er|\d{1,2}) (" + "|".join(MONTHS) + ")", text(time))


def test_category_and_tag_lists_link_every_listing(site):
    categories = page(site, "/categories/")
    for name in {p.category.name for p in POSTS}:
        link = [a for a in categories.cssselect("main a") if text(a) == name][0]
        assert target(site, link.get("href")).is_file()
    tags = page(site, "/etiquettes/")
    for name in {t.name for p in POSTS for t in p.tags}:
        link = [a for a in tags.cssselect("main a") if text(a) == name][0]
        assert target(site, link.get("href")).is_file()


def test_category_page_lists_exactly_its_posts(site):
    for name in {p.category.name for p in POSTS}:
        expected = ["/" + p.url for p in reversed(POSTS) if p.category.name == name]
        url = "/" + [p for p in POSTS if p.category.name == name][0].category.url
        doc = page(site, url)
        assert listed(doc) == expected
        assert text(doc.cssselect("h1")[0]) == f"Rubrique : {name}"


def test_author_page_lists_their_posts(site):
    for name in {p.author.name for p in POSTS}:
        url = "/" + [p for p in POSTS if p.author.name == name][0].author.url
        doc = page(site, url)
        assert listed(doc) == ["/" + p.url for p in reversed(POSTS) if p.author.name == name]
        assert name in text(doc.cssselect("h1")[0])


def test_nav_reaches_about_and_privacy_pages(site):
    nav = page(site, "/").cssselect("header nav")[0]
    for label, url in (("À propos", "/a-propos/"), ("Confidentialité", "/confidentialite/"),
                       ("Archives", "/archives/")):
        link = [a for a in nav.cssselect("a") if text(a) == label][0]
        assert link.get("href") == url and target(site, url).is_file()
    privacy = page(site, "/confidentialite/")
    assert text(privacy.cssselect("h1")[0]) == "Confidentialité"
    assert "adresse e-mail" in text(privacy.cssselect("main")[0])


def test_404_page_in_french_leads_home_and_to_archives(site):
    doc = page(site, "/404.html")
    assert text(doc.cssselect("h1")[0]) == "Page introuvable"
    hrefs = [a.get("href") for a in doc.cssselect("main a")]
    assert "/" in hrefs and "/archives/" in hrefs
    assert doc.cssselect('meta[name=robots][content=noindex]')


@pytest.fixture(scope="module")
def small_pages_site(tmp_path_factory):
    """The project's content plus a page of the signup flow, built with two posts a page."""
    root = tmp_path_factory.mktemp("small_pages")
    content = root / "content"
    shutil.copytree(ROOT / "content", content)
    (content / "pages" / "newsletter-test.md").write_text(
        "Title: Vérifiez votre boîte\nSlug: newsletter-test\nTemplate: newsletter\n\nUn e-mail arrive.\n",
        encoding="utf-8")
    settings = root / "small_pages.py"
    settings.write_text(textwrap.dedent(f"""\
        from pelicanconf import *
        THEME = {str(ROOT / "theme")!r}
        PLUGIN_PATHS = [{str(ROOT / "plugins")!r}]
        DEFAULT_PAGINATION = 2
    """), encoding="utf-8")
    build(content, root / "output", settings=str(settings))
    return root / "output"


def test_pagination_in_french(small_pages_site):
    """« Page 2 sur N », newer and older links that resolve."""
    out = small_pages_site
    pages = -(-len(POSTS) // 2)
    second = page(out, "/page/2/")
    pager = second.cssselect("nav.pager")[0]
    assert f"Page 2 sur {pages}" in text(pager)
    newer = [a for a in pager.cssselect("a") if "Billets plus récents" in text(a)][0]
    older = [a for a in pager.cssselect("a") if "Billets plus anciens" in text(a)][0]
    assert newer.get("href") == "/" and target(out, older.get("href")).is_file()
    assert listed(second) == ["/" + p.url for p in reversed(POSTS)][2:4]


def test_signup_flow_page_template_is_not_indexed(small_pages_site):
    doc = page(small_pages_site, "/newsletter-test/")
    assert text(doc.cssselect("h1")[0]) == "Vérifiez votre boîte" and "Un e-mail arrive." in text(doc)
    assert doc.cssselect("meta[name=robots][content=noindex]")
    assert "newsletter-test" not in (small_pages_site / "sitemap.xml").read_text(encoding="utf-8")


# --- On every page: signup form, privacy, canonical ----------------------------------------------

def test_signup_form_on_every_page(site):
    for file in html_files(site):
        doc = lxml.html.fromstring(file.read_text(encoding="utf-8"))
        (form,) = doc.cssselect("form.signup")
        assert form.get("method") == "post" and form.get("action") == "/newsletter/inscription", file
        (email,) = form.cssselect("input[name=email]")
        assert email.get("type") == "email" and email.get("required") is not None
        assert email.get("autocomplete") == "email" and email.get("maxlength") == "254"
        label = doc.cssselect(f"label[for={email.get('id')}]")[0]
        assert text(label) == "Votre adresse e-mail"
        (trap,) = form.cssselect("input[name=site_web]")
        assert trap.get("type") == "text" and trap.get("tabindex") == "-1"
        assert trap.getparent().getparent().get("aria-hidden") == "true"
        assert [text(b) for b in form.cssselect("button")] == ["S’abonner"]
        box = form.getparent()
        assert "Nous ne conservons que votre adresse e-mail" in text(box)
        assert "/confidentialite/" in [a.get("href") for a in box.cssselect("a")]
        assert doc.cssselect('[role=status][aria-live=polite].signup-result')


def test_honeypot_hidden_by_the_stylesheet(site):
    css = (site / "theme" / "css" / "site.css").read_text(encoding="utf-8")
    assert re.search(r"\.hp\s*\{[^}]*display:\s*none", css)


def test_no_inline_script_handler_style_or_third_party_resource(site):
    for file in html_files(site):
        source = file.read_text(encoding="utf-8")
        doc = lxml.html.fromstring(source)
        for script in doc.iter("script"):
            assert script.get("src") or script.get("type") == "application/ld+json", file
            if script.get("src"):
                assert urlsplit(script.get("src")).netloc == "", file
        for element in doc.iter():
            if not isinstance(element.tag, str):
                continue
            assert not [a for a in element.attrib if a.lower().startswith("on")], (file, element.tag)
            assert "style" not in element.attrib, (file, element.tag)
        assert not doc.cssselect("style, iframe, embed, object"), file
        for element in doc.cssselect("link[href], img[src], source[src], video[src], audio[src]"):
            url = element.get("href") or element.get("src")
            own = url.startswith(PUBLIC_URL + "/")  # canonical, feeds: this site's public address
            assert own or (urlsplit(url).scheme in ("", "data") and not url.startswith("//")), (file, url)


def test_every_page_has_one_h1_canonical_and_french(site):
    for file in html_files(site):
        doc = lxml.html.fromstring(file.read_text(encoding="utf-8"))
        assert doc.get("lang") == "fr", file
        assert len(doc.cssselect("h1")) == 1, file
        assert doc.cssselect("a.skip[href='#contenu']") and doc.cssselect("main#contenu"), file
        (canonical,) = doc.cssselect("link[rel=canonical]")
        assert canonical.get("href").startswith(PUBLIC_URL + "/"), file
        assert doc.cssselect("meta[name=description]")[0].get("content").strip(), file
        for link in doc.cssselect("link[rel=stylesheet], link[rel=icon]"):
            assert target(site, link.get("href")).is_file(), (file, link.get("href"))


def test_internal_links_resolve(site):
    for file in html_files(site):
        doc = lxml.html.fromstring(file.read_text(encoding="utf-8"))
        for link in doc.cssselect("a[href^='/']"):
            href = link.get("href")
            if href.startswith("/newsletter/"):
                continue  # served by the newsletter service, not by the static site
            assert target(site, href).is_file(), (file, href)


def test_stylesheet_small_local_with_dark_and_print(site):
    css = (site / "theme" / "css" / "site.css").read_text(encoding="utf-8")
    assert len(css.encode()) < 12_000
    assert "@import" not in css and "@font-face" not in css and not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    assert "prefers-color-scheme: dark" in css and "@media print" in css and ":focus-visible" in css


# --- Sitemap and robots --------------------------------------------------------------------------

def test_sitemap_lists_posts_pages_and_listings_with_absolute_urls(site):
    sitemap = (site / "sitemap.xml").read_text(encoding="utf-8")
    locs = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    assert all(loc.startswith(PUBLIC_URL + "/") for loc in locs)
    for post in POSTS:
        entry = re.search(rf"<loc>{re.escape(PUBLIC_URL + '/' + post.url)}</loc><lastmod>([^<]+)</lastmod>", sitemap)
        assert entry and entry[1] == iso_date(post.date), post.url
    for path in ("", "archives/", "categories/", "etiquettes/", "a-propos/", "confidentialite/"):
        assert f"{PUBLIC_URL}/{path}" in locs
    assert f"{PUBLIC_URL}/404.html" not in locs and not [loc for loc in locs if "/newsletter" in loc]
    for loc in locs:
        assert target(site, urlsplit(loc).path).is_file(), loc


def test_robots_txt_points_to_sitemap(site):
    robots = (site / "robots.txt").read_text(encoding="utf-8")
    assert "User-agent: *" in robots and f"Sitemap: {PUBLIC_URL}/sitemap.xml" in robots


# --- base.html for the newsletter service ---------------------------------------------------------

@pytest.mark.parametrize("child, has_form", [
    ('{% extends "base.html" %}{% block content %}<h1>Merci</h1>{% endblock content %}', True),
    ('{% extends "base.html" %}{% block signup %}{% endblock signup %}{% block content %}<h1>Merci</h1>'
     '{% endblock content %}', False),
])
def test_base_renders_with_the_service_variables_only(child, has_form):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "theme" / "templates"),
                             undefined=jinja2.StrictUndefined, autoescape=True)
    html = env.from_string(child).render(SITENAME="égoBlog", SITEURL="", NEWSLETTER_URL="/newsletter",
                                         PUBLIC_URL=PUBLIC_URL, page_title="Inscription confirmée")
    doc = lxml.html.fromstring(html)
    assert text(doc.cssselect("title")[0]) == "Inscription confirmée – égoBlog"
    assert bool(doc.cssselect("form.signup[action='/newsletter/inscription']")) is has_form
    assert doc.cssselect("main h1") and doc.cssselect("link[rel=stylesheet][href='/theme/css/site.css']")


def test_json_ld_cannot_close_its_script_element():
    author = SimpleNamespace(name="François", url="auteur/francois/")
    post = SimpleNamespace(title="Fin &lt;/script&gt;<em>!</em>", summary="<p>Résumé</p>",
                           date=datetime(2015, 10, 17, 8), modified=None, url="2015/10/x/", authors=[author],
                           category=SimpleNamespace(name="Humeurs Marketing"), tags=[])
    source = json_ld(post, {"PUBLIC_URL": PUBLIC_URL, "SITENAME": "égoBlog", "TIMEZONE": "Europe/Paris"})
    assert "</" not in source
    data = json.loads(source)
    assert data["headline"] == "Fin </script>!" and data["datePublished"] == "2015-10-17T08:00:00+02:00"
    assert data["description"] == "Résumé" and data["inLanguage"] == "fr-FR"
