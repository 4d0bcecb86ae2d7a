"""blogcore: the one definition the build and the newsletter share, tested without Pelican."""
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from blogcore import dates, header, language, records, urls
from tests.conftest import ROOT

PARIS = ZoneInfo("Europe/Paris")


# --- the metadata header, as Pelican's Markdown reader reads it ---------------------------

@pytest.mark.parametrize("text, expected, body", [
    ("Title: Un\nDate: 2015-10-17\n\nTexte", {"title": "Un", "date": "2015-10-17"}, "Texte"),
    ("\ufeffTitle: Un\n\nTexte", {"title": "Un"}, "Texte"),  # a byte-order mark
    ("---\nTitle: Un\nDate: 2015-10-17\n---\nTexte", {"title": "Un", "date": "2015-10-17"}, "Texte"),
    ("---\nTitle: Un\n...\nTexte", {"title": "Un"}, "Texte"),  # YAML's other end marker
    ("Title: Un\nSummary: une\n    deux\n\ttrois\n\nTexte", {"title": "Un", "summary": "une"}, "Texte"),
    ("  TITLE: Un\n\nTexte", {"title": "Un"}, "Texte"),  # up to 3 spaces, any case
    ("Title: Un\nTexte sans ligne vide", {"title": "Un"}, "Texte sans ligne vide"),  # the body starts there
    ("Texte seul\n\nSuite", {}, "Texte seul\n\nSuite"),
    ("Title: Un\r\n\r\nTexte", {"title": "Un"}, "Texte"),
])
def test_header_reads_what_the_meta_extension_reads(text, expected, body):
    import markdown
    md = markdown.Markdown(extensions=["markdown.extensions.meta"])
    md.convert(text.lstrip("\ufeff"))  # as pelican_open gives it (utf-8-sig)
    assert {key: values[0] for key, values in md.Meta.items()} == expected  # the oracle: Python-Markdown itself
    found, rest = header.split_header(text)
    assert {entry.name: entry.value for entry in found.entries} == expected
    assert rest.strip() == body


def test_header_lines_and_continuations():
    found = header.parse_header("---\nTitle: Un\nTags: a\n    b\nPas une clé\n".split("\n"))
    assert found.fenced and [(e.line, e.key, e.more) for e in found.entries] == [(2, "Title", []), (3, "Tags", ["b"])]
    assert (found.body_line, found.body_text) == (5, "Pas une clé")


def test_read_header_of_a_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "post.md"
    path.write_bytes("\ufeffTitle: Été\nSlug: ete\n\nTexte".encode())
    found = header.read_header(str(path))
    assert found.get("SLUG") == "ete" and found.get("title") == "Été" and found.end == 3


# --- languages and dates --------------------------------------------------------------------

@pytest.mark.parametrize("lang, french", [("fr", True), ("fr-FR", True), ("fr_CA", True), ("FR", True),
                                          ("", True), (None, True), ("en", False), ("en-GB", False), ("frr", False)])
def test_is_french(lang, french):
    assert language.is_french(lang) is french


def test_dates_in_the_post_language_and_the_site_zone():
    late = datetime(2015, 10, 31, 23, 30, tzinfo=timezone.utc)  # already the 1st of November in Paris
    assert dates.local_date(late, "fr", PARIS) == "1er novembre 2015"
    assert dates.local_date(late, "en", PARIS) == "1 November 2015"
    assert dates.local_date(late, "en", PARIS, year=False) == "1 November"
    assert dates.local_date(late, "fr", dates.site_zone({})) == "31 octobre 2015"  # no TIMEZONE: UTC, as Pelican
    naive = datetime(2015, 10, 17, 8)  # a naive date is in the site's zone
    assert dates.iso_date(naive, dates.site_zone({"TIMEZONE": "Europe/Paris"})) == "2015-10-17T08:00:00+02:00"
    assert dates.fr_month(naive, PARIS) == "octobre 2015"


# --- the public URL ----------------------------------------------------------------------------

@pytest.mark.parametrize("settings, expected", [
    ({"PUBLIC_URL": "https://blog.example.fr/", "SITEURL": ""}, "https://blog.example.fr"),
    ({"PUBLIC_URL": "", "SITEURL": "https://autre.example.fr"}, "https://autre.example.fr"),
    ({"SITEURL": "https://autre.example.fr/"}, "https://autre.example.fr"),
    ({}, ""),
])
def test_public_url_one_rule(settings, expected):
    assert urls.public_url(settings) == expected


def test_public_url_problem():
    assert urls.problem("https://blog.example.fr") is None
    assert "PUBLIC_URL" in urls.problem("") and "PUBLIC_URL" in urls.problem("/blog")
    assert all(urls.problem(f"https://blog.example.fr/{c}x") for c in " \t\r\n")  # in every link, mails' too


def test_absolute_urls():
    html = '<a href="../x/">x</a> <img src=a.png srcset="a.png 1x, b.png 2x"> <a href="https://o.example/">o</a>'
    assert urls.absolute_urls(html, "https://b.example/2015/10/p/") == (
        '<a href="https://b.example/2015/10/x/">x</a> <img src="https://b.example/2015/10/p/a.png" '
        'srcset="https://b.example/2015/10/p/a.png 1x, https://b.example/2015/10/p/b.png 2x"> '
        '<a href="https://o.example/">o</a>')


# --- the post records ---------------------------------------------------------------------------

def a_record(**changes):
    fields = dict(slug="un", title="Un", title_text="Un", url="https://b.example/un/", date="2015-10-17T08:00:00+02:00",
                  lang="fr", category=None, tags=[], author=None, summary_html="", summary_text="",
                  content_html="<p>Un</p>", source_path="/x/un.md", source_sha256="0" * 64)
    return records.make_record(**{**fields, **changes})


def test_records_round_trip(tmp_path):
    out = records.RecordsWriter(tmp_path)
    out.put("stamp", a_record())
    out.commit()
    found, slugs = records.read_record(tmp_path, "un")
    assert found == a_record() and found["version"] == records.RECORD_VERSION and slugs == ["un"]
    assert records.read_record(tmp_path, "deux") == (None, ["un"])
    assert records.read_record(tmp_path / "nowhere", "un") == (None, [])


def test_a_record_has_exactly_the_schema():
    with pytest.raises(TypeError, match="missing"):
        records.make_record(slug="un")


def test_records_of_an_older_build_ask_for_a_rebuild(tmp_path):
    # What the build wrote before the version was kept in the file: user_version 0, records of version 1.
    db = sqlite3.connect(tmp_path / records.RECORDS_FILE)
    db.execute("CREATE TABLE posts (slug TEXT PRIMARY KEY, stamp TEXT NOT NULL, record TEXT NOT NULL)")
    db.execute("INSERT INTO posts VALUES ('un', 's', ?)", (json.dumps({"version": 1, "slug": "un"}),))
    db.commit()
    db.close()
    with pytest.raises(records.RecordsError, match="run make build"):
        records.read_record(tmp_path, "un")
    out = records.RecordsWriter(tmp_path)  # the next build starts the file afresh
    assert out.stamps() == {}
    out.put("stamp", a_record())
    out.commit()
    assert records.read_record(tmp_path, "un")[0]["slug"] == "un"


def test_a_record_of_another_version_asks_for_a_rebuild(tmp_path):
    out = records.RecordsWriter(tmp_path)
    out.put("stamp", {**a_record(), "version": records.RECORD_VERSION + 1})
    out.commit()
    with pytest.raises(records.RecordsError, match="make build"):
        records.read_record(tmp_path, "un")


def test_records_folder_one_rule(tmp_path):
    real = tmp_path / "real"
    (real / "output").mkdir(parents=True)
    os.symlink(real, tmp_path / "link")
    assert records.records_folder({"OUTPUT_PATH": str(tmp_path / "link" / "output")}) == real / "var" / "posts"
    assert records.records_folder({"OUTPUT_PATH": "output"}, root=tmp_path / "link") == real / "var" / "posts"
    assert records.records_folder({"MAIL_POSTS_PATH": "posts"}, root=tmp_path / "link") == real / "posts"
    with pytest.raises(records.RecordsError, match="MAIL_POSTS_PATH"):
        records.records_folder({"MAIL_POSTS_PATH": 3})


# --- layering ----------------------------------------------------------------------------------

def imported_modules(statement: str) -> set:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_the_service_imports_no_pelican():
    modules = imported_modules("import newsletter.asgi")
    assert "newsletter.app" in modules and "blogcore.typography" in modules
    assert not {m for m in modules if m.split(".")[0] in ("pelican", "plugins", "feedgen")}


def test_the_sender_imports_no_pelican():
    modules = imported_modules("import newsletter.sender, newsletter.preview, newsletter.mail_message")
    assert "blogcore.records" in modules
    assert not {m for m in modules if m.split(".")[0] in ("pelican", "plugins", "feedgen")}


def test_blogcore_imports_no_framework():
    modules = imported_modules("import blogcore.typography, blogcore.dates, blogcore.header, blogcore.records, "
                               "blogcore.urls, blogcore.htmltext, blogcore.language")
    assert not {m for m in modules if m.split(".")[0] in ("pelican", "starlette", "jinja2", "markupsafe", "markdown")}


def test_the_sender_turns_stale_records_into_an_instruction(tmp_path):
    from newsletter.config import Config
    from newsletter.mail_message import PostError, load_post

    db = sqlite3.connect(tmp_path / records.RECORDS_FILE)  # a records file of the first version
    db.execute("CREATE TABLE posts (slug TEXT PRIMARY KEY, stamp TEXT NOT NULL, record TEXT NOT NULL)")
    db.commit()
    db.close()
    config = Config(public_url="https://b.example", newsletter_url="https://b.example/newsletter", mail_from="a@b.example",
                    reply_to="", site_name="égoBlog", db=str(tmp_path / "db"), outbox=tmp_path,
                    settings={"MAIL_POSTS_PATH": str(tmp_path)})
    with pytest.raises(PostError, match="run make build"):
        load_post(config, "un")
