"""Share cards: the picture a link to a post shows on Mastodon, LinkedIn or in a messaging app.

Every published post (hidden ones and translations too) gets a 1200×630 picture in
SHARE_CARDS_FOLDER of the output, named after its slug (a hidden post's after its digest, so that
no file name gives its address away), and `article.share_card`, which the
theme's head turns into og:image (absolute URL, width, height, type, French alt text) and
twitter:card = summary_large_image:

- with `Image: images/photo.jpg` in its header (a file under PATH; a leading `/` or
  `{static}` is allowed), that picture cropped to fill the card, centred; a JPEG stays a JPEG,
  anything else becomes a PNG; its EXIF (GPS position included) and other metadata are dropped.
  A missing or unreadable file stops the build, naming the post's file and line;
- without it, a card drawn from the post's title (already set in French typography), its
  rubrique and SITENAME, in the theme's colours, with the fonts committed in the theme
  (theme/fonts: Inter, SIL Open Font License, see theme/fonts/OFL.txt).

Cards are kept under CACHE_PATH (ShareCards/, one folder per content folder), named by a digest
of everything they are made from: the drawing code, Pillow and FreeType, the fonts, the colours,
the title, rubrique and blog name, or the source picture's bytes. A warm build makes no card
that did not change: the output gets a hard link to the kept file (a copy across disks), so
sitebuild sees the live file unchanged and leaves it, time and all. Kept cards unused for
7 days (store.py) are removed. CACHE_CONTENT = False keeps none; LOAD_CONTENT_CACHE = False
(`--ignore-cache`) makes every card again.

Settings:
    SHARE_CARDS_FOLDER: output folder of the cards (default "cartes").
    SHARE_CARDS_TITLE_FONT, SHARE_CARDS_TEXT_FONT: font files, relative to THEME or absolute.
    SHARE_CARDS_COLOURS: {"background", "text", "accent", "rule"} as #rrggbb; default None: read
        from the theme's stylesheet (SHARE_CARDS_STYLESHEET, relative to THEME), whose :root
        defines --bg, --fg, --accent and --line.
    SHARE_CARDS_WORKERS: processes that draw the cards a build lacks (0, default: one per core).
"""
import hashlib
import html
import logging
import os
import re
import shutil
from urllib.parse import quote

import PIL
from PIL import ImageColor, features
from pelican import signals
from pelican.generators import Generator

from blogcore.header import read_header
from blogcore.urls import problem, public_url

from . import drawing
from .making import make_all
from .store import Store

logger = logging.getLogger(__name__)

DEFAULTS = {
    "SHARE_CARDS_FOLDER": "cartes",
    "SHARE_CARDS_TITLE_FONT": "fonts/Inter-Bold.otf",
    "SHARE_CARDS_TEXT_FONT": "fonts/Inter-Regular.otf",
    "SHARE_CARDS_COLOURS": None,
    "SHARE_CARDS_STYLESHEET": "static/css/site.css",
    "SHARE_CARDS_WORKERS": 0,
}
# The theme's custom properties each colour of a card comes from, and égoBlog's light palette if they are missing.
CSS_PROPERTIES = {"background": "--bg", "text": "--fg", "accent": "--accent", "rule": "--line"}
FALLBACK_COLOURS = {"background": "#fdfcf9", "text": "#1d1b18", "accent": "#8a2b0e", "rule": "#ddd6cc"}
TYPES = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png")}
TAG = re.compile(r"<[^>]+>")


class ShareCardError(SystemExit):
    """A build-stopping problem (a post's Image:, a setting), with a message meant for the author."""


def stop(problems: list[str]):
    raise ShareCardError("Build stopped, nothing was published:\n  " + "\n  ".join(problems))


def theme_file(settings, key: str) -> str:
    return os.path.join(settings.get("THEME", ""), settings[key])


def css_colours(path: str) -> dict | None:
    """The card colours from the :root block of a stylesheet, or None if it does not define them all."""
    try:
        with open(path, encoding="utf-8") as file:
            root = re.search(r":root\s*\{([^}]*)\}", file.read())
    except OSError:
        return None
    found = dict(re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", root[1])) if root else {}
    colours = {name: found.get(prop, "").strip() for name, prop in CSS_PROPERTIES.items()}
    return colours if all(colours.values()) else None


def card_style(settings) -> tuple[drawing.Style | None, list[str]]:
    """The fonts and colours of the cards, or the problems with the settings that give them."""
    problems = []
    fonts = {}
    for key in ("SHARE_CARDS_TITLE_FONT", "SHARE_CARDS_TEXT_FONT"):
        fonts[key] = theme_file(settings, key)
        if not os.path.isfile(fonts[key]):
            problems.append(f"{key}: no font file at {fonts[key]}")
    colours = settings["SHARE_CARDS_COLOURS"]
    if colours is None:
        stylesheet = theme_file(settings, "SHARE_CARDS_STYLESHEET")
        colours = css_colours(stylesheet)
        if colours is None:
            logger.warning("share_cards: %s does not define %s in :root; the cards use égoBlog's colours",
                           stylesheet, ", ".join(CSS_PROPERTIES.values()))
            colours = FALLBACK_COLOURS
    elif not isinstance(colours, dict) or set(colours) != set(CSS_PROPERTIES):
        problems.append(f"SHARE_CARDS_COLOURS must be a dict with the keys {', '.join(CSS_PROPERTIES)}, "
                        f"not {colours!r}")
        colours = FALLBACK_COLOURS
    for name, value in colours.items():
        try:
            ImageColor.getrgb(value)
        except (ValueError, AttributeError):
            problems.append(f"colour {name} of the share cards: {value!r} is not a colour")
    if problems:
        return None, problems
    return drawing.Style(fonts["SHARE_CARDS_TITLE_FONT"], fonts["SHARE_CARDS_TEXT_FONT"], **colours), []


def code_digest(style: drawing.Style) -> bytes:
    """What every card depends on besides its own text: the drawing code, Pillow, FreeType, fonts, colours."""
    digest = hashlib.sha256()
    for path in (drawing.__file__, style.title_font, style.text_font):
        with open(path, "rb") as file:
            digest.update(hashlib.sha256(file.read()).digest())
    digest.update(repr((PIL.__version__, features.version("freetype2"), style)).encode())
    return digest.digest()


def plain(text: str) -> str:
    """A title as a reader sees it: no tags, no entities."""
    return html.unescape(TAG.sub("", str(text))).strip()


def image_source(value: str, root: str) -> str:
    """The file an Image: value names under root (PATH): `images/a.jpg`, `/images/a.jpg`, `{static}/images/a.jpg`."""
    relative = re.sub(r"^\{(static|attach|filename)\}", "", value.strip()).lstrip("/")
    return os.path.normpath(os.path.join(root, relative))


def image_line(article) -> int:
    """The line of the Image: header in the post's file (1 when it came from elsewhere)."""
    try:
        header = read_header(article.source_path)
    except (OSError, UnicodeDecodeError):
        return 1
    return next((entry.line for entry in header.entries if entry.name == "image"), 1)


def read_picture(path: str, root: str) -> tuple[bytes, str]:
    """The bytes of a post's picture and its kind ("JPEG" or "PNG" once made); ValueError saying why not."""
    if os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) != os.path.abspath(root):
        raise ValueError("outside the content folder")
    if not os.path.isfile(path):
        raise ValueError(f"no such file ({os.path.relpath(path)})")
    try:
        with open(path, "rb") as file:
            data = file.read()
        kind = drawing.picture_kind(data)
    except OSError as error:
        raise ValueError(f"cannot be read as a picture ({os.path.relpath(path)}: {error})") from None
    return data, kind


def published(context):
    """Every post with a page of its own: listed and hidden ones, and their translations, once each."""
    seen = set()
    for article in [*context.get("articles", []), *context.get("hidden_articles", [])]:
        for post in [article, *getattr(article, "translations", [])]:
            if id(post) not in seen and getattr(post, "status", "published") in ("published", "hidden"):
                seen.add(id(post))
                yield post


class ShareCardsGenerator(Generator):
    """Plans, makes (context phase, before anything is written) and places (output phase) the cards."""

    def generate_context(self):
        settings = self.settings = {**DEFAULTS, **self.settings}
        style, problems = card_style(settings)
        if problems:
            stop(problems)
        self.store = Store(settings)
        base = public_url(settings)
        if problem(base):
            logger.error("share_cards: %s; no og:image", problem(base))
            return
        root = os.path.abspath(settings["PATH"])
        common = code_digest(style)
        sitename = plain(settings.get("SITENAME", ""))
        folder = settings["SHARE_CARDS_FOLDER"].strip("/")
        self.placed, jobs, problems, names = {}, {}, [], {}
        for article in published(self.context):
            title = plain(article.title)
            value = article.metadata.get("image")
            if value:
                where = f"{os.path.relpath(article.source_path)}:{image_line(article)}: Image {value!r}"
                source = image_source(str(value), root)
                try:
                    data, kind = read_picture(source, root)
                except ValueError as why:
                    problems.append(f"{where}: {why}")
                    continue
                key = digest(common, b"picture", data)
                job = ("picture", source, where)
                alt = f"Illustration du billet\u202f: {title}"
            else:
                kind = "PNG"
                rubrique = plain(getattr(article, "category", "") or "")
                key = digest(common, b"card", title.encode(), rubrique.encode(), sitename.encode())
                job = ("card", title, rubrique, sitename, style)
                alt = f"Carte de partage du billet\u202f: {title} ({rubrique}, {sitename})"
            extension, mime = TYPES[kind]
            lang = "" if getattr(article, "in_default_lang", True) else f"-{article.lang}"
            # A hidden post is reachable by its address only: its card's name must not list its slug.
            name = f"{folder}/{key if article.status == 'hidden' else article.slug + lang}.{extension}"
            if name in names:
                problems.append(f"{os.path.relpath(article.source_path)}:1: its share card {name} would replace "
                                f"that of {os.path.relpath(names[name])}")
                continue
            names[name] = article.source_path
            entry = f"{key}.{extension}"
            if not self.store.has(entry):
                jobs[entry] = job
            self.placed[name] = (entry, job)
            article.share_card = {"url": f"{base}/{quote(name)}", "type": mime, "width": drawing.SIZE[0],
                                  "height": drawing.SIZE[1], "alt": alt}
        problems += make_all(jobs, self.store.path, settings["SHARE_CARDS_WORKERS"])
        if problems:
            stop(problems)
        logger.info("share_cards: cards made: %d, kept from earlier builds: %d", len(jobs),
                    len(self.placed) - len(jobs))

    def generate_output(self, writer):
        """Each card into the output: a hard link to the kept file, or a copy where links cannot go."""
        placed = getattr(self, "placed", {})
        for name, (entry, job) in sorted(placed.items()):
            target = os.path.join(self.output_path, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = os.path.join(self.store.path, entry)
            if os.path.lexists(target):
                os.unlink(target)
            if not os.path.isfile(source):  # removed meanwhile by another build's clean-up
                make_all({entry: job}, self.store.path, 1)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        if hasattr(self, "store"):
            self.store.finish({entry for entry, _ in placed.values()})


def digest(common: bytes, *parts: bytes) -> str:
    value = hashlib.sha256(common)
    for part in parts:
        value.update(len(part).to_bytes(8, "big") + part)
    return value.hexdigest()[:32]


def get_generators(pelican):
    """get_generators: plugin generators run after the articles' and pages', so every post is read and
    typographied when generate_context plans the cards; Pelican has already emptied the output folder."""
    return ShareCardsGenerator


def register():
    signals.get_generators.connect(get_generators)
