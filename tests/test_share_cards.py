"""plugins/share_cards: every post's page announces a 1200×630 picture that exists, is what it says, and is
only made again when what it shows changes."""
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import html as lxml_html
from PIL import Image, ImageChops, ImageFont

from plugins.share_cards import drawing
from tests.conftest import ROOT

PUBLIC = "https://egoblog.example"
THEME = ROOT / "theme"
STYLE = drawing.Style(str(THEME / "fonts" / "Inter-Bold.otf"), str(THEME / "fonts" / "Inter-Regular.otf"),
                      "#fdfcf9", "#1d1b18", "#8a2b0e", "#ddd6cc")
POSTS = ROOT / "content" / "posts"


def sitebuild(content: Path, output: Path, cache: Path, check=True):
    """`make build` (staged by sitebuild) of a content folder, with its own cache; INFO logs on."""
    result = subprocess.run(
        [sys.executable, "-m", "sitebuild", "--verbose", "--content", str(content), "--output", str(output),
         "-e", f'CACHE_PATH="{cache}"', f'MAIL_POSTS_PATH="{output.parent / "mail"}"', f'PUBLIC_URL="{PUBLIC}"'],
        cwd=ROOT, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
    return result


def made_count(result) -> tuple[int, int]:
    """(made, kept) from the plugin's log line (Rich may wrap it)."""
    text = " ".join(result.stdout.split() + result.stderr.split())
    found = re.search(r"cards made: (\d+), kept from .*?builds: (\d+)", text)
    assert found, text[-2000:]
    return int(found[1]), int(found[2])


def head_of(page: Path) -> dict:
    """{property or name: [values]} of the page's <meta> tags."""
    tree = lxml_html.fromstring(page.read_bytes())
    found = {}
    for meta in tree.xpath("//head/meta[@property or @name]"):
        found.setdefault(meta.get("property") or meta.get("name"), []).append(meta.get("content"))
    return found


def post_pages(output: Path) -> list[Path]:
    return [page for page in output.rglob("index.html") if head_of(page).get("og:type") == ["article"]]


def file_of(url: str, output: Path) -> Path:
    assert url.startswith(PUBLIC + "/"), url
    return output / url[len(PUBLIC) + 1:]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    work = tmp_path_factory.mktemp("cards")
    content = work / "content"
    shutil.copytree(ROOT / "content", content)
    sitebuild(content, work / "output", work / "cache")
    return work / "output"


# --- what a share preview reads --------------------------------------------------------------------

def test_every_post_page_has_a_card_that_exists_with_the_declared_size_and_type(seeds):
    pages = post_pages(seeds)
    assert len(pages) == len(list(POSTS.glob("*.md"))) == 5
    for page in pages:
        meta = head_of(page)
        for key in ("og:image", "og:image:type", "og:image:width", "og:image:height", "og:image:alt", "og:title",
                    "og:description", "og:url", "og:type", "og:site_name", "og:locale", "article:published_time",
                    "twitter:card", "twitter:image"):
            assert len(meta.get(key, [])) == 1, f"{page}: {key} {meta.get(key)}"  # once: nothing doubled
        assert meta["twitter:card"] == ["summary_large_image"]
        assert meta["og:locale"] == ["fr_FR"] and meta["og:site_name"] == ["égoBlog"]
        assert meta["og:url"][0].startswith(PUBLIC + "/20")
        url = meta["og:image"][0]
        assert meta["twitter:image"] == [url]
        assert (meta["og:image:width"], meta["og:image:height"]) == (["1200"], ["630"])
        assert meta["og:image:alt"][0].startswith("Carte de partage du billet\u202f: ")
        with Image.open(file_of(url, seeds)) as card:
            assert card.size == (1200, 630)
            assert Image.MIME[card.format] == meta["og:image:type"][0] == "image/png"


def test_card_is_in_the_theme_colours(seeds):
    css = (THEME / "static" / "css" / "site.css").read_text(encoding="utf-8")
    root = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-f]{6})", css.split("}", 1)[0]))
    with Image.open(seeds / "cartes" / "plan-paradise.png") as card:
        rgb = card.convert("RGB")
    hexa = "#{:02x}{:02x}{:02x}".format
    assert hexa(*rgb.getpixel((600, 20))) == root["--bg"]
    assert hexa(*rgb.getpixel((5, 300))) == root["--accent"]
    colours = {hexa(*colour) for _, colour in rgb.getcolors(1 << 16)}
    assert root["--fg"] in colours and root["--line"] in colours


def test_title_is_drawn_in_french_typography(seeds):
    """The seed titles carry U+202F inside « » (french_typography): the card's text is that title."""
    title = head_of(seeds / "2015" / "10" / "plan-paradise" / "index.html")["og:title"][0]
    assert "«\u202fParadise\u202f»" in title
    size, lines = drawing.layout_title(title, STYLE.title_font)
    assert any("«\u202fParadise\u202f»" in line for line in lines)  # never split at a no-break space


@pytest.mark.parametrize("char", ["\u202f", "\u00a0"])
def test_font_has_the_french_spaces(char):
    """A no-break space is a blank of its own width in the committed font, not a missing-glyph box."""
    face = ImageFont.truetype(STYLE.title_font, 100)
    assert face.getmask(char).getbbox() is None
    assert 0 < face.getlength(char) < face.getlength("n")
    assert face.getlength("\u202f") < face.getlength("\u00a0")  # the narrow one is narrower


@pytest.mark.parametrize("char", ["’", "«", "»", "…", "œ", "É", "ç"])
def test_font_has_the_french_signs(char):
    face = ImageFont.truetype(STYLE.title_font, 100)
    missing = face.getmask("\U000f0000")  # a private-use code point: the font's missing-glyph box
    mask = face.getmask(char)
    assert mask.getbbox() is not None
    assert bytes(mask) != bytes(missing)


# --- layout --------------------------------------------------------------------------------------------

LONG = ("Pourquoi me souhaiter un anniversaire que vous ne connaissez pas\u202f? Aimer ses clients exige une "
        "forme de courage qu’on ne trouve guère sur les réseaux sociaux\u202f: pas besoin de CRM, seulement de "
        "sincérité, de constance et d’un peu d’humour «\u202fà l’ancienne\u202f»")


def ink_box(png: bytes, left=drawing.BAR):
    """Bounding box of everything drawn on the card right of the accent band (background removed)."""
    with Image.open(io.BytesIO(png)) as card:
        rgb = card.convert("RGB")
    background = Image.new("RGB", rgb.size, STYLE.background)
    box = ImageChops.difference(rgb, background).crop((left, 0, *rgb.size)).getbbox()
    return (box[0] + left, box[1], box[2] + left, box[3])


@pytest.mark.parametrize("title, wrapped, ellipsis", [
    ("Fidèle… par anticipation", False, False),
    (LONG, True, False),
    ((LONG + " ") * 4, True, True),
    ("Anticonstitutionnellement" * 4, False, False),  # one word wider than the card: smaller, never cut
])
def test_title_wraps_shrinks_and_fits_inside_the_card(title, wrapped, ellipsis):
    size, lines = drawing.layout_title(title, STYLE.title_font)
    face = drawing.font(STYLE.title_font, size)
    left, top, right, bottom = drawing.TITLE_BOX
    assert all(face.getlength(line) <= right - left for line in lines)
    assert (len(lines) > 1) == wrapped
    assert size < drawing.TITLE_SIZES[0] or not wrapped or len(lines) <= 3
    words = title.split(" ")
    shown = " ".join(lines)
    if ellipsis:
        assert shown.endswith("…") and not title.endswith("…")
        kept = shown[:-1].rstrip(" \u00a0\u202f,;:–-").split(" ")
        assert kept == words[:len(kept)]  # whole words, in order: no letter cut
    else:
        assert shown == " ".join(w for w in words if w)
    card = drawing.draw_card(title, "Humeurs Marketing", "égoBlog", STYLE)
    x0, y0, x1, y1 = ink_box(card)
    assert x0 >= drawing.MARGIN_X - 8 and x1 <= 1200 - drawing.MARGIN_X + 8, (x0, x1)
    assert y0 >= drawing.MARGIN_TOP - 12 and y1 <= 630 - drawing.MARGIN_BOTTOM + 16, (y0, y1)
    with Image.open(io.BytesIO(card)) as opened:  # the title itself stays in its box, between label and rule
        title_ink = ImageChops.difference(opened.convert("RGB"), Image.new("RGB", (1200, 630), STYLE.background)) \
            .crop((drawing.BAR, 130, 1200, drawing.RULE_Y - 1)).getbbox()
    assert title_ink[1] + 130 >= top - 4 and title_ink[3] + 130 <= bottom + 4


def test_same_inputs_same_bytes():
    """Deterministic PNG: the cache and the accelerator's byte-for-byte comparisons depend on it."""
    first = drawing.draw_card(LONG, "éthique.biz", "égoBlog", STYLE)
    assert drawing.draw_card(LONG, "éthique.biz", "égoBlog", STYLE) == first
    assert drawing.draw_card(LONG + "!", "éthique.biz", "égoBlog", STYLE) != first


# --- the post's own picture ---------------------------------------------------------------------------

def photo_with_gps(path: Path):
    """A 3000×1000 JPEG in three bands (red, green, blue) with EXIF: GPS position, camera serial, comment."""
    image = Image.new("RGB", (3000, 1000), (200, 30, 30))
    image.paste((30, 160, 60), (1000, 0, 2000, 1000))
    image.paste((30, 60, 200), (2000, 0, 3000, 1000))
    exif = Image.Exif()
    exif[0x010F] = "Appareil"  # Make
    exif[0xA431] = "SERIE-123456"  # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0)})
    image.save(path, "JPEG", exif=exif, comment=b"chez moi", quality=90)
    with Image.open(path) as check:
        assert check.getexif().get_ifd(0x8825), "the fixture has no GPS"


def add_header(post: Path, line: str) -> int:
    """Insert a header line after Title; returns its line number."""
    lines = post.read_text(encoding="utf-8").split("\n")
    lines.insert(1, line)
    post.write_text("\n".join(lines), encoding="utf-8")
    return 2


def test_post_image_becomes_a_centred_1200x630_jpeg_without_metadata(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    (content / "illustrations").mkdir()
    photo_with_gps(content / "illustrations" / "photo.jpg")
    add_header(content / "posts" / "2015-11-le-cr-aime.md", "Image: illustrations/photo.jpg")
    add_header(content / "posts" / "2017-08-le-like-abondant.md", "Status: hidden")
    output = tmp_path / "output"
    sitebuild(content, output, tmp_path / "cache")
    # a hidden post has its card too, under a name that does not give its address away
    hidden = head_of(output / "2017" / "08" / "le-like-abondant" / "index.html")["og:image"][0]
    assert "le-like-abondant" not in hidden
    with Image.open(file_of(hidden, output)) as card:
        assert card.size == (1200, 630)
    meta = head_of(output / "2015" / "11" / "le-cr-aime" / "index.html")
    assert meta["og:image"] == [f"{PUBLIC}/cartes/le-cr-aime.jpg"]
    assert meta["og:image:type"] == ["image/jpeg"]
    assert meta["og:image:alt"][0].startswith("Illustration du billet\u202f: Le CR")
    card = file_of(meta["og:image"][0], output)
    raw = card.read_bytes()
    with Image.open(card) as picture:
        assert picture.format == "JPEG" and picture.size == (1200, 630)
        assert not picture.getexif() and "exif" not in picture.info and "comment" not in picture.info
        # cover, centred: the source's middle third fills the centre, its outer thirds are cut at both edges
        colours = [picture.getpixel((x, 315)) for x in (10, 600, 1190)]
    assert b"Exif" not in raw and b"SERIE-123456" not in raw and b"chez moi" not in raw
    red, green, blue = colours
    assert red[0] > 150 > red[1] and green[1] > 120 > green[0] and blue[2] > 150 > blue[0], colours
    # the other posts keep their drawn card
    assert head_of(output / "2015" / "10" / "plan-paradise" / "index.html")["og:image:type"] == ["image/png"]


@pytest.mark.parametrize("make, reason", [
    (None, "no such file"),
    (lambda path: path.write_bytes(b"ceci n'est pas une image"), "cannot be read as a picture"),
])
def test_missing_or_unreadable_image_stops_the_build_naming_file_and_line(tmp_path, make, reason):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    (content / "illustrations").mkdir()
    if make:
        make(content / "illustrations" / "absente.jpg")
    post = content / "posts" / "2017-08-le-like-abondant.md"
    line = add_header(post, "Image: illustrations/absente.jpg")
    output = tmp_path / "output"
    output.mkdir()
    (output / "avant.html").write_text("le site d’avant", encoding="utf-8")
    result = sitebuild(content, output, tmp_path / "cache", check=False)
    assert result.returncode == 1
    assert re.search(rf"2017-08-le-like-abondant\.md:{line}: Image 'illustrations/absente\.jpg': {reason}",
                     result.stderr), result.stderr[-2000:]
    assert [p.name for p in output.iterdir()] == ["avant.html"]  # nothing published


# --- the cache -----------------------------------------------------------------------------------------

def identities(folder: Path) -> dict:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_warm_build_makes_no_card_and_a_title_edit_remakes_that_card_only(tmp_path):
    content, output, cache = tmp_path / "content", tmp_path / "output", tmp_path / "cache"
    shutil.copytree(ROOT / "content", content)
    assert made_count(sitebuild(content, output, cache)) == (5, 0)
    cold = identities(output / "cartes")
    before = {name: (output / "cartes" / name).read_bytes() for name in cold}
    assert made_count(sitebuild(content, output, cache)) == (0, 5)
    assert identities(output / "cartes") == cold  # not written again: same file, same time

    post = content / "posts" / "2009-08-infamie-du-fail.md"
    post.write_text(post.read_text(encoding="utf-8").replace("Title: L’infamie du #fail",
                                                             "Title: L’infamie du #fail, dix ans après"),
                    encoding="utf-8")
    assert made_count(sitebuild(content, output, cache)) == (1, 4)
    warm = identities(output / "cartes")
    changed = {name for name in cold if warm[name] != cold[name]}
    assert changed == {"infamie-du-fail.png"}
    assert (output / "cartes" / "infamie-du-fail.png").read_bytes() != before["infamie-du-fail.png"]
    meta = head_of(output / "2009" / "08" / "infamie-du-fail" / "index.html")
    assert "dix ans après" in meta["og:image:alt"][0]


# --- in a browser ----------------------------------------------------------------------------------------

@pytest.mark.browser
def test_share_preview_in_chromium_reads_the_card(browser, served_site, site):
    """What a preview bot reads: the og:/twitter: tags of the page's DOM; the picture they name loads at
    1200×630 with the declared type."""
    page = browser.new_page()
    try:
        page.goto(f"{served_site}/2017/01/fidele-par-anticipation/")
        tags = page.evaluate("""() => Object.fromEntries([...document.head.querySelectorAll(
            'meta[property^="og:"], meta[name^="twitter:"]')].map(m => [m.getAttribute('property')
            || m.getAttribute('name'), m.content]))""")
        assert tags["og:type"] == "article" and tags["twitter:card"] == "summary_large_image"
        assert tags["twitter:image"] == tags["og:image"]
        public = tags["og:url"].split("/2017/")[0]
        assert tags["og:image"].startswith(public + "/cartes/")
        local = served_site + tags["og:image"][len(public):]  # the site is served here, not at its public URL
        found = page.evaluate("""async (url) => {
            const response = await fetch(url);
            const image = new Image(); image.src = url; await image.decode();
            return [response.headers.get('content-type'), image.naturalWidth, image.naturalHeight]; }""", local)
        assert found == [tags["og:image:type"], int(tags["og:image:width"]), int(tags["og:image:height"])]
        assert found == ["image/png", 1200, 630]
    finally:
        page.close()
