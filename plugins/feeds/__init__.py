"""Every feed of the site, written with feedgen (Atom, RSS) and jsonfeed.py (JSON Feed 1.1):
whole site, each category, each tag; and a French page to follow each (follow.py).

Paths (relative to the output folder; a category and a tag of the same slug never
collide, and a feed's path depends only on its category or tag, never on a post):

    /atom.xml, /rss.xml, /feed.json                        the whole blog
    /categorie/{slug}/atom.xml, .../rss.xml, .../feed.json one category, beside its page
    /etiquette/{slug}/atom.xml                             one tag, beside its page
    /suivre/, /categorie/{slug}/suivre/                    « Suivre ce fil »: the pages the site links to

Entry ids never change when a post is edited, retitled or moved to another
category (pelican #1933: feed-to-email services resend edited posts):

    tag:{FEEDS_ID_AUTHORITY},{Date as YYYY-MM-DD in the site's TIMEZONE}:{slug}

A post's `Guid:` metadata, when present, is used as is instead; give one to a
published post before changing its Date or Slug. RSS carries the same value as
<guid isPermaLink="false">, JSON Feed as the item's id.

Content is the full post, with every relative href, src, srcset, poster and cite
made absolute against the post's own public URL (pelican #812, #1640). Output is
deterministic: no build time anywhere, `updated` is the newest entry's, ties in
order broken by slug, so the same content gives byte-identical feeds.

The feeds are plain, for feed readers: no xml-stylesheet instruction. Browsers are
dropping XSLT (Chromium 156 puts a red English banner over a page made by one), so a
reader who opens a feed link is sent to its « Suivre ce fil » page instead (follow.py),
which explains, lists the entries and shows the signup form in plain HTML.

Templates get `feeds_here()` (a Jinja global): the feeds for the page being
rendered (site feeds first, then the category's on a category or post page, the
tag's on a tag page), each with `mime`, `title`,
`label`, `href` (root-relative) and `scope` ("site", "category", "tag"); and
`follow_page(category=None)`: the root-relative URL of the site's (or that
category's) « Suivre ce fil » page, "" when turned off.

Settings:
    FEEDS_MAX_ITEMS: entries per feed (default FEED_MAX_ITEMS, else 20).
    FEEDS_ATOM_SAVE_AS, FEEDS_RSS_SAVE_AS, FEEDS_JSON_SAVE_AS: the site feeds ("" turns one off).
    FEEDS_CATEGORY_ATOM_SAVE_AS, FEEDS_CATEGORY_RSS_SAVE_AS, FEEDS_CATEGORY_JSON_SAVE_AS,
        FEEDS_TAG_ATOM_SAVE_AS: patterns with {slug} ("" turns one off).
    FEEDS_PAGE_SAVE_AS, FEEDS_CATEGORY_PAGE_SAVE_AS: the « Suivre ce fil » pages, ending in
        index.html (the site links to the folder); "" turns them off.
    FEEDS_ID_AUTHORITY: the domain in entry ids (default: the host of PUBLIC_URL).
        Pin it in production: changing it changes every id.
    FEEDS_CATEGORY_TITLE, FEEDS_TAG_TITLE: feed titles, with {site} and {name}.

With Pelican's content cache on (CACHE_CONTENT), each feed's bytes are kept in
CACHE_PATH/FeedsCache under a digest of all it is made of (its entries' fields,
the settings it reads, the source of this file and of the blogcore modules it uses,
feedgen and lxml versions); a feed whose digest is unchanged is written from there,
without feedgen or lxml. A post's `read_digest` (bytes, left by an accelerator such
as fast_build) stands for its entry's fields when present.
"""
import hashlib
import html
import logging
import os
import pickle
import re
from collections import namedtuple
from datetime import datetime, timezone
from importlib.metadata import version
from urllib.parse import quote, urlsplit

from jinja2 import pass_context
from pelican import signals

from blogcore import dates, htmltext, urls
from blogcore.htmltext import plain_text
from blogcore.urls import absolute_urls, public_url

from . import follow, jsonfeed

logger = logging.getLogger(__name__)

DEFAULTS = {
    "FEEDS_MAX_ITEMS": None,  # None: FEED_MAX_ITEMS, else 20
    "FEEDS_ATOM_SAVE_AS": "atom.xml",
    "FEEDS_RSS_SAVE_AS": "rss.xml",
    "FEEDS_CATEGORY_ATOM_SAVE_AS": "categorie/{slug}/atom.xml",
    "FEEDS_CATEGORY_RSS_SAVE_AS": "categorie/{slug}/rss.xml",
    "FEEDS_TAG_ATOM_SAVE_AS": "etiquette/{slug}/atom.xml",
    "FEEDS_JSON_SAVE_AS": "feed.json",
    "FEEDS_CATEGORY_JSON_SAVE_AS": "categorie/{slug}/feed.json",
    "FEEDS_PAGE_SAVE_AS": "suivre/index.html",
    "FEEDS_CATEGORY_PAGE_SAVE_AS": "categorie/{slug}/suivre/index.html",
    "FEEDS_ID_AUTHORITY": None,  # None: the host of PUBLIC_URL
    "FEEDS_CATEGORY_TITLE": "{site} — {name}",
    "FEEDS_TAG_TITLE": "{site} — étiquette « {name} »",
}
ATOM, RSS, JSON = "application/atom+xml", "application/rss+xml", "application/feed+json"
SAVE_AS_KEYS = ("FEEDS_ATOM_SAVE_AS", "FEEDS_RSS_SAVE_AS", "FEEDS_JSON_SAVE_AS", "FEEDS_CATEGORY_ATOM_SAVE_AS",
                "FEEDS_CATEGORY_RSS_SAVE_AS", "FEEDS_CATEGORY_JSON_SAVE_AS", "FEEDS_TAG_ATOM_SAVE_AS",
                "FEEDS_PAGE_SAVE_AS", "FEEDS_CATEGORY_PAGE_SAVE_AS")
SITE_KEYS = (("FEEDS_ATOM_SAVE_AS", ATOM, "Atom"), ("FEEDS_RSS_SAVE_AS", RSS, "RSS"),
             ("FEEDS_JSON_SAVE_AS", JSON, "JSON Feed"))
CATEGORY_KEYS = (("FEEDS_CATEGORY_ATOM_SAVE_AS", ATOM, "Atom"), ("FEEDS_CATEGORY_RSS_SAVE_AS", RSS, "RSS"),
                 ("FEEDS_CATEGORY_JSON_SAVE_AS", JSON, "JSON Feed"))
TAG_KEYS = (("FEEDS_TAG_ATOM_SAVE_AS", ATOM, "Atom"),)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$", re.I)
TAG_SAFE = "-._~!$&'()*+,;=:@/"  # RFC 4151 specific part: pchar and "/"

Feed = namedtuple("Feed", "scope mime title label href")


# Settings -----------------------------------------------------------------------

def resolve_settings(settings: dict) -> dict:
    """FEEDS_* merged over DEFAULTS; each bad value reported once (key and value), then the default used."""
    merged = {**DEFAULTS, **{k: v for k, v in settings.items() if k in DEFAULTS}}
    bad = []
    if merged["FEEDS_MAX_ITEMS"] is None:
        merged["FEEDS_MAX_ITEMS"] = settings.get("FEED_MAX_ITEMS") or 20
    items = merged["FEEDS_MAX_ITEMS"]
    if isinstance(items, bool) or not isinstance(items, int) or items < 1:
        bad.append(("FEEDS_MAX_ITEMS", items, "a whole number of at least 1", 20))
    for key in SAVE_AS_KEYS:
        value = merged[key]
        per_item, page = "CATEGORY" in key or "TAG" in key, "_PAGE_" in key
        if value in (None, ""):
            merged[key] = ""
        elif (not isinstance(value, str) or value.startswith("/") or ".." in value.split("/")
              or per_item and "{slug}" not in value or page and not value.endswith("index.html")):
            need = ("a path inside the output folder" + (" containing {slug}" if per_item else "")
                    + (" ending in index.html" if page else ""))
            bad.append((key, value, need, DEFAULTS[key]))
    if merged["FEEDS_ID_AUTHORITY"] is None:
        merged["FEEDS_ID_AUTHORITY"] = urlsplit(public_url(settings)).hostname or "localhost"
    if urls.problem(public_url(settings)):
        logger.error("feeds: %s; the feeds' links will not be absolute", urls.problem(public_url(settings)))
    if not isinstance(merged["FEEDS_ID_AUTHORITY"], str) or not DNS_NAME.match(merged["FEEDS_ID_AUTHORITY"]):
        bad.append(("FEEDS_ID_AUTHORITY", merged["FEEDS_ID_AUTHORITY"], "a domain name such as blog.example.fr",
                    "localhost"))
    for key in ("FEEDS_CATEGORY_TITLE", "FEEDS_TAG_TITLE"):
        try:
            merged[key].format(site="", name="")
        except (AttributeError, KeyError, IndexError, ValueError):
            bad.append((key, merged[key], "a text with {site} and {name}", DEFAULTS[key]))
    for key, value, need, default in bad:
        logger.error("feeds: setting %s = %r is not %s; using %r", key, value, need, default)
        merged[key] = default
    return merged


# What the templates and the writer share ------------------------------------------

def site_feeds(settings: dict) -> list:
    """The whole-blog feeds: Atom, RSS, JSON Feed."""
    site, base = settings["SITENAME"], settings.get("SITEURL", "")
    out = []
    for key, mime, label in SITE_KEYS:
        if settings[key]:
            out.append(Feed("site", mime, f"{site} — tous les billets ({label})", f"fil {label}",
                            f"{base}/{settings[key]}"))
    return out


def taxonomy_feeds(settings: dict, scope: str, item) -> list:
    """The feeds of one category or tag (an object with .name and .slug), Atom first."""
    base = settings.get("SITEURL", "")
    keys = CATEGORY_KEYS if scope == "category" else TAG_KEYS
    title = feed_title(settings, scope, item)
    return [Feed(scope, mime, f"{title} ({label})", f"fil {label}", f"{base}/{settings[key].format(slug=item.slug)}")
            for key, mime, label in keys if settings[key]]


def feed_title(settings: dict, scope: str, item=None) -> str:
    """« égoBlog », « égoBlog — Humeurs Marketing », « égoBlog — étiquette « crm » »."""
    site = settings["SITENAME"]
    if scope == "site":
        return site
    pattern = settings["FEEDS_CATEGORY_TITLE"] if scope == "category" else settings["FEEDS_TAG_TITLE"]
    return pattern.format(site=site, name=item.name).replace("« ", "«\u00a0").replace(" »", "\u00a0»")


def feed_subtitle(settings: dict, scope: str, item=None) -> str:
    """What the feed holds, in a sentence (Atom subtitle, RSS and JSON Feed description)."""
    if scope == "site":
        return settings.get("SITESUBTITLE") or settings["SITENAME"]
    if scope == "category":
        return f"Les billets de la rubrique «\u00a0{item.name}\u00a0» sur {settings['SITENAME']}"
    return f"Les billets marqués «\u00a0{item.name}\u00a0» sur {settings['SITENAME']}"


def page_save_as(settings: dict, category=None) -> str:
    """Where the « Suivre ce fil » page of the site (or of a category) is written; "" when off."""
    if category is None:
        return settings["FEEDS_PAGE_SAVE_AS"]
    pattern = settings["FEEDS_CATEGORY_PAGE_SAVE_AS"]
    return pattern.format(slug=category.slug) if pattern else ""


def make_follow_page(settings: dict):
    """The Jinja global follow_page(category=None): the page's root-relative URL (its folder), "" when off."""
    def follow_page(category=None):
        save_as = page_save_as(settings, category if hasattr(category, "slug") else None)
        return f"{settings.get('SITEURL', '')}/{save_as.removesuffix('index.html')}" if save_as else ""
    return follow_page


def make_feeds_here(settings: dict):
    """The Jinja global: feeds for the page being rendered; local_only=True leaves out the site's."""
    @pass_context
    def feeds_here(context, local_only=False):
        out = [] if local_only else site_feeds(settings)
        tag, category = context.get("tag"), context.get("category")
        if tag is not None and hasattr(tag, "slug"):
            out += taxonomy_feeds(settings, "tag", tag)
        elif category is not None and hasattr(category, "slug"):
            out += taxonomy_feeds(settings, "category", category)
        return out
    feeds_here.context_names = ("tag", "category")  # what it reads of the page's context (see fast_build)
    return feeds_here


# Entries --------------------------------------------------------------------------

def site_time(date: datetime, settings: dict) -> datetime:
    """The date in the site's time zone (blogcore.dates' rule), whole seconds."""
    return dates.localized(date, dates.site_zone(settings)).replace(microsecond=0)


def entry_id(article, settings: dict) -> str:
    """The stable id: Guid metadata, else tag:authority,date:slug."""
    guid = str(article.metadata.get("guid") or "").strip()
    if guid:
        return guid
    day = site_time(article.date, settings).strftime("%Y-%m-%d")
    return f"tag:{settings['FEEDS_ID_AUTHORITY']},{day}:{quote(article.slug, safe=TAG_SAFE)}"


def entry_dates(article, settings: dict) -> tuple:
    """(published, updated) in the site's time zone; updated is never before published."""
    published = site_time(article.date, settings)
    updated = site_time(getattr(article, "modified", None) or article.date, settings)
    return published, max(updated, published)


def add_entry(fg, article, settings: dict) -> datetime:
    """Append one post to the feed; return its updated date."""
    base = public_url(settings)
    permalink = f"{base}/{article.url}"
    published, updated = entry_dates(article, settings)
    authors = [a for a in getattr(article, "authors", []) if a.name] or []
    fe = fg.add_entry(order="append")
    fe.id(entry_id(article, settings))
    fe.title(plain_text(article.title))
    fe.link(href=permalink, rel="alternate", type="text/html")
    fe.published(published)
    fe.updated(updated)
    if authors:
        fe.author([{"name": a.name, "uri": f"{base}/{a.url}"} for a in authors])
        fe.dc.dc_creator([a.name for a in authors])
    cats = [{"term": article.category.slug, "label": article.category.name, "scheme": f"{base}/categorie/"}]
    cats += [{"term": t.slug, "label": t.name, "scheme": f"{base}/etiquette/"}
             for t in getattr(article, "tags", [])]
    fe.category(cats)
    summary = plain_text(getattr(article, "summary", ""))
    if summary:
        fe.summary(summary)
        # Feed readers take RSS's <description> as HTML: the text goes in escaped, so a summary that shows a
        # tag (« <img src=x onerror=…> ») stays text there too. Atom's summary is type="text" already.
        fe.description(html.escape(summary, quote=False))
    fe.content(absolute_urls(article.content, permalink), type="html")
    return updated


def newest_first(articles) -> list:
    """Published date descending; slug breaks ties so the order never depends on file order."""
    return sorted(articles, key=lambda a: (a.date.timestamp(), a.slug), reverse=True)


# Writing -------------------------------------------------------------------------

def render(settings: dict, scope: str, item, articles, mime: str, save_as: str, page_url: str) -> bytes:
    """One feed as bytes: feedgen's XML, or a JSON Feed."""
    base = public_url(settings)
    if mime == JSON:
        return render_json(settings, scope, item, articles, save_as, page_url)
    from feedgen.feed import FeedGenerator  # here: a warm rebuild reuses the feeds' bytes and needs it not

    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(f"{base}/{page_url}")
    fg.title(feed_title(settings, scope, item))
    fg.subtitle(feed_subtitle(settings, scope, item))
    fg.language(settings.get("DEFAULT_LANG") or "fr")
    fg.author(name=settings.get("AUTHOR") or settings["SITENAME"])
    fg.link(href=f"{base}/{save_as}", rel="self", type=mime)
    fg.link(href=f"{base}/{page_url}", rel="alternate", type="text/html")  # last: RSS <link>
    fg.generator("Pelican + python-feedgen")
    newest = EPOCH
    for article in newest_first(articles)[: settings["FEEDS_MAX_ITEMS"]]:
        newest = max(newest, add_entry(fg, article, settings))
    fg.updated(newest)
    fg.lastBuildDate(newest)
    return fg.atom_str(pretty=True) if mime == ATOM else fg.rss_str(pretty=True)


def render_json(settings: dict, scope: str, item, articles, save_as: str, page_url: str) -> bytes:
    """The JSON Feed twin of the Atom feed of the same scope: same entries, ids, dates and content."""
    base = public_url(settings)
    head = {"title": feed_title(settings, scope, item), "home_page_url": f"{base}/{page_url}",
            "feed_url": f"{base}/{save_as}", "description": feed_subtitle(settings, scope, item),
            "authors": [{"name": settings.get("AUTHOR") or settings["SITENAME"]}],
            "language": settings.get("DEFAULT_LANG") or "fr"}
    items = [jsonfeed.item(article, settings, entry_id(article, settings), *entry_dates(article, settings))
             for article in newest_first(articles)[: settings["FEEDS_MAX_ITEMS"]]]
    return jsonfeed.render(head, items)


def planned_feeds(generator) -> list:
    """(scope, item, articles, mime, save_as, page_url) for every feed of the site."""
    s = generator.settings
    plan = []
    for key, mime, _ in SITE_KEYS:
        if s[key]:
            plan.append(("site", None, generator.articles, mime, s[key], ""))
    for category, articles in generator.categories:
        for key, mime, _ in CATEGORY_KEYS:
            if s[key]:
                plan.append(("category", category, articles, mime, s[key].format(slug=category.slug), category.url))
    for tag, articles in generator.tags.items():
        if s["FEEDS_TAG_ATOM_SAVE_AS"]:
            plan.append(("tag", tag, articles, ATOM, s["FEEDS_TAG_ATOM_SAVE_AS"].format(slug=tag.slug), tag.url))
    return plan


# Signal handlers ------------------------------------------------------------------

def check_settings(pelican):
    """Resolve FEEDS_* once, so a bad value is reported once; generators share this dict."""
    pelican.settings.update(resolve_settings(pelican.settings))


def add_template_global(generator):
    """Expose feeds_here() and follow_page() to every template environment."""
    if hasattr(generator, "env"):
        generator.env.globals["feeds_here"] = make_feeds_here(generator.settings)
        generator.env.globals["follow_page"] = make_follow_page(generator.settings)


# Settings a feed is made of, besides its own (render, add_entry, public_url, site_time, entry_id, feed_title,
# jsonfeed.item).
READ_SETTINGS = ("SITENAME", "SITESUBTITLE", "DEFAULT_LANG", "AUTHOR", "TIMEZONE", "PUBLIC_URL", "SITEURL",
                 "FEED_MAX_ITEMS", *DEFAULTS)
CACHE_FILE = "FeedsCache"
_source = []


def source_digest() -> str:
    """This plugin's code, the blogcore modules it uses and the libraries that make the XML."""
    if not _source:
        code = b""
        for module in (__file__, jsonfeed.__file__, dates.__file__, htmltext.__file__, urls.__file__):
            with open(module, "rb") as file:
                code += file.read() + b"\0"
        _source.append(hashlib.blake2b(code + f"\0{version('feedgen')}\0{version('lxml')}"
                                       .encode(), digest_size=16).hexdigest())
    return _source[0]


def entry_inputs(article) -> str:
    """Everything add_entry and newest_first read of a post, as an exact text."""
    authors = [(a.name, a.url) for a in getattr(article, "authors", []) if a.name]
    tags = [(t.slug, t.name) for t in getattr(article, "tags", [])]
    card = str((getattr(article, "share_card", None) or {}).get("url", ""))
    return repr((str(article.metadata.get("guid") or ""), str(article.metadata.get("image") or ""), card,
                 article.slug, article.url, article.date,
                 getattr(article, "modified", None), article.title, authors, article.category.slug,
                 article.category.name, tags, getattr(article, "summary", ""), article.content))


def feed_key(settings, scope, item, chosen, mime, save_as, page_url, entries) -> str:
    """The digest of a feed's inputs: its place, the settings it reads, its entries and the code."""
    digest = hashlib.blake2b(digest_size=20)
    head = (source_digest(), scope, item and (item.name, item.slug), mime, save_as, page_url,
            [(key, settings.get(key)) for key in READ_SETTINGS])
    digest.update(repr(head).encode("utf-8", "surrogatepass"))
    for article in chosen:
        found = entries.get(id(article))
        if found is None:
            # The post as read, when an accelerator (fast_build) left its digest: it holds everything
            # entry_inputs lists; else entry_inputs is hashed.
            read = getattr(article, "read_digest", None)
            found = entries[id(article)] = (article, b"read:" + read if read is not None else hashlib.blake2b(
                entry_inputs(article).encode("utf-8", "surrogatepass"), digest_size=20).digest())
        digest.update(found[1])
    return digest.hexdigest()


def load_cache(settings) -> dict:
    """save_as: (key, bytes) of the last build's feeds; empty without the content cache."""
    if not (settings.get("CACHE_CONTENT") and settings.get("LOAD_CONTENT_CACHE") and settings.get("CACHE_PATH")):
        return {}
    try:
        with open(os.path.join(settings["CACHE_PATH"], CACHE_FILE), "rb") as file:
            cached = pickle.load(file)
        return cached if isinstance(cached, dict) else {}
    except (OSError, EOFError, pickle.PickleError, ValueError, TypeError, AttributeError):
        return {}


def save_cache(settings, fresh: dict):
    if not (settings.get("CACHE_CONTENT") and settings.get("CACHE_PATH")):
        return
    try:
        os.makedirs(settings["CACHE_PATH"], exist_ok=True)
        temporary = os.path.join(settings["CACHE_PATH"], f".{CACHE_FILE}-{os.getpid()}")
        with open(temporary, "wb") as file:
            pickle.dump(fresh, file, pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, os.path.join(settings["CACHE_PATH"], CACHE_FILE))
    except OSError as error:
        logger.warning("feeds: cannot keep the feeds for the next build: %s", error)


def write_feeds(generator, writer):
    """Write every feed once the articles' pages are written (the output folder is cleaned before)."""
    settings = generator.settings
    cached, fresh, entries, reused = load_cache(settings), {}, {}, 0
    written = {}
    rank = {id(article): i for i, article in enumerate(newest_first(generator.articles))}  # sorted once

    def newest(articles):
        """The entries of a feed of these posts."""
        if all(id(article) in rank for article in articles):
            return sorted(articles, key=lambda article: rank[id(article)])[: settings["FEEDS_MAX_ITEMS"]]
        return newest_first(articles)[: settings["FEEDS_MAX_ITEMS"]]

    for scope, item, articles, mime, save_as, page_url in planned_feeds(generator):
        path = os.path.join(generator.output_path, save_as)
        if path in written:
            logger.error("feeds: %s would be written twice (%s and %s); change the FEEDS_*_SAVE_AS settings",
                         save_as, written[path], scope)
            continue
        written[path] = scope
        chosen = newest(articles)
        key = feed_key(settings, scope, item, chosen, mime, save_as, page_url, entries)
        found = cached.get(save_as)
        if found is not None and found[0] == key:
            data = found[1]
            reused += 1
        else:
            data = render(settings, scope, item, articles, mime, save_as, page_url)
        fresh[save_as] = (key, data)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as out:
            out.write(data)
    if fresh != cached:  # (the cache file is left as it is when no feed changed)
        save_cache(settings, fresh)
    logger.info("feeds: wrote %d feeds (%d unchanged since the last build)", len(written), reused)
    pages = []
    if settings["FEEDS_PAGE_SAVE_AS"]:
        pages.append((settings["FEEDS_PAGE_SAVE_AS"], "site", None, settings["SITENAME"],
                      feed_subtitle(settings, "site"), site_feeds(settings), newest(generator.articles)))
    if settings["FEEDS_CATEGORY_PAGE_SAVE_AS"]:
        for category, articles in generator.categories:
            pages.append((page_save_as(settings, category), "category", category, category.name,
                          feed_subtitle(settings, "category", category),
                          taxonomy_feeds(settings, "category", category), newest(articles)))
    follow.write_pages(generator, writer, pages)


_pending = []  # (articles generator, writer) whose feeds are still to write


def remember_articles(generator, writer):
    _pending.append((generator, writer))


def write_pending_feeds(generator, writer):
    while _pending:
        write_feeds(*_pending.pop(0))


def register():
    # initialized: once per build, before any generator exists, so settings are checked once.
    signals.initialized.connect(check_settings)
    # generator_init: every generator that renders templates gets the Jinja global.
    signals.generator_init.connect(add_template_global)
    # article_writer_finalized: articles, categories and tags are final and the output
    # folder has already been cleaned, so the feeds we write stay. The feeds are written
    # one step later, at page_writer_finalized: a parallel writer (fast_build) starts
    # rendering the article pages at article_writer_finalized, and the feeds are then
    # made while the pages render instead of before.
    signals.article_writer_finalized.connect(remember_articles)
    signals.page_writer_finalized.connect(write_pending_feeds)
