"""What the theme needs that Jinja and Pelican lack: French dates, reading time,
chronological neighbours, and the JSON-LD of a post.

Dates are formatted by hand, never through the system locale, so a build on any
machine reads « 17 octobre 2015 ».

Settings:
    THEME_EXTRAS_WORDS_PER_MINUTE: reading speed for the reading time (default 230).
"""
import json
import logging
import math
import re
from datetime import datetime
from html import unescape
from zoneinfo import ZoneInfo

from pelican import signals
from pelican.contents import Article

logger = logging.getLogger(__name__)

DEFAULTS = {"THEME_EXTRAS_WORDS_PER_MINUTE": 230}
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
PARIS = ZoneInfo("Europe/Paris")
TAG = re.compile(r"<[^>]+>")


def localized(date: datetime) -> datetime:
    """The date in Paris time; a naive date is taken as already Paris time."""
    return date.replace(tzinfo=PARIS) if date.tzinfo is None else date.astimezone(PARIS)


def fr_date(date: datetime, year: bool = True) -> str:
    """« 17 octobre 2015 », « 1er janvier 2017 »; without the year for archives grouped by year."""
    date = localized(date)
    day = "1er" if date.day == 1 else str(date.day)
    text = f"{day} {MONTHS[date.month - 1]}"
    return f"{text} {date.year}" if year else text


def fr_month(date: datetime) -> str:
    """« octobre 2015 »."""
    date = localized(date)
    return f"{MONTHS[date.month - 1]} {date.year}"


def iso_date(date: datetime) -> str:
    """ISO 8601 with the Paris offset, for <time datetime> and structured data."""
    return localized(date).isoformat()


def words(html: str) -> int:
    """Number of words a reader reads in an HTML fragment."""
    return len(unescape(TAG.sub(" ", html)).split())


def reading_minutes(html: str, per_minute: int) -> int:
    """Whole minutes, at least one."""
    return max(1, math.ceil(words(html) / per_minute))


def json_ld(article, settings) -> str:
    """BlogPosting as JSON, safe inside <script type="application/ld+json"> ("</" escaped)."""
    public = settings.get("PUBLIC_URL", "").rstrip("/")
    url = f"{public}/{article.url}"
    data = {
        "@context": "https://schema.org",
        "@type": "BlogPosting",
        "headline": unescape(TAG.sub("", article.title)),
        "datePublished": iso_date(article.date),
        "dateModified": iso_date(getattr(article, "modified", None) or article.date),
        "author": [{"@type": "Person", "name": a.name, "url": f"{public}/{a.url}"} for a in article.authors],
        "description": unescape(TAG.sub("", article.summary)).strip(),
        "mainEntityOfPage": {"@type": "WebPage", "@id": url},
        "url": url,
        "inLanguage": "fr-FR",
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
    generator.env.filters.update({
        "fr_date": fr_date,
        "fr_month": fr_month,
        "iso_date": iso_date,
        "json_ld": lambda article: json_ld(article, settings),
    })


def check_settings(pelican):
    """initialized: merge the defaults and report a bad value once, before any post is read."""
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
