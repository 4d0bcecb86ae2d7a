"""The five seed posts: metadata read by Pelican, and every word of the author on the built site.

The expected paragraphs come from the seed texts in tests/fixtures/seeds directly (minus the WordPress residue), so a
paragraph lost or mangled while converting to Markdown makes these tests fail.
"""
import re
import unicodedata
from datetime import date
from pathlib import Path

import lxml.html
import pytest
from pelican.contents import Article, Page
from pelican.readers import Readers
from pelican.settings import read_settings

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"
SEEDS = ROOT / "tests" / "fixtures" / "seeds"

# seed file -> (post file, title, date, category, slug)
POSTS = {
    "000_74648377d91f23c2.txt": ("2017-08-le-like-abondant.md", "Le like abondant est tellement abordable",
                                 date(2017, 8, 31), "Humeurs Marketing", "le-like-abondant"),
    "001_8a3546dc0a8b8797.txt": ("2015-11-le-cr-aime.md", "Le CR « aime »",
                                 date(2015, 11, 15), "Humeurs Marketing", "le-cr-aime"),
    "002_734e0caba14cef47.txt": ("2015-10-plan-paradise.md", "Le plan « Paradise » et la relation-client",
                                 date(2015, 10, 17), "Humeurs Marketing", "plan-paradise"),
    "003_5a3ca22720c5cf4f.txt": ("2017-01-fidele-par-anticipation.md", "Fidèle… par anticipation",
                                 date(2017, 1, 9), "éthique.biz", "fidele-par-anticipation"),
    "004_85f3d4f4f84f15ff.txt": ("2009-08-infamie-du-fail.md", "L’infamie du #fail",
                                 date(2009, 8, 31), "Humeurs Marketing", "infamie-du-fail"),
}
UNDATED_SEEDS = {"000_74648377d91f23c2.txt", "004_85f3d4f4f84f15ff.txt"}

# WordPress residue: lines of the scrape that are not the author's words.
COMMENT_FORM = [
    "0 réponses",
    "Se joindre à la discussion ?",
    "Vous êtes libre de contribuer !",
    "Laisser un commentaire",
    "Votre adresse de messagerie ne sera pas publiée.",
    "Les champs obligatoires sont indiqués avec",
    "WP-SpamShield",
    "Published On:",
    "Add notice about your Privacy Policy here.",
]
REPLY_LINK = "Répondre"  # the comment form's button; the theme's « Répondre par e-mail » is fine
# The old newsletter widget: the theme's signup block may reuse these words on every page,
# so a post must not show them more often than a page with no seed text does.
WIDGET = ["Ne ratez pas le dernier égoBlog !", "Promis, nous n’utiliserons pas vos données à d’autres fins."]
RESIDUE_LINES = set(WIDGET) | {REPLY_LINK, "Coeur"}  # "Coeur": caption of an image above 001's title

# Subtitles of the seeds that became ## headings.
SUBTITLES = {
    "001_8a3546dc0a8b8797.txt": ["Que faire ?"],
    "004_85f3d4f4f84f15ff.txt": ["C’est grave docteur ?", "Pourquoi ils sont méchants les gens ?",
                                 "Oui mais mon « e-reputation » elle va en souffrir ?",
                                 "Mais si je ne le fais pas ?", "Conclusion"],
}


def normalise(text: str) -> str:
    """Compare words, not typography: the french_typography plugin may change spaces and signs."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("...", "…").replace("'", "’").replace("\u00ad", "").replace("\u200b", "")
    text = re.sub(r"\s+", " ", text)  # \s covers U+00A0, U+202F and U+2009
    return re.sub(r" ?([«»:;!?%]) ?", r"\1", text).strip()


def is_residue(line: str) -> bool:
    return line in RESIDUE_LINES or any(r in line for r in COMMENT_FORM)


# WordPress's texturizer turned two closing quotes before a period into an opening « : a scrape
# artifact, not the author's words, so the posts close them with ».
SCRAPE_ARTIFACT = re.compile(r"(à la papa|d’Air France)«\s*\.")


def seed_paragraphs(seed: str) -> list[str]:
    """The author's paragraphs, straight from the seed file (scrape artifacts mended)."""
    text = (SEEDS / seed).read_text(encoding="utf-8")
    text = SCRAPE_ARTIFACT.sub(r"\1 ».", text)
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not is_residue(line)]


def parse(path: Path):
    """Built pages are UTF-8; lxml would guess Latin-1 from bytes."""
    return lxml.html.document_fromstring(path.read_text(encoding="utf-8"))


def page_text(path: Path) -> str:
    doc = parse(path)
    for node in doc.xpath("//script | //style"):
        node.drop_tree()
    return normalise(doc.text_content())


def post_page(site: Path, seed: str) -> Path:
    _, _, day, _, slug = POSTS[seed]
    return site / f"{day:%Y}" / f"{day:%m}" / slug / "index.html"


@pytest.fixture(scope="module")
def readers():
    settings = read_settings(str(ROOT / "pelicanconf.py"), override={"PATH": str(CONTENT)})
    return settings, Readers(settings)


def read(readers, path: str, content_class=Article):
    settings, reader = readers
    return reader.read_file(base_path=settings["PATH"], path=path, content_class=content_class)


# --- (a) metadata, through Pelican's own reader --------------------------------------------

def test_every_post_file_is_a_seed():
    assert sorted(p.name for p in (CONTENT / "posts").glob("*.md")) == sorted(v[0] for v in POSTS.values())


def test_every_seed_text_is_in_the_repository():
    """The seed texts are fixtures of this repository: nothing is read from beside it."""
    assert sorted(p.name for p in SEEDS.glob("*.txt")) == sorted(POSTS)
    assert all(seed_paragraphs(seed) for seed in POSTS)


@pytest.mark.parametrize("seed", sorted(POSTS))
def test_post_metadata(readers, seed):
    filename, title, day, category, slug = POSTS[seed]
    post = read(readers, f"posts/{filename}")
    assert post.title == title
    assert post.date.date() == day
    assert str(post.date.tzinfo) == "Europe/Paris"
    assert post.category.name == category
    assert post.author.name == "François"
    assert post.slug == slug and slug.isascii()
    assert len(post.tags) >= 2
    summary = lxml.html.fromstring(post.summary).text_content()
    assert 40 < len(summary) < 300, summary
    assert post.lang == "fr"


def test_dual_category_kept_as_tag(readers):
    post = read(readers, "posts/" + POSTS["003_5a3ca22720c5cf4f.txt"][0])
    assert "Humeurs Marketing" in [tag.name for tag in post.tags]


@pytest.mark.parametrize("seed", sorted(UNDATED_SEEDS))
def test_inferred_date_says_how(readers, seed):
    post = read(readers, "posts/" + POSTS[seed][0])
    assert "day unknown" in post.metadata["date_source"].lower()


@pytest.mark.parametrize("slug, title", [("a-propos", "À propos"), ("confidentialite", "Confidentialité")])
def test_pages_metadata(readers, slug, title):
    page = read(readers, f"pages/{slug}.md", Page)
    assert (page.slug, page.title) == (slug, title)


# --- (b) and (c): the built site. These need the theme: the `site` fixture fails the test
# with Pelican's output when the build fails; they are never skipped. --------------------

@pytest.mark.parametrize("seed", sorted(POSTS))
def test_built_post_is_whole(site, seed):
    page = post_page(site, seed)
    assert page.is_file(), f"{page} was not built"
    text = page_text(page)
    missing = [p for p in seed_paragraphs(seed) if normalise(p) not in text]
    assert not missing, f"{seed}: paragraphs missing from {page}:\n" + "\n".join(missing)


@pytest.mark.parametrize("seed", sorted(SUBTITLES))
def test_subtitles_are_headings(site, seed):
    doc = parse(post_page(site, seed))
    headings = [normalise(h.text_content()) for h in doc.xpath("//h2")]
    assert all(normalise(s) in headings for s in SUBTITLES[seed]), headings


def test_markdown_did_not_misread_the_author(site):
    like = parse(post_page(site, "000_74648377d91f23c2.txt"))
    assert not [h for h in like.xpath("//h1|//h2|//h3|//h4|//h5|//h6") if "oupas" in h.text_content()]
    assert normalise("#oupas !") in page_text(post_page(site, "000_74648377d91f23c2.txt"))
    fail = parse(post_page(site, "004_85f3d4f4f84f15ff.txt"))
    assert not [e for e in fail.xpath("//em|//strong") if "au moment" in e.text_content()]
    assert "*au moment de mettre sous presse" in page_text(post_page(site, "004_85f3d4f4f84f15ff.txt"))


def built_files(site: Path):
    files = [p for p in site.rglob("*") if p.suffix in {".html", ".xml"}]
    assert len(files) > 10, f"only {len(files)} page(s) and feed(s) in {site}"
    return files


def test_no_wordpress_residue_anywhere(site):
    found = [(str(p.relative_to(site)), r) for p in built_files(site)
             for r in COMMENT_FORM if r in p.read_text(encoding="utf-8")]
    assert not found


def test_no_comment_button_or_empty_paragraph(site):
    for path in (p for p in built_files(site) if p.suffix == ".html"):
        doc = parse(path)
        texts = [normalise(t) for t in doc.xpath("//body//text()")]
        assert REPLY_LINK not in texts, path
        empty = [p for p in doc.xpath("//p") if not normalise(p.text_content()) and not len(p)]
        assert not empty, f"{path}: empty paragraph (a stray &nbsp; line)"


@pytest.mark.parametrize("seed", sorted(POSTS))
def test_widget_text_only_from_the_theme(site, seed):
    post = post_page(site, seed).read_text(encoding="utf-8")
    baseline = (site / "confidentialite" / "index.html").read_text(encoding="utf-8")
    for line in WIDGET:
        assert post.count(line) <= baseline.count(line), line


def test_privacy_page_says_what_is_kept(site):
    text = page_text(site / "confidentialite" / "index.html")
    for claim in ["votre adresse e-mail", "Rien d’autre", "48 heures", "effacée du disque", "Pas de cookies",
                  "pas de pixel espion", "jamais écrite sur le disque", "RGPD"]:
        assert normalise(claim) in text, claim
