"""What the theme needs that Jinja and Pelican lack: dates in the post's language and the
site's time zone, reading time, chronological neighbours and the JSON-LD of a post.

Dates, the time zone rule and the public URL rule live in blogcore; this module only
hands them to the templates:

    {{ article.date|local_date(article.lang) }}   « 17 octobre 2015 », « 17 October 2015 » for English
    {{ article.date|fr_date }}, |fr_month, |iso_date   in the settings' TIMEZONE
    {{ article|json_ld }}                          BlogPosting

Settings:
    THEME_EXTRAS_WORDS_PER_MINUTE: reading speed for the reading time (default 230).
"""
import json
import logging
import math
import re
from html import unescape

from pelican import signals
from pelican.contents import Article

from blogcore.dates import fr_date, fr_month, iso_date, local_date, site_zone
from blogcore.language import is_french, lang_of
from blogcore.urls import public_url

logger = logging.getLogger(__name__)

DEFAULTS = {"THEME_EXTRAS_WORDS_PER_MINUTE": 230}
TAG = re.compile(r"<[^>]+>")


def words(html: str) -> int:
    """Number of words a reader reads in an HTML fragment."""
    return len(unescape(TAG.sub(" ", html)).split())


def reading_minutes(html: str, per_minute: int) -> int:
    """Whole minutes, at least one."""
    return max(1, math.ceil(words(html) / per_minute))


def json_ld(article, settings) -> str:
    """BlogPosting as JSON, safe inside <script type="application/ld+json"> ("</" escaped)."""
    public, zone = public_url(settings), site_zone(settings)
    url = f"{public}/{article.url}"
    lang = lang_of(article, settings)
    data = {
        "@context": "https://schema.org",
        "@type": "BlogPosting",
        "headline": unescape(TAG.sub("", article.title)),
        "datePublished": iso_date(article.date, zone),
        "dateModified": iso_date(getattr(article, "modified", None) or article.date, zone),
        "author": [{"@type": "Person", "name": a.name, "url": f"{public}/{a.url}"} for a in article.authors],
        "description": unescape(TAG.sub("", article.summary)).strip(),
        "mainEntityOfPage": {"@type": "WebPage", "@id": url},
        "url": url,
        "inLanguage": "fr-FR" if is_french(lang) else lang,
        "publisher": {"@type": "Organization", "name": settings.get("SITENAME", ""), "url": f"{public}/"},
    }
    if getattr(article, "category", None):
        data["articleSection"] = article.category.name
    if getattr(article, "tags", None):
        data["keywords"] = [tag.name for tag in article.tags]
    text = json.dumps(data, ensure_ascii=False, indent=None)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def add_filters(generator):
    """generator_init: every generator has its own Jinja env, so each gets the filters."""
    settings = {**DEFAULTS, **generator.settings}
    zone = site_zone(settings)
    generator.env.filters.update({
        "fr_date": lambda date, year=True: fr_date(date, zone, year),
        "local_date": lambda date, lang, year=True: local_date(date, lang, zone, year),
        "fr_month": lambda date: fr_month(date, zone),
        "iso_date": lambda date: iso_date(date, zone),
        "json_ld": lambda article: json_ld(article, settings),
    })


def check_settings(pelican):
    """initialized: merge the defaults and report a bad value once, before any post is read.

    The templates' PUBLIC_URL becomes the resolved public URL (blogcore.urls: PUBLIC_URL,
    else SITEURL, no trailing slash), so canonical and Open Graph links follow the one rule.
    """
    if public_url(pelican.settings):  # (left undefined when there is none: the templates then skip canonical links)
        pelican.settings["PUBLIC_URL"] = public_url(pelican.settings)
    key = "THEME_EXTRAS_WORDS_PER_MINUTE"
    value = pelican.settings.get(key, DEFAULTS[key])
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        logger.error("%s must be a positive integer, not %r; using %s", key, value, DEFAULTS[key])
        value = DEFAULTS[key]
    pelican.settings[key] = value


def add_reading_time(content):
    """content_object_init: computed once per post, before any template loops over it."""
    if isinstance(content, Article):
        per_minute = content.settings.get("THEME_EXTRAS_WORDS_PER_MINUTE", DEFAULTS["THEME_EXTRAS_WORDS_PER_MINUTE"])
        content.reading_time = reading_minutes(content._content or "", per_minute)


def link_neighbours(generator):
    """article_generator_finalized: older/newer post by date, once the full list is known."""
    ordered = sorted(generator.articles, key=lambda a: a.date)
    for index, article in enumerate(ordered):
        article.older = ordered[index - 1] if index > 0 else None
        article.newer = ordered[index + 1] if index + 1 < len(ordered) else None


def register():
    signals.initialized.connect(check_settings)
    signals.generator_init.connect(add_filters)
    signals.content_object_init.connect(add_reading_time)
    signals.article_generator_finalized.connect(link_neighbours)
