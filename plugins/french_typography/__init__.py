"""French typography on every post and page: titles, summaries and bodies.

The rules live in `blogcore.typography` (pure functions, also used by the newsletter);
this module only decides what they apply to: French posts and pages only (their `Lang`,
else DEFAULT_LANG; an English post keeps its own spacing). Titles get `fix_text`, bodies and
summaries (HTML) get `fix_html`, and SITENAME and SITESUBTITLE get `fix_text`,
so pages, feeds, <title>, Open Graph, JSON-LD and mails all read the same text.
Templates get a `french_typography` Jinja filter for their own French strings, and
a `striptags` that keeps no-break spaces: Jinja's own splits on every Unicode space
and would turn each U+202F of a title or summary back into a breakable space.

Settings:
    FRENCH_TYPOGRAPHY: True (default) applies the rules; False turns them off.

Per post or page, in the metadata header (the post's choice wins over the setting):
    Typographie: non     (or Typography: off; also no, false, 0)
    Typographie: oui     (or on, yes, true, 1) applies them when the setting is False
"""
import logging

from markupsafe import Markup
from pelican import signals
from pelican.contents import Article, Page

from blogcore.language import is_french, lang_of
from blogcore.typography import fix_html, fix_text

logger = logging.getLogger(__name__)

DEFAULTS = {"FRENCH_TYPOGRAPHY": True}
SITE_TEXTS = ("SITENAME", "SITESUBTITLE")
METADATA_KEYS = ("typographie", "typography")
ON = {"oui", "on", "yes", "true", "1"}
OFF = {"non", "off", "no", "false", "0"}


def check_settings(pelican):
    """Merge the default, report a bad value once, and fix the site's own name and subtitle."""
    settings = pelican.settings
    value = settings.get("FRENCH_TYPOGRAPHY", DEFAULTS["FRENCH_TYPOGRAPHY"])
    if not isinstance(value, bool):
        logger.warning("FRENCH_TYPOGRAPHY must be True or False, got %r: using True", value)
        value = True
    settings["FRENCH_TYPOGRAPHY"] = value
    if value and is_french(settings.get("DEFAULT_LANG")):  # the site's own texts are in its language
        for key in SITE_TEXTS:
            if isinstance(settings.get(key), str):
                settings[key] = fix_text(settings[key])


def wanted(content) -> bool:
    """False for a post that is not French; else its `Typographie:` metadata, else FRENCH_TYPOGRAPHY."""
    if not is_french(lang_of(content, content.settings)):
        return False
    for key in METADATA_KEYS:
        value = content.metadata.get(key)
        if value is None:
            continue
        choice = str(value).strip().lower()
        if choice in ON | OFF:
            return choice in ON
        logger.warning("%s: %s: %r is neither oui nor non: using the site setting",
                       content.source_path, key.capitalize(), value)
    return content.settings.get("FRENCH_TYPOGRAPHY", True)


def apply(content):
    """Rewrite the title, the body and the summary metadata of one post or page, in place."""
    if not isinstance(content, (Article, Page)) or not wanted(content):
        return
    if isinstance(getattr(content, "title", None), str):
        content.title = fix_text(content.title)
        content.metadata["title"] = content.title
    if content._content:
        # A summary computed later from the content inherits the fix.
        content._content = fix_html(content._content)
    if "summary" in content.metadata:
        content.metadata["summary"] = fix_html(content.metadata["summary"])
        content._summary = content.metadata["summary"]


def striptags(value) -> str:
    """Jinja's striptags, but U+00A0 and U+202F survive: as entities they escape the collapsing."""
    raw = str(value)
    text = raw.replace("\u00a0", "&#160;").replace("\u202f", "&#8239;")
    if "<" not in raw and "&" not in raw:  # a plain title (most calls): only the spaces to collapse
        return " ".join(text.split()).replace("&#160;", "\u00a0").replace("&#8239;", "\u202f")
    return Markup(text).striptags()


def add_filters(generator):
    """`{{ "Lire la suite :"|french_typography }}`, and a striptags that keeps the fixed spaces."""
    if getattr(generator, "env", None) is not None:
        generator.env.filters["french_typography"] = fix_html
        generator.env.filters["striptags"] = striptags


def register():
    # initialized: before any generator copies the settings into its context.
    signals.initialized.connect(check_settings)
    # content_object_init: once per post or page, right after it is read and before any
    # generator, feed, sitemap or mail plugin sees it; the lazily computed summary and
    # every later reader of .title/.content get the fixed text.
    signals.content_object_init.connect(apply)
    # generator_init: where Jinja filters are added (after Pelican's own and JINJA_FILTERS).
    signals.generator_init.connect(add_filters)
