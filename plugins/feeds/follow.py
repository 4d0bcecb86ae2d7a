"""« Suivre ce fil »: one plain HTML page per feed scope (the whole blog, each category).

A feed is for feed readers; a person who clicks « S’abonner » gets this page instead: what
a feed is, the feeds' addresses to copy (Atom, RSS, JSON Feed), the feed's entries and the
site's signup form. It is rendered from the theme's `suivre.html` with Pelican's writer,
like a category page, so it needs neither JavaScript nor XSLT, which browsers are dropping.

The template gets `follow`: title, subtitle, scope, `feeds` (label, mime, absolute URL,
root-relative href) and `entries` (the posts the feed holds, newest first); and
`category` on a category's page, so its <head> announces that category's feeds too.
"""
import logging
from collections import namedtuple

from pelican.generators import PelicanTemplateNotFound

from blogcore.urls import public_url

logger = logging.getLogger(__name__)

TEMPLATE = "suivre"
Link = namedtuple("Link", "label mime url href")


def links(settings: dict, feeds) -> list:
    """The feeds of the page (plugins.feeds.Feed), each with its absolute URL to copy."""
    base, site = public_url(settings), settings.get("SITEURL", "")
    return [Link(feed.label.removeprefix("fil "), feed.mime, base + feed.href.removeprefix(site), feed.href)
            for feed in feeds]


def write_pages(generator, writer, pages):
    """pages: (save_as, scope, category or None, title, subtitle, feeds, entries) for each page to write."""
    if not pages:
        return
    try:
        template = generator.get_template(TEMPLATE)
    except PelicanTemplateNotFound:
        logger.warning("feeds: the theme has no %s.html template; the « Suivre ce fil » pages are not written "
                       "(set FEEDS_PAGE_SAVE_AS and FEEDS_CATEGORY_PAGE_SAVE_AS to \"\" to say so)", TEMPLATE)
        return
    settings = generator.settings
    for save_as, scope, category, title, subtitle, feeds, entries in pages:
        follow = {"title": title, "subtitle": subtitle, "scope": scope, "feeds": links(settings, feeds),
                  "entries": list(entries)}
        extra = {"category": category} if category is not None else {}
        writer.write_file(save_as, template, generator.context, relative_urls=settings["RELATIVE_URLS"],
                          follow=follow, **extra)
