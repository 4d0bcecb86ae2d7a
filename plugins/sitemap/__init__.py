"""sitemap.xml and robots.txt, with absolute URLs from the public URL (blogcore.urls).

Listed: home, archives, categories and tags lists, each category and tag, every
post and every public page. Left out: hidden pages (404), the pages of the
signup flow (reached from mail, not from search), pagination pages.

Settings:
    SITEMAP_EXCLUDE_TEMPLATES: page templates never listed (default: newsletter, 404).
    SITEMAP_EXCLUDE_PREFIXES: URL prefixes never listed (default: the newsletter pages).
"""
import logging
import os
from urllib.parse import quote
from xml.sax.saxutils import escape

from pelican import signals
from pelican.generators import Generator

from blogcore.urls import problem, public_url

logger = logging.getLogger(__name__)

DEFAULTS = {
    "SITEMAP_EXCLUDE_TEMPLATES": ("newsletter", "404"),
    "SITEMAP_EXCLUDE_PREFIXES": ("newsletter",),
}


def url_of(save_as: str) -> str:
    """The URL a file is served at: 'archives/index.html' is 'archives/'."""
    return save_as[:-len("index.html")] if save_as.endswith("index.html") else save_as


def latest(posts):
    """The most recent change among posts: the lastmod of a page listing them."""
    return max((getattr(p, "modified", None) or p.date for p in posts), default=None)


def listed(page, settings) -> bool:
    """Whether a public page belongs in the sitemap."""
    template = getattr(page, "template", "page")
    return (template not in settings["SITEMAP_EXCLUDE_TEMPLATES"]
            and not page.url.startswith(tuple(settings["SITEMAP_EXCLUDE_PREFIXES"])))


def entries(context, settings):
    """(path, lastmod or None) for every URL worth listing, in a stable order."""
    articles = context.get("articles", [])
    yield "", latest(articles)
    for key in ("ARCHIVES_SAVE_AS", "CATEGORIES_SAVE_AS", "TAGS_SAVE_AS"):
        if settings.get(key):
            yield url_of(settings[key]), latest(articles)
    for article in sorted(articles, key=lambda a: a.date, reverse=True):
        yield article.url, getattr(article, "modified", None) or article.date
    for page in sorted(context.get("pages", []), key=lambda p: p.url):
        if listed(page, settings):
            yield page.url, getattr(page, "modified", None) or getattr(page, "date", None)
    for category, posts in sorted(context.get("categories", []), key=lambda c: c[0].url):
        yield category.url, latest(posts)
    for tag, posts in sorted(context.get("tags", []), key=lambda t: t[0].url):
        yield tag.url, latest(posts)


def sitemap_xml(base: str, items) -> str:
    """The sitemap document (sitemaps.org 0.9)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    for path, lastmod in items:
        lines.append(f"  <url><loc>{escape(base + '/' + quote(path, safe='/:'))}</loc>"
                     + (f"<lastmod>{lastmod.isoformat()}</lastmod>" if lastmod else "") + "</url>")
    lines.append("</urlset>")
    return "\n".join(lines) + "\n"


def robots_txt(base: str, settings) -> str:
    """Everything may be crawled but the signup service; the sitemap is announced."""
    lines = ["User-agent: *"]
    service = settings.get("NEWSLETTER_URL", "")
    if service.startswith("/"):
        lines.append(f"Disallow: {service.rstrip('/')}/")
    else:
        lines.append("Disallow:")
    return "\n".join(lines + ["", f"Sitemap: {base}/sitemap.xml", ""])


class SitemapGenerator(Generator):
    """Writes after every other generator has filled the context."""

    def generate_output(self, writer):
        settings = {**DEFAULTS, **self.settings}
        base = public_url(settings)
        if problem(base):
            logger.error("sitemap: %s; sitemap.xml and robots.txt not written", problem(base))
            return
        for name, text in (("sitemap.xml", sitemap_xml(base, entries(self.context, settings))),
                           ("robots.txt", robots_txt(base, settings))):
            path = os.path.join(self.output_path, name)
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
            logger.info("Writing %s", path)


def get_generators(pelican):
    """get_generators: a generator's generate_output runs once all contexts are complete."""
    return SitemapGenerator


def register():
    signals.get_generators.connect(get_generators)
