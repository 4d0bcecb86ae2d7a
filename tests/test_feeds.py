"""Feeds (plugins/feeds): every feed of a real build parses, carries whole posts with
absolute links, keeps its ids across edits, and is offered on the pages.

The W3C Feed Validation Service is not reachable from here. Instead every Atom feed is
checked against RFC 4287's schema (fixtures/feeds/atom.rng, RELAX NG, with RFC 3339 dates
and URI ids), and test_validator_rules checks with lxml the rules of the validator's
documentation that feeds most often break (RSS dates, guid isPermaLink, self links...).
"""
import os
import re
import shutil
import subprocess
import sys
from email.utils import parsedate_to_datetime
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree, html

from conftest import ROOT, build

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
CORPUS = ROOT / "bench" / "make_corpus.py"
PUBLIC = "http://127.0.0.1:8000"
NS = {"a": "http://www.w3.org/2005/Atom", "content": "http://purl.org/rss/1.0/modules/content/",
      "dc": "http://purl.org/dc/elements/1.1/"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
URL_ATTRS = ("href", "src", "poster", "cite", "action")
ENV = {"PUBLIC_URL": PUBLIC}


def feeds_of(site: Path) -> list[Path]:
    feeds = sorted(p for p in site.rglob("*.xml") if p.name in ("atom.xml", "rss.xml"))
    assert feeds, f"no feed in {site}"  # the callers loop over them: an empty list would check nothing
    return feeds


def parse(path: Path):
    return etree.parse(str(path)).getroot()


def atom_entries(path: Path) -> list:
    return parse(path).findall("a:entry", NS)


def entry_by_slug(path: Path, slug: str):
    return next(e for e in atom_entries(path) if e.findtext("a:id", namespaces=NS).endswith(":" + slug))


def words(text: str) -> str:
    return " ".join(re.sub(r"\W+", " ", text).split())


def settings_file(tmp_path: Path, **values) -> Path:
    """pelicanconf plus overrides, with the project's paths kept absolute."""
    path = tmp_path / "testconf.py"
    lines = ["from pelicanconf import *", f"PLUGIN_PATHS = [{str(ROOT / 'plugins')!r}]",
             f"THEME = {str(ROOT / 'theme')!r}"] + [f"{key} = {value!r}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory) -> Path:
    """tests/fixtures/feeds: relative links, an image, summer and winter dates, a draft,
    a tag named like a category."""
    out = tmp_path_factory.mktemp("feeds") / "output"
    build(FIXTURES, out, env=ENV)
    return out


@pytest.fixture(scope="module")
def seed_site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seeds") / "output"
    build(ROOT / "content", out, env=ENV)
    return out


# Every feed parses ---------------------------------------------------------------

@pytest.mark.parametrize("which", ["seed_site", "fixture_site"])
def test_every_feed_parses_and_is_plain(which, request):
    """No xml-stylesheet instruction: Chromium bannered XSLT pages as soon to break; people get the
    « Suivre ce fil » pages (test_follow_pages.py), feed readers the plain feeds."""
    site = request.getfixturevalue(which)
    feeds = feeds_of(site)
    assert site / "atom.xml" in feeds and site / "rss.xml" in feeds
    for path in feeds:
        parsed = feedparser.parse(path.read_bytes())
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.entries, path
        assert parsed.version == ("atom10" if path.name == "atom.xml" else "rss20"), path
        assert parse(path).getprevious() is None, path
        assert b"<?xml-stylesheet" not in path.read_bytes(), path
    assert not list(site.rglob("*.xsl"))


def test_one_feed_pair_per_category_and_one_atom_per_tag(seed_site):
    categories = sorted(p.parent.name for p in (seed_site / "categorie").glob("*/index.html"))
    assert categories
    for slug in categories:
        assert (seed_site / "categorie" / slug / "atom.xml").is_file()
        assert (seed_site / "categorie" / slug / "rss.xml").is_file()
    assert sorted(p.name for p in (seed_site / "categorie").iterdir()) == categories
    tags = sorted(p.parent.name for p in (seed_site / "etiquette").glob("*/index.html"))
    assert tags
    for slug in tags:
        assert (seed_site / "etiquette" / slug / "atom.xml").is_file()
        assert not (seed_site / "etiquette" / slug / "rss.xml").exists()


def test_a_category_feed_holds_only_that_category(seed_site):
    for path in (seed_site / "categorie").glob("*/*.xml"):
        slug = path.parent.name
        parsed = feedparser.parse(path.read_bytes())
        atom = feedparser.parse((path.parent / "atom.xml").read_bytes())
        name = atom.entries[0].tags[0].label
        for entry in parsed.entries:
            cats = [t.term for t in entry.tags if t.scheme == f"{PUBLIC}/categorie/"]
            assert cats == ([slug] if path.name == "atom.xml" else [name]), (path, entry.title)
        page = html.parse(str(seed_site / "categorie" / slug / "index.html"))
        listed = {a.get("href") for a in page.iter("a")}
        for entry in parsed.entries:
            assert entry.link.removeprefix(PUBLIC) in listed, (slug, entry.link)


def test_tag_feed_holds_the_tagged_posts(fixture_site):
    crm = feedparser.parse((fixture_site / "etiquette" / "crm" / "atom.xml").read_bytes())
    assert sorted(e.link for e in crm.entries) == [f"{PUBLIC}/2020/03/liens-relatifs/", f"{PUBLIC}/2021/07/billet-ete/"]
    assert crm.feed.title == "égoBlog — étiquette «\u00a0CRM\u00a0»"


def test_a_tag_and_a_category_of_the_same_name_do_not_collide(fixture_site):
    category = feedparser.parse((fixture_site / "categorie" / "humeurs-marketing" / "atom.xml").read_bytes())
    tag = feedparser.parse((fixture_site / "etiquette" / "humeurs-marketing" / "atom.xml").read_bytes())
    assert category.feed.title == "égoBlog — Humeurs Marketing"
    assert tag.feed.title == "égoBlog — étiquette «\u00a0Humeurs Marketing\u00a0»"
    assert [e.link for e in tag.entries] == [f"{PUBLIC}/2020/03/liens-relatifs/"]
    assert f"{PUBLIC}/2020/03/liens-relatifs/" not in [e.link for e in category.entries]


# What an entry carries --------------------------------------------------------------

def test_entries_carry_the_whole_post(seed_site):
    posts = sorted((ROOT / "content" / "posts").glob("*.md"))
    site = feedparser.parse((seed_site / "atom.xml").read_bytes())
    rss = feedparser.parse((seed_site / "rss.xml").read_bytes())
    assert len(site.entries) == len(rss.entries) == len(posts)
    for feed in (site, rss):
        contents = [words(html.fromstring(e.content[0].value).text_content()) for e in feed.entries]
        for post in posts:
            body = post.read_text(encoding="utf-8").split("\n\n", 1)[1]
            paragraphs = [p for p in body.split("\n\n") if len(p.split()) > 5]
            first, last = words(paragraphs[0])[:60], words(paragraphs[-1])[-60:]
            assert any(first in c and last in c for c in contents), post.name


def test_entry_fields_and_paris_dates(fixture_site):
    summer = entry_by_slug(fixture_site / "atom.xml", "billet-ete")
    assert summer.findtext("a:title", namespaces=NS) == "Un billet d’été"
    assert summer.findtext("a:id", namespaces=NS) == "tag:egoblog.fr,2021-07-14:billet-ete"
    assert summer.findtext("a:published", namespaces=NS) == "2021-07-14T10:00:00+02:00"
    assert summer.findtext("a:updated", namespaces=NS) == "2021-07-20T08:30:00+02:00"
    assert summer.find("a:link", NS).get("href") == f"{PUBLIC}/2021/07/billet-ete/"
    assert summer.findtext("a:author/a:name", namespaces=NS) == "François"
    assert summer.findtext("a:summary", namespaces=NS) == "Publié en été, corrigé six jours plus tard."
    terms = [(c.get("term"), c.get("scheme")) for c in summer.findall("a:category", NS)]
    assert terms == [("humeurs-marketing", f"{PUBLIC}/categorie/"), ("crm", f"{PUBLIC}/etiquette/")]
    winter = entry_by_slug(fixture_site / "atom.xml", "billet-hiver")
    assert winter.findtext("a:published", namespaces=NS) == "2019-01-01T09:15:00+01:00"
    assert winter.findtext("a:updated", namespaces=NS) == "2019-01-01T09:15:00+01:00"

    item = next(i for i in parse(fixture_site / "rss.xml").iter("item") if i.findtext("link").endswith("/billet-ete/"))
    assert item.findtext("pubDate") == "Wed, 14 Jul 2021 10:00:00 +0200"
    assert item.find("guid").text == "tag:egoblog.fr,2021-07-14:billet-ete"
    assert item.find("guid").get("isPermaLink") == "false"
    assert item.findtext("dc:creator", namespaces=NS) == "François"
    assert [c.text for c in item.findall("category")] == ["Humeurs Marketing", "CRM"]
    assert "Dernier paragraphe du billet d’été" in item.findtext("content:encoded", namespaces=NS)


def test_drafts_stay_out_of_feeds(fixture_site):
    for path in feeds_of(fixture_site):
        assert "brouillon" not in path.read_text(encoding="utf-8"), path


def test_relative_links_become_absolute_against_the_post(fixture_site):
    base = f"{PUBLIC}/2020/03/liens-relatifs/"
    for path in (fixture_site / "atom.xml", fixture_site / "rss.xml"):
        root = parse(path)
        text = (root.findtext("a:entry[a:id='tag:egoblog.fr,2020-03-15:liens-relatifs']/a:content", namespaces=NS)
                or next(i for i in root.iter("item") if i.findtext("link") == base)
                .findtext("content:encoded", namespaces=NS))
        doc = html.fromstring(f"<div>{text}</div>")
        hrefs = [a.get("href") for a in doc.iter("a")]
        assert hrefs == [f"{PUBLIC}/a-propos/", f"{PUBLIC}/2020/03/suite/", f"{base}voisin/", f"{base}#note",
                         f"{PUBLIC}/2021/07/billet-ete/", "https://example.org/ref?a=1&b=2"]
        imgs = [img for img in doc.iter("img")]
        assert imgs[1].get("src") == f"{base}photo.png"
        assert imgs[1].get("srcset") == f"{base}photo.png 1x, {PUBLIC}/images/photo.png 2x"
        assert doc.find(".//blockquote").get("cite") == f"{PUBLIC}/2020/03/source/"
        assert "Dernier paragraphe du billet aux liens relatifs" in doc.text_content()


def test_static_image_is_absolute(fixture_site):
    """{static} links resolve only if no plugin reads article.content before the static files are known."""
    text = entry_by_slug(fixture_site / "atom.xml", "liens-relatifs").findtext("a:content", namespaces=NS)
    assert f'src="{PUBLIC}/images/photo.png"' in text
    assert (fixture_site / "images" / "photo.png").is_file()


@pytest.mark.parametrize("which", ["seed_site", "fixture_site"])
def test_no_relative_url_in_any_content(which, request):
    for path in feeds_of(request.getfixturevalue(which)):
        root = parse(path)
        for node in root.findall(".//a:content", NS) + root.findall(".//content:encoded", NS):
            for element in html.fromstring(f"<div>{node.text}</div>").iter():
                urls = [element.get(attr) for attr in URL_ATTRS if element.get(attr) is not None]
                urls += [c.split()[0] for c in (element.get("srcset") or "").split(",") if c.strip()]
                for url in urls:
                    assert urlsplit(url).scheme in ("http", "https", "mailto"), (path, url)


# The W3C validator's documented rules --------------------------------------------------

@pytest.mark.parametrize("which", ["seed_site", "fixture_site"])
def test_validator_rules(which, request):
    site = request.getfixturevalue(which)
    for path in feeds_of(site):
        root = parse(path)
        url = f"{PUBLIC}/{path.relative_to(site).as_posix()}"
        if path.name == "atom.xml":
            assert root.tag == "{http://www.w3.org/2005/Atom}feed"
            assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
            assert [l.get("href") for l in root.findall("a:link[@rel='self']", NS)] == [url]
            assert root.find("a:link[@rel='self']", NS).get("type") == "application/atom+xml"
            assert root.findtext("a:title", namespaces=NS) and root.findtext("a:subtitle", namespaces=NS)
            assert urlsplit(root.findtext("a:id", namespaces=NS)).scheme
            dates = [d.text for d in root.iter("{http://www.w3.org/2005/Atom}updated",
                                               "{http://www.w3.org/2005/Atom}published")]
            assert dates and all(RFC3339.match(d) for d in dates), dates
            entries = root.findall("a:entry", NS)
            ids = [e.findtext("a:id", namespaces=NS) for e in entries]
            assert len(ids) == len(set(ids)) and all(re.match(r"^[a-z][a-z0-9+.-]*:\S+$", i) for i in ids)
            for entry in entries:
                assert entry.findtext("a:author/a:name", namespaces=NS)
                assert entry.find("a:content", NS).get("type") == "html"
                assert entry.find("a:content", NS).text.lstrip().startswith("<")  # escaped HTML, not CDATA-mangled
                assert entry.findtext("a:updated", namespaces=NS) >= entry.findtext("a:published", namespaces=NS)
            newest = max(datetime.fromisoformat(e.findtext("a:updated", namespaces=NS)) for e in entries)
            assert datetime.fromisoformat(root.findtext("a:updated", namespaces=NS)) == newest
        else:
            assert root.tag == "rss" and root.get("version") == "2.0"
            channel = root.find("channel")
            assert channel.findtext("language") == "fr"
            assert [l.get("href") for l in channel.findall("a:link[@rel='self']", NS)] == [url]
            assert channel.findtext("link").startswith(PUBLIC) and not channel.findtext("link").endswith(".xml")
            assert channel.findtext("title") and channel.findtext("description")
            parsedate_to_datetime(channel.findtext("lastBuildDate"))
            guids = []
            for item in channel.findall("item"):
                assert item.findtext("title") and item.findtext("link").startswith(PUBLIC)
                date = parsedate_to_datetime(item.findtext("pubDate"))
                assert date.utcoffset() is not None
                assert re.match(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
                                r" \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", item.findtext("pubDate"))
                guid = item.find("guid")
                assert guid.get("isPermaLink") == "false" or urlsplit(guid.text).scheme in ("http", "https")
                guids.append(guid.text)
                assert item.find("author") is None  # RSS <author> must be an e-mail address; dc:creator instead
            assert len(guids) == len(set(guids))


ATOM_SCHEMA = etree.RelaxNG(etree.parse(str(FIXTURES / "atom.rng")))


@pytest.mark.parametrize("which", ["seed_site", "fixture_site"])
def test_atom_feeds_match_the_rfc_4287_schema(which, request):
    for path in feeds_of(request.getfixturevalue(which)):
        if path.name == "atom.xml":
            assert ATOM_SCHEMA.validate(etree.parse(str(path))), (path, ATOM_SCHEMA.error_log.last_error)


def test_the_schema_catches_what_the_validator_rejects(fixture_site):
    for xpath, value in (("a:entry/a:updated", "2021-07-20 08:30"), ("a:entry/a:id", "billet-ete"),
                         ("a:updated", "Wed, 14 Jul 2021 10:00:00 +0200")):
        doc = etree.parse(str(fixture_site / "atom.xml"))
        doc.getroot().find(xpath, NS).text = value
        assert not ATOM_SCHEMA.validate(doc), xpath


# Stability ---------------------------------------------------------------------------

def test_ids_survive_an_edit_and_a_move(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURES, content)
    build(content, tmp_path / "before", env=ENV)
    before = entry_by_slug(tmp_path / "before" / "atom.xml", "billet-hiver")
    post = content / "posts" / "hiver.md"
    text = post.read_text(encoding="utf-8")
    text = text.replace("Category: Humeurs Marketing", "Modified: 2024-02-03 11:00\nCategory: Relation client")
    post.write_text(text.replace("Dernier paragraphe", "Paragraphe corrigé, dernier") + "\nUn ajout.\n",
                    encoding="utf-8")
    build(content, tmp_path / "after", env=ENV)
    after = entry_by_slug(tmp_path / "after" / "categorie" / "relation-client" / "atom.xml", "billet-hiver")
    assert after.findtext("a:id", namespaces=NS) == before.findtext("a:id", namespaces=NS)
    assert after.findtext("a:published", namespaces=NS) == before.findtext("a:published", namespaces=NS)
    assert after.findtext("a:updated", namespaces=NS) == "2024-02-03T11:00:00+01:00"
    assert "Paragraphe corrigé" in after.findtext("a:content", namespaces=NS)
    rss_guids = {i.findtext("guid") for i in parse(tmp_path / "after" / "rss.xml").iter("item")}
    assert before.findtext("a:id", namespaces=NS) in rss_guids
    old_category = feedparser.parse((tmp_path / "after" / "categorie" / "humeurs-marketing" / "atom.xml").read_bytes())
    assert "billet-hiver" not in " ".join(e.id for e in old_category.entries)


def test_guid_metadata_wins(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURES, content)
    post = content / "posts" / "hiver.md"
    post.write_text(post.read_text(encoding="utf-8").replace(
        "Slug: billet-hiver", "Slug: nouveau-nom\nGuid: http://ancien.example/?p=42"), encoding="utf-8")
    build(content, tmp_path / "out", env=ENV)
    ids = [e.findtext("a:id", namespaces=NS) for e in atom_entries(tmp_path / "out" / "atom.xml")]
    assert "http://ancien.example/?p=42" in ids


def test_same_content_gives_byte_identical_feeds(fixture_site, tmp_path):
    build(FIXTURES, tmp_path / "again", env=ENV)
    first = {p.relative_to(fixture_site): p.read_bytes() for p in feeds_of(fixture_site)}
    second = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in feeds_of(tmp_path / "again")}
    assert first == second


def test_warm_rebuild_keeps_untouched_feeds_and_remakes_the_edited_ones(tmp_path):
    """With the content cache, unchanged feeds come from the cache; every feed equals a cold build's."""
    content = tmp_path / "content"
    shutil.copytree(FIXTURES, content)
    cache = tmp_path / "cache"

    def feeds(out: Path) -> dict:
        return {str(p.relative_to(out)): p.read_bytes() for p in feeds_of(out)}

    build(content, tmp_path / "before", env=ENV, args=("--cache-path", str(cache)))
    before = feeds(tmp_path / "before")
    post = content / "posts" / "hiver.md"  # Humeurs Marketing, no tag
    stamp = post.stat().st_mtime_ns + 2_000_000_000
    post.write_text(post.read_text(encoding="utf-8").replace("Dernier paragraphe", "Paragraphe corrigé, dernier"),
                    encoding="utf-8")
    os.utime(post, ns=(stamp, stamp))
    warm_run = build(content, tmp_path / "warm", env=ENV, args=("--cache-path", str(cache), "-v"))
    cold = feeds(build_cold(content, tmp_path))
    warm = feeds(tmp_path / "warm")
    assert warm == cold
    untouched = "categorie/relation-client/atom.xml"
    assert warm[untouched] == before[untouched]
    edited = "categorie/humeurs-marketing/atom.xml"
    assert warm[edited] != before[edited] and "Paragraphe corrigé" in warm[edited].decode("utf-8")
    log = warm_run.stdout + warm_run.stderr
    reused = re.search(r"feeds: wrote (\d+) feeds \((\d+) unchanged", log)
    assert reused, log[-2000:]
    total, unchanged = int(reused[1]), int(reused[2])
    assert 0 < unchanged < total, (total, unchanged)
    assert list(cache.rglob("FeedsCache")), "no feed cache kept"


def build_cold(content: Path, tmp_path: Path) -> Path:
    out = tmp_path / "cold"
    build(content, out, env=ENV, args=("--cache-path", str(tmp_path / "no-cache")))
    return out


# Settings ----------------------------------------------------------------------------

def test_max_items_setting(tmp_path):
    build(FIXTURES, tmp_path / "out", settings=str(settings_file(tmp_path, FEEDS_MAX_ITEMS=2)), env=ENV)
    parsed = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert [e.link for e in parsed.entries] == [f"{PUBLIC}/2021/07/billet-ete/", f"{PUBLIC}/2020/03/liens-relatifs/"]
    assert len(feedparser.parse((tmp_path / "out" / "rss.xml").read_bytes()).entries) == 2


def test_a_bad_setting_is_reported_once_with_key_and_value(tmp_path):
    conf = settings_file(tmp_path, FEEDS_MAX_ITEMS="beaucoup")
    result = build(FIXTURES, tmp_path / "out", settings=str(conf), env=ENV, check=False)
    log = " ".join((result.stdout + result.stderr).split())
    assert log.count("FEEDS_MAX_ITEMS = 'beaucoup'") == 1, log


# Discovery and subscription on the pages ----------------------------------------------------

def alternates(page: Path) -> list:
    return [(l.get("type"), l.get("href"), l.get("title"))
            for l in html.parse(str(page)).getroot().head.findall("link[@rel='alternate']")]


def test_every_page_offers_the_site_feeds(seed_site):
    site_links = [("application/atom+xml", "/atom.xml", "égoBlog — tous les billets (Atom)"),
                  ("application/rss+xml", "/rss.xml", "égoBlog — tous les billets (RSS)"),
                  ("application/feed+json", "/feed.json", "égoBlog — tous les billets (JSON Feed)")]
    pages = [p for p in seed_site.rglob("index.html")]
    assert len(pages) > 10
    for page in pages:
        assert alternates(page)[:3] == site_links, page
        for _, href, _ in alternates(page):
            assert (seed_site / href.lstrip("/")).is_file(), (page, href)


def test_category_and_tag_pages_offer_their_own_feeds(fixture_site):
    category_links = [
        ("application/atom+xml", "/categorie/relation-client/atom.xml", "égoBlog — Relation client (Atom)"),
        ("application/rss+xml", "/categorie/relation-client/rss.xml", "égoBlog — Relation client (RSS)"),
        ("application/feed+json", "/categorie/relation-client/feed.json", "égoBlog — Relation client (JSON Feed)")]
    assert alternates(fixture_site / "categorie" / "relation-client" / "index.html")[3:] == category_links
    # The category's « Suivre ce fil » page announces the feeds it explains.
    assert alternates(fixture_site / "categorie" / "relation-client" / "suivre" / "index.html")[3:] == category_links
    links = alternates(fixture_site / "etiquette" / "crm" / "index.html")
    assert links[3:] == [("application/atom+xml", "/etiquette/crm/atom.xml",
                          "égoBlog — étiquette «\u00a0CRM\u00a0» (Atom)")]
    assert len(alternates(fixture_site / "index.html")) == 3


@pytest.mark.parametrize("page, feeds", [
    ("categorie/humeurs-marketing/index.html", ["/categorie/humeurs-marketing/suivre/"]),  # its « Suivre ce fil »
    ("etiquette/crm/index.html", ["/etiquette/crm/atom.xml"]),  # a tag has no such page: its feed
])
def test_subscribe_links_beside_the_title(fixture_site, page, feeds):
    doc = html.parse(str(fixture_site / page)).getroot()
    heading = doc.find(".//h1")
    box = next(p for p in heading.getparent().iter("p") if "subscribe" in (p.get("class") or ""))
    assert " ".join(box.text_content().split()).startswith("S’abonner")
    assert [a.get("href") for a in box.iter("a")] == feeds + ["#newsletter"]
    assert [a.text for a in box.iter("a")][-1] == "par e-mail"
    assert box.get("style") is None and all(a.get("style") is None for a in box.iter("a"))


# A large synthetic site ----------------------------------------------------------------

def test_synthetic_corpus_of_200_posts(tmp_path):
    content = tmp_path / "content"
    subprocess.run([sys.executable, str(CORPUS), "200", str(content / "posts"), "--categories", "8", "--tags", "20"],
                   check=True)
    build(content, tmp_path / "out", env=ENV)
    out = tmp_path / "out"
    categories = sorted(p.name for p in (out / "categorie").iterdir())
    assert len(categories) == 8
    feeds = feeds_of(out)
    assert len(feeds) == 2 + 2 * 8 + len(list((out / "etiquette").iterdir()))
    for path in feeds:
        parsed = feedparser.parse(path.read_bytes())
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert 1 <= len(parsed.entries) <= 20
        published = [e.published_parsed for e in parsed.entries]
        assert published == sorted(published, reverse=True), path
        ids = [e.id for e in parsed.entries]
        assert len(set(ids)) == len(ids)
        if path.name == "atom.xml":
            assert ATOM_SCHEMA.validate(etree.parse(str(path))), (path, ATOM_SCHEMA.error_log.last_error)
        if path.parent.parent.name == "categorie" and path.name == "atom.xml":
            assert all([t.term for t in e.tags if t.scheme.endswith("/categorie/")] == [path.parent.name]
                       for e in parsed.entries)
    assert len(feedparser.parse((out / "atom.xml").read_bytes()).entries) == 20


def test_a_summary_showing_markup_stays_text_in_every_feed(tmp_path):
    """A summary that shows a tag to the reader (« <img src=x onerror=…> », escaped in the post) must stay
    text in the feeds too: RSS readers take <description> as HTML, so it goes there escaped once more."""
    import shutil

    import lxml.html
    from lxml import etree

    content = tmp_path / "content"
    shutil.copytree(FIXTURES, content)
    (content / "posts" / "balise.md").write_text(
        "Title: Une balise\nDate: 2020-02-02 10:00\nCategory: Relation client\nSlug: balise\n"
        "Summary: Le code &lt;img src=x onerror=alert(1)&gt; ne s’exécute pas\n\nTexte.\n", encoding="utf-8")
    out = tmp_path / "output"
    build(content, out, env=ENV)
    rss = etree.parse(str(out / "rss.xml"))
    (description,) = [item.findtext("description") for item in rss.iter("item") if "balise" in item.findtext("link")]
    shown = lxml.html.fragment_fromstring(description, create_parent="div")
    assert shown.xpath("//img") == [] and "<img src=x onerror=alert(1)>" in shown.text_content(), description
    atom = etree.parse(str(out / "atom.xml"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    (summary,) = [e.find("a:summary", ns) for e in atom.iterfind("a:entry", ns)
                  if "balise" in e.find("a:link", ns).get("href")]
    assert summary.get("type") in (None, "text") and "<img src=x onerror=alert(1)>" in summary.text
