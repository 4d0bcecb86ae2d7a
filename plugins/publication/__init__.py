"""publication: drafts and posts dated in the future stay out of the published site.

A post goes out when its Status is published (or hidden: written at its address, listed
nowhere, marked noindex by the theme) and its date has come, on the build's clock in the
site's TIMEZONE (blogcore.dates). Any other post is withheld: no page, no entry in a feed,
the sitemap, the archives, a tag, category or author page, and no mail record
(plugins/mail_posts). A post dated later needs no edit: the first build after its date
publishes it. Draft pages (Status: draft) are withheld too.

Pelican's own rule (WITH_FUTURE_DATES = False) decides when a post is read, on the
machine's clock: a post taken from a cache would keep the status it had then, and tests
could not set the clock. This rule runs on every build, once every post is read and before
any is filed under a tag or written (article_generator_pretaxonomy), and leaves the objects
as they were read; Pelican's is left off (WITH_FUTURE_DATES = True).

The dev server's builds (DEV_BUILD = True, sitebuild/devserver.py) write the withheld posts
and pages for their author: each gets `publication_mark`, « Brouillon » or « Programmé pour
le 3 décembre 2027 à 9 h 00 », which the theme shows, with a noindex. They stay out of every
list, feed, the sitemap and the mail records there too.

Settings:
    DEV_BUILD: True only in the dev server's builds (default False).
    PUBLICATION_NOW: the build's clock, ISO 8601 (without an offset: in TIMEZONE), for tests;
        unset, the machine's clock.
"""
import logging

from pelican import signals
from pelican.utils import order_content, process_translations

from blogcore.dates import build_now, fr_datetime, is_future, site_zone

logger = logging.getLogger(__name__)

DRAFT_MARK = "Brouillon"
SCHEDULED_MARK = "Programmé pour le {when}"


class PublicationError(SystemExit):
    """A setting this plugin cannot use; the message names it."""


def now_of(settings):
    """The build's clock in the site's zone (PUBLICATION_NOW, else the machine's)."""
    try:
        return build_now(site_zone(settings), settings.get("PUBLICATION_NOW"))
    except ValueError as error:
        raise PublicationError(f"PUBLICATION_NOW: {error}") from None


def check_settings(pelican):
    """initialized: a bad PUBLICATION_NOW stops the build before anything is read."""
    now_of(pelican.settings)


def mark(post, now, zone) -> str | None:
    """Why a post is not public yet, as its author reads it; None when it is public."""
    if post.status == "draft":
        return DRAFT_MARK
    if is_future(post.date, now, zone):
        return SCHEDULED_MARK.format(when=fr_datetime(post.date, zone))
    return None


def regroup(generator, originals: str, translations: str, posts: list):
    """Set a pair of the generator's lists from `posts`, as Pelican's generate_context makes them."""
    index, others = process_translations(posts, translation_id=generator.settings["ARTICLE_TRANSLATION_ID"])
    setattr(generator, originals, order_content(index, generator.settings["ARTICLE_ORDER_BY"]))
    setattr(generator, translations, others)


def sort_articles(generator):
    """article_generator_pretaxonomy: the posts are read and split by status; nothing is filed or written yet."""
    settings = generator.settings
    zone, now = site_zone(settings), now_of(settings)
    withheld = [*generator.drafts, *generator.drafts_translations]
    for originals, translations in (("articles", "translations"), ("hidden_articles", "hidden_translations")):
        group = [*getattr(generator, originals), *getattr(generator, translations)]
        later = {id(post) for post in group if is_future(post.date, now, zone)}
        if later:
            withheld += [post for post in group if id(post) in later]
            regroup(generator, originals, translations, [post for post in group if id(post) not in later])
    if settings.get("DEV_BUILD"):
        for post in withheld:
            post.publication_mark = mark(post, now, zone)
        regroup(generator, "drafts", "drafts_translations", withheld)
        return
    generator.drafts, generator.drafts_translations = [], []
    forget(generator, withheld)


def sort_pages(generator):
    """page_generator_finalized: pages are read and in the context; nothing is written yet."""
    drafts = [*generator.draft_pages, *generator.draft_translations]
    if generator.settings.get("DEV_BUILD"):
        for page in drafts:
            page.publication_mark = DRAFT_MARK
        return
    generator.draft_pages.clear()  # in place: the context holds these lists
    generator.draft_translations.clear()
    forget(generator, drafts)


def forget(generator, withheld):
    """Withheld content is no target for {filename} links: Pelican then warns about a published page
    linking to it, instead of writing a link to an address that does not exist."""
    found = generator.context.get("generated_content", {})
    for content in withheld:
        found.pop(content.get_relative_source_path(), None)


def register():
    signals.initialized.connect(check_settings)
    # article_generator_pretaxonomy: after every post is read (or taken from a cache) and split by status,
    # before tags, categories, authors, archives, feeds and mail records see the published list.
    signals.article_generator_pretaxonomy.connect(sort_articles)
    # page_generator_finalized: pages are read; PagesGenerator writes them later, at generate_output.
    signals.page_generator_finalized.connect(sort_pages)
