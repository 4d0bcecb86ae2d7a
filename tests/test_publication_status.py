"""Drafts and posts dated in the future stay private (plugins/publication), judged on real builds.

Every build is `make build`'s or `make publish`'s own command (python -m sitebuild) on a copy of the
project's content plus a draft, a post dated next year, one dated yesterday, a hidden post, a hidden one
dated later and a draft page. The build's clock is injected (PUBLICATION_NOW): no test waits for time
to pass, and none depends on today's date.
"""
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from blogcore import dates
from blogcore.records import read_record
from tests.conftest import ROOT
from tests.test_accelerator_equivalence import once, shared_dir, tree_diff  # noqa: F401 - shared_dir: a fixture
from tests.test_html_valid import vnu

PARIS = ZoneInfo("Europe/Paris")
NOW = "2026-12-03T12:00"  # the build's clock, in the site's zone (Europe/Paris)
BEFORE = "2027-12-03T08:59"  # a minute before the scheduled post's date, Paris time
AFTER = "2027-12-03T08:30+00:00"  # 09:30 in Paris: past the post's 09:00, though 08:30 < 09:00 in UTC
NOINDEX = '<meta name="robots" content="noindex">'
ACCELERATOR_OFF = "building without the accelerator"


def post(title, date, slug, body, category="Humeurs Marketing", extra=""):
    return (f"Title: {title}\nDate: {date}\nCategory: {category}\nSlug: {slug}\n{extra}"
            f"Summary: Résumé de {slug}.\n\n{body}\n")


# name: (file under content/, its text, what of it must appear nowhere while it is withheld)
WITHHELD = {
    "draft": ("posts/zz-brouillon.md",
              post("Un brouillon très secret", "2026-11-20 10:00", "brouillon-tres-secret", "Témoin-du-brouillon.",
                   "Rubrique des brouillons", "Tags: étiquette-de-brouillon\nStatus: draft\n"),
              ["Un brouillon très secret", "brouillon-tres-secret", "Témoin-du-brouillon", "Rubrique des brouillons",
               "rubrique-des-brouillons", "étiquette-de-brouillon", "etiquette-de-brouillon"]),
    "next year": ("posts/zz-programme.md",
                  post("Le billet de l’an prochain", "2027-12-03 09:00", "billet-de-lan-prochain",
                       "Témoin-du-futur.", "Rubrique de l’avenir", "Tags: étiquette-future\n"),
                  ["billet de l’an prochain", "billet-de-lan-prochain", "Témoin-du-futur", "Rubrique de l’avenir",
                   "rubrique-de-lavenir", "étiquette-future", "etiquette-future"]),
    "hidden, later": ("posts/zz-cache-programme.md",
                      post("Un billet caché pour plus tard", "2027-06-01 10:00", "billet-cache-programme",
                           "Témoin-du-caché-programmé.", extra="Status: hidden\n"),
                      ["billet caché pour plus tard", "billet-cache-programme", "Témoin-du-caché-programmé"]),
    "draft page": ("pages/page-en-chantier.md",
                   "Title: Une page en chantier\nSlug: page-en-chantier\nStatus: draft\n\nTémoin-de-la-page.\n",
                   ["Une page en chantier", "page-en-chantier", "Témoin-de-la-page"]),
}
YESTERDAY = ("posts/zz-hier.md", post("Le billet d’hier", "2026-12-02 18:00", "billet-d-hier", "Témoin-d’hier."))
HIDDEN = ("posts/zz-non-liste.md", post("Un billet non listé", "2026-11-01 10:00", "billet-non-liste",
                                        "Témoin-du-non-listé.", extra="Status: hidden\n"))
FUTURE_PAGE = "2027/12/billet-de-lan-prochain/index.html"


def write_content(folder: Path) -> Path:
    shutil.copytree(ROOT / "content", folder)
    for relative, text in [*(entry[:2] for entry in WITHHELD.values()), YESTERDAY, HIDDEN]:
        (folder / relative).write_text(text, encoding="utf-8")
    return folder


def build(content, output, cache, now, settings="pelicanconf.py", extra=(), accelerated=True, check=True):
    """`make build` (or `make publish`) on this content at this clock; returns the process result."""
    options = [f"PUBLICATION_NOW={now}", f"CACHE_PATH={cache}", *extra] + ([] if accelerated else ["FAST_BUILD=false"])
    env = {**os.environ, "SITEURL": "https://blog.exemple.fr", "NEWSLETTER_SECRET": "secret-de-test-" + "p" * 20,
           "NEWSLETTER_FROM": "égoBlog <lettre@blog.exemple.fr>"}
    result = subprocess.run([sys.executable, "-m", "sitebuild", "--settings", settings, "--content", str(content),
                             "--output", str(output), "-e", *options],
                            cwd=ROOT, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
        assert ACCELERATOR_OFF not in result.stderr, result.stderr  # on, or off by FAST_BUILD = False alone
    return result


def records_of(output: Path) -> Path:
    """Where a build into `output` leaves the mail records (blogcore.records: var/posts beside it)."""
    return output.parent / "var" / "posts"


def built_slugs(output: Path) -> list[str]:
    return read_record(records_of(output), "")[1]


def leaks(output: Path, needles, allowed=()) -> list[tuple[str, str]]:
    """(file, needle) for every needle in the bytes or the path of a file under output/ (but `allowed`)."""
    found = []
    for path in (p for p in output.rglob("*") if p.is_file()):
        relative = str(path.relative_to(output))
        if relative not in allowed:
            data = path.read_bytes() + relative.encode()
            found += [(relative, needle) for needle in needles if needle.encode() in data]
    return found


def everything_withheld() -> list[str]:
    return [needle for *_, needles in WITHHELD.values() for needle in needles]


def withheld_slugs() -> list[str]:
    return ["brouillon-tres-secret", "billet-de-lan-prochain", "billet-cache-programme", "page-en-chantier"]


def snapshot(output: Path, where: Path) -> Path:
    """A copy of the site and of its mail records, as this build left them."""
    shutil.copytree(output, where / "output")
    shutil.copytree(records_of(output), where / "var" / "posts")
    return where / "output"


def clock_sequence(root: Path, clocks, extra=()) -> dict:
    """make build's output/, warm and accelerated, at each clock in turn (same content, output and cache), and a
    plain cold build (FAST_BUILD = False, no cache) at each. {"warm <clock>" or "plain <clock>": folder}."""
    content = write_content(root / "content")
    output, built = root / "site" / "output", {}
    for step, now in enumerate(clocks):
        build(content, output, root / "cache", now, extra=extra)
        built[f"warm {now}"] = str(snapshot(output, root / f"step-{step}"))
        cold = root / f"cold-{step}" / "output"
        build(content, cold, root / f"cold-{step}-cache", now, extra=extra, accelerated=False)
        built[f"plain {now}"] = str(cold)
    return built


def computed_once(shared_dir, tmp_path_factory, name, clocks, extra=()) -> dict:
    """clock_sequence, run by one process of the session (xdist workers included)."""
    found = once(shared_dir, name, lambda: clock_sequence(tmp_path_factory.mktemp(name), clocks, extra))
    return {label: Path(folder) for label, folder in found.items()}


@pytest.fixture(scope="session")
def production(shared_dir, tmp_path_factory):
    """make build at NOW, then AFTER the scheduled post's date, then back to BEFORE it."""
    return computed_once(shared_dir, tmp_path_factory, "publication-production", [NOW, AFTER, BEFORE])


@pytest.fixture(scope="session")
def development(shared_dir, tmp_path_factory):
    """The dev server's builds (DEV_BUILD = True) at NOW, then AFTER."""
    return computed_once(shared_dir, tmp_path_factory, "publication-development", [NOW, AFTER], ["DEV_BUILD=true"])


# -- make build and make publish write nothing of a withheld post ------------------------------------------

def test_make_build_writes_no_draft_and_no_future_post_anywhere(production):
    output = production[f"warm {NOW}"]
    assert not (output / "drafts").exists()
    assert leaks(output, everything_withheld()) == []
    assert set(built_slugs(output)).isdisjoint(withheld_slugs())


def test_make_publish_writes_no_draft_and_no_future_post_anywhere(tmp_path):
    content = write_content(tmp_path / "content")
    build(content, tmp_path / "output", tmp_path / "cache", NOW, settings="publishconf.py")
    assert (tmp_path / "output" / "2026" / "12" / "billet-d-hier" / "index.html").is_file()
    assert leaks(tmp_path / "output", everything_withheld()) == []
    assert "billet-d-hier" in built_slugs(tmp_path / "output")
    assert set(built_slugs(tmp_path / "output")).isdisjoint(withheld_slugs())


def test_a_post_dated_yesterday_is_everywhere_a_post_goes(production):
    output = production[f"warm {NOW}"]
    page = (output / "2026" / "12" / "billet-d-hier" / "index.html").read_text(encoding="utf-8")
    assert "Témoin-d’hier" in page and NOINDEX not in page
    for listing in ("index.html", "archives/index.html", "categorie/humeurs-marketing/index.html", "atom.xml",
                    "rss.xml", "categorie/humeurs-marketing/atom.xml", "sitemap.xml", "auteur/francois/index.html"):
        assert "billet-d-hier" in (output / listing).read_text(encoding="utf-8"), listing
    assert "billet-d-hier" in built_slugs(output)


def test_a_hidden_post_is_reachable_by_its_address_only_and_not_indexed(production):
    output = production[f"warm {NOW}"]
    page = (output / "2026" / "11" / "billet-non-liste" / "index.html").read_text(encoding="utf-8")
    assert "Témoin-du-non-listé" in page and NOINDEX in page
    assert leaks(output, ["billet-non-liste"], allowed={"2026/11/billet-non-liste/index.html"}) == []
    assert "billet-non-liste" not in built_slugs(output)


def test_robots_txt_names_no_private_path(production):
    """Nothing to hide from crawlers: a robots.txt line naming a private path would only advertise it."""
    robots = (production[f"warm {NOW}"] / "robots.txt").read_text(encoding="utf-8").splitlines()
    assert robots[:3] == ["User-agent: *", "Disallow: /newsletter/", ""] and robots[3].startswith("Sitemap: ")


# -- a scheduled post goes out by itself ---------------------------------------------------------------------

def test_a_scheduled_post_goes_out_at_the_first_build_after_its_date(production):
    """Same content, same output and cache: only the clock moved past 3 December 2027, 9:00 in Paris."""
    output = production[f"warm {AFTER}"]
    page = (output / FUTURE_PAGE).read_text(encoding="utf-8")
    assert "Témoin-du-futur" in page and NOINDEX not in page and "Programmé" not in page
    for listing in ("index.html", "archives/index.html", "atom.xml", "rss.xml", "sitemap.xml",
                    "categorie/rubrique-de-lavenir/index.html", "categorie/rubrique-de-lavenir/atom.xml",
                    "etiquette/etiquette-future/index.html"):
        assert "billet-de-lan-prochain" in (output / listing).read_text(encoding="utf-8"), listing
    assert "billet-de-lan-prochain" in built_slugs(output)
    assert "billet-de-lan-prochain" not in built_slugs(production[f"warm {NOW}"])


def test_a_minute_before_its_date_in_the_sites_zone_it_is_still_private(production):
    """BEFORE (08:59 in Paris) comes after the AFTER build: a cache that kept the post public would show here."""
    output = production[f"warm {BEFORE}"]
    assert leaks(output, WITHHELD["next year"][2]) == []
    assert "billet-de-lan-prochain" not in built_slugs(output)


@pytest.mark.parametrize("now", [NOW, AFTER, BEFORE])
def test_the_accelerator_writes_a_plain_builds_bytes_as_the_clock_moves(production, now):
    problem = tree_diff(production[f"plain {now}"], production[f"warm {now}"], f"make build at {now}")
    assert problem is None, problem


# -- make serve's builds show them to the author ------------------------------------------------------------

def test_the_dev_build_shows_drafts_and_scheduled_posts_marked_and_not_indexed(development):
    output = development[f"warm {NOW}"]
    pages = {"drafts/brouillon-tres-secret.html": "Brouillon",
             FUTURE_PAGE: "Programmé pour le 3 décembre 2027 à 9\u00a0h\u00a000",
             "2027/06/billet-cache-programme/index.html": "Programmé pour le 1er juin 2027 à 10\u00a0h\u00a000",
             "drafts/pages/page-en-chantier.html": "Brouillon"}
    home = (output / "index.html").read_text(encoding="utf-8")
    for path, mark in pages.items():
        html = (output / path).read_text(encoding="utf-8")
        assert f'<p class="publication-mark">{mark}</p>' in html, path
        assert NOINDEX in html, path
        assert f'href="/{path.removesuffix("index.html")}"' in home and mark in home, path
    assert NOINDEX not in (output / "2026" / "12" / "billet-d-hier" / "index.html").read_text(encoding="utf-8")


def test_the_dev_build_lists_them_in_no_feed_sitemap_archive_or_mail_record(development):
    output = development[f"warm {NOW}"]
    shown = {"index.html", "drafts/brouillon-tres-secret.html", FUTURE_PAGE,
             "2027/06/billet-cache-programme/index.html", "drafts/pages/page-en-chantier.html"}
    assert leaks(output, withheld_slugs(), allowed=shown) == []
    assert set(built_slugs(output)).isdisjoint(withheld_slugs())


def test_the_dev_builds_pages_are_valid_html(development):
    """The pages a dev build adds or changes: the home page's list, the marked pages, a post with the script."""
    output = development[f"warm {NOW}"]
    pages = ["index.html", "drafts/brouillon-tres-secret.html", FUTURE_PAGE, "drafts/pages/page-en-chantier.html",
             "2026/12/billet-d-hier/index.html"]
    errors = vnu(*(output / page for page in pages))
    assert not errors, "\n".join(f"{m.get('url', '')}:{m.get('lastLine', '')}: {m['message']}" for m in errors)


@pytest.mark.parametrize("now", [NOW, AFTER])
def test_the_accelerator_writes_a_plain_dev_builds_bytes_as_the_clock_moves(development, now):
    problem = tree_diff(development[f"plain {now}"], development[f"warm {now}"], f"dev build at {now}")
    assert problem is None, problem


# -- the clock -------------------------------------------------------------------------------------------

def test_a_bad_clock_stops_the_build_naming_the_setting(tmp_path):
    result = build(ROOT / "content", tmp_path / "output", tmp_path / "cache", "demain matin", check=False)
    assert result.returncode == 1 and "PUBLICATION_NOW: 'demain matin' is not an ISO 8601" in result.stderr
    assert not (tmp_path / "output").exists()


def test_dates_in_french_with_the_time():
    assert dates.fr_datetime(datetime(2027, 12, 3, 9, 0), PARIS) == "3 décembre 2027 à 9\u00a0h\u00a000"
    summer = datetime(2027, 6, 1, 8, 5, tzinfo=timezone.utc)
    assert dates.fr_datetime(summer, PARIS) == "1er juin 2027 à 10\u00a0h\u00a005"


def test_the_build_clock_is_the_machines_unless_given():
    now = dates.build_now(PARIS)
    assert now.tzinfo is PARIS and abs(now - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert dates.build_now(PARIS, "2027-12-03T09:00") == datetime(2027, 12, 3, 9, 0, tzinfo=PARIS)
    assert dates.build_now(PARIS, "2027-12-03T08:00+00:00") == datetime(2027, 12, 3, 9, 0, tzinfo=PARIS)
    with pytest.raises(ValueError, match="'hier' is not an ISO 8601"):
        dates.build_now(PARIS, "hier")


@pytest.mark.parametrize("now, future", [("2027-12-03T08:59", True), ("2027-12-03T09:00", False),
                                         ("2027-12-03T07:59+00:00", True), ("2027-12-03T08:01+00:00", False)])
def test_future_is_decided_in_the_sites_zone(now, future):
    post_date = datetime(2027, 12, 3, 9, 0)  # as Pelican reads `Date: 2027-12-03 09:00`: in TIMEZONE
    assert dates.is_future(post_date, dates.build_now(PARIS, now), PARIS) is future
