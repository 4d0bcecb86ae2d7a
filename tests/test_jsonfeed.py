"""JSON Feed 1.1 (plugins/feeds/jsonfeed.py): every feed.json of a real build validates against the
specification, says what its Atom twin says (same ids, order, dates, titles, links, content), with
absolute URLs, no drafts nor future posts, and goes out as application/feed+json.

The specification (https://www.jsonfeed.org/version/1.1/) publishes no schema: fixtures/feeds/
jsonfeed-1.1.schema.json is written from its text (every key it defines, its required ones, nothing
else but `_` extensions), checked with jsonschema, dates as RFC 3339 (rfc3339-validator).
"""
import copy
import json
import shutil
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
from lxml import etree, html
from PIL import Image

from conftest import build
from test_feeds import ENV, FIXTURES, NS, PUBLIC, settings_file

SCHEMA = json.loads((FIXTURES / "jsonfeed-1.1.schema.json").read_text(encoding="utf-8"))
URL_KEYS = {"home_page_url", "feed_url", "url", "image", "external_url", "banner_image", "icon", "favicon", "avatar"}
POSTS = {
    "image.md": "Title: Un billet illustré\nDate: 2020-05-05 12:00\nCategory: Relation client\nSlug: illustre\n"
                "Image: illustration.png\nSummary: Avec une image.\n\nUn billet avec une image.\n",
    "futur.md": "Title: Un billet à venir\nDate: 2099-01-01 09:00\nCategory: Relation client\nSlug: billet-futur\n"
                "\nPas encore publié.\n",
}


def validator():
    checker = jsonschema.FormatChecker()
    assert "date-time" in checker.checkers, "rfc3339-validator is missing: dates would not be checked"
    return jsonschema.Draft202012Validator(SCHEMA, format_checker=checker)


def content_with(tmp_path: Path) -> Path:
    """The feeds fixtures plus a post with an Image: and one dated 2099."""
    content = tmp_path / "content"
    shutil.copytree(FIXTURES, content)
    for name, text in POSTS.items():
        (content / "posts" / name).write_text(text, encoding="utf-8")
    for picture, colour in (("illustration.png", "navy"), ("autre.jpg", "teal")):  # Image: is read from content/
        Image.new("RGB", (1600, 900), colour).save(content / picture)
    return content


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("jsonfeed")
    out = work / "output"
    build(content_with(work), out, env=ENV)
    return out


def json_feeds(site: Path) -> list[Path]:
    found = sorted(site.rglob("feed.json"))
    assert site / "feed.json" in found and len(found) >= 3, found  # the site's and each category's
    return found


def load(path: Path) -> dict:
    return json.loads(path.read_bytes().decode("utf-8"))  # strict UTF-8: a bad byte fails here


def test_one_json_feed_beside_each_atom_feed_of_the_site_and_its_categories(site):
    expected = {site / "feed.json"} | {p.parent / "feed.json" for p in (site / "categorie").glob("*/atom.xml")}
    assert set(json_feeds(site)) == expected
    assert not list((site / "etiquette").rglob("feed.json"))


def test_every_json_feed_validates_against_the_specification(site):
    check = validator()
    for path in json_feeds(site):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in check.iter_errors(load(path))]
        assert not errors, (path, errors)


@pytest.mark.parametrize("breakage", ["no id", "date", "unknown key", "version", "no content", "tags"])
def test_the_schema_catches_what_the_specification_forbids(site, breakage):
    feed = copy.deepcopy(load(site / "feed.json"))
    item = feed["items"][0]
    if breakage == "no id":
        del item["id"]
    elif breakage == "date":
        item["date_published"] = "2021-07-14 10:00"
    elif breakage == "unknown key":
        item["auteur"] = "François"
    elif breakage == "version":
        feed["version"] = "https://jsonfeed.org/version/1"
    elif breakage == "no content":
        del item["content_html"]
    else:
        item["tags"] = "CRM"
    assert list(validator().iter_errors(feed)), breakage


def test_each_json_feed_says_what_its_atom_twin_says(site):
    """Same entries in the same order (newest first), ids, titles, links, dates and content, byte for byte."""
    for path in json_feeds(site):
        feed = load(path)
        atom = etree.parse(str(path.parent / "atom.xml")).getroot()
        entries = atom.findall("a:entry", NS)
        assert feed["title"] == atom.findtext("a:title", namespaces=NS)
        assert feed["description"] == atom.findtext("a:subtitle", namespaces=NS)
        assert feed["home_page_url"] == atom.find("a:link[@rel='alternate']", NS).get("href")
        assert feed["feed_url"] == f"{PUBLIC}/{path.relative_to(site).as_posix()}"
        assert len(feed["items"]) == len(entries) >= 1
        for item, entry in zip(feed["items"], entries):
            assert item["id"] == entry.findtext("a:id", namespaces=NS)
            assert item["title"] == entry.findtext("a:title", namespaces=NS)
            assert item["url"] == entry.find("a:link", NS).get("href")
            assert item["date_published"] == entry.findtext("a:published", namespaces=NS)
            assert item["date_modified"] == entry.findtext("a:updated", namespaces=NS)
            assert item["content_html"] == entry.findtext("a:content", namespaces=NS)
            assert item.get("summary") == entry.findtext("a:summary", namespaces=NS)
        instants = [datetime.fromisoformat(item["date_published"]) for item in feed["items"]]
        assert instants == sorted(instants, reverse=True), path  # newest first, as instants (offsets differ)


def test_item_fields(site):
    feed = load(site / "feed.json")
    assert (feed["language"], feed["authors"]) == ("fr", [{"name": "François"}])
    summer = next(item for item in feed["items"] if item["url"].endswith("/billet-ete/"))
    assert summer["id"] == "tag:egoblog.fr,2021-07-14:billet-ete"
    assert summer["title"] == "Un billet d’été"
    assert (summer["date_published"], summer["date_modified"]) == ("2021-07-14T10:00:00+02:00",
                                                                   "2021-07-20T08:30:00+02:00")
    assert summer["authors"] == [{"name": "François", "url": f"{PUBLIC}/auteur/francois/"}]
    assert summer["tags"] == ["Humeurs Marketing", "CRM"]
    assert summer["summary"] == "Publié en été, corrigé six jours plus tard."
    assert "Dernier paragraphe du billet d’été" in summer["content_html"]
    assert "image" not in summer
    illustrated = next(item for item in feed["items"] if item["url"].endswith("/illustre/"))
    assert illustrated["image"] == f"{PUBLIC}/cartes/illustre.png"  # as published by share_cards: 1200×630


def test_urls_are_absolute_and_no_key_is_an_extension(site):
    def walk(value, where):
        if isinstance(value, dict):
            for key, inner in value.items():
                assert not key.startswith("_"), where
                if key in URL_KEYS:
                    assert urlsplit(inner).scheme in ("http", "https") and inner.startswith(PUBLIC + "/"), (where, inner)
                walk(inner, f"{where}/{key}")
        elif isinstance(value, list):
            for number, inner in enumerate(value):
                walk(inner, f"{where}/{number}")

    for path in json_feeds(site):
        feed = load(path)
        walk(feed, path.name)
        for item in feed["items"]:
            for element in html.fromstring(f"<div>{item['content_html']}</div>").iter():
                for attr in ("href", "src", "poster", "cite"):
                    if element.get(attr) is not None:
                        assert urlsplit(element.get(attr)).scheme in ("http", "https", "mailto"), (path, element.get(attr))


def test_relative_links_become_absolute_against_the_post(site):
    feed = load(site / "feed.json")
    item = next(i for i in feed["items"] if i["id"] == "tag:egoblog.fr,2020-03-15:liens-relatifs")
    hrefs = [a.get("href") for a in html.fromstring(f"<div>{item['content_html']}</div>").iter("a")]
    base = f"{PUBLIC}/2020/03/liens-relatifs/"
    assert hrefs == [f"{PUBLIC}/a-propos/", f"{PUBLIC}/2020/03/suite/", f"{base}voisin/", f"{base}#note",
                     f"{PUBLIC}/2021/07/billet-ete/", "https://example.org/ref?a=1&b=2"]


def test_utf8_text_as_written_and_no_draft_nor_future_post(site):
    for path in json_feeds(site):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        text = data.decode("utf-8")
        assert "\\u00e9" not in text  # accents written as such, not escaped
        assert "brouillon" not in text and "billet-futur" not in text and "à venir" not in text, path
    assert "égoBlog" in (site / "feed.json").read_text(encoding="utf-8")


def test_max_items_holds_for_json_as_for_atom(tmp_path):
    out = tmp_path / "out"
    build(content_with(tmp_path), out, settings=str(settings_file(tmp_path, FEEDS_MAX_ITEMS=2)), env=ENV)
    feed = load(out / "feed.json")
    atom_ids = [e.findtext("a:id", namespaces=NS) for e in etree.parse(str(out / "atom.xml")).getroot()
                .findall("a:entry", NS)]
    assert [item["id"] for item in feed["items"]] == atom_ids
    assert len(atom_ids) == 2


def test_warm_rebuild_gives_a_cold_build_s_bytes(tmp_path):
    """The feeds' cache (CACHE_CONTENT) covers the JSON feeds too: after an edit, warm equals cold."""
    content = content_with(tmp_path)
    cache = tmp_path / "cache"
    build(content, tmp_path / "before", env=ENV, args=("--cache-path", str(cache)))
    post = content / "posts" / "image.md"
    post.write_text(POSTS["image.md"].replace("illustration.png", "autre.jpg"), encoding="utf-8")  # a photo
    build(content, tmp_path / "warm", env=ENV, args=("--cache-path", str(cache)))
    build(content, tmp_path / "cold", env=ENV, args=("--cache-path", str(tmp_path / "no-cache")))
    warm, cold = ({str(p.relative_to(root)): p.read_bytes() for p in root.rglob("feed.json")}
                  for root in (tmp_path / "warm", tmp_path / "cold"))
    assert warm == cold
    assert b"/cartes/illustre.jpg" in warm["feed.json"]  # a JPEG stays a JPEG on the card


def test_the_dev_server_serves_a_json_feed_as_application_feed_json(site, tmp_path):
    """make serve's app (create_app with the site), over real HTTP on loopback."""
    import httpx

    from newsletter.app import create_app
    from newsletter.config import Config
    from newsletter.serving import serve_in_thread

    config = Config.from_env(environ={"NEWSLETTER_DB": str(tmp_path / "s.sqlite3"),
                                      "NEWSLETTER_OUTBOX": str(tmp_path / "outbox"),
                                      "NEWSLETTER_SECRET": "jsonfeed-test-secret-0123456789"})
    with serve_in_thread(create_app(config, static_dir=site)) as url, httpx.Client(base_url=url, timeout=20) as client:
        for path in ("/feed.json", "/categorie/relation-client/feed.json"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/feed+json"
            assert response.json()["version"] == "https://jsonfeed.org/version/1.1"
        assert client.get("/atom.xml").headers["content-type"].startswith("application/xml")
