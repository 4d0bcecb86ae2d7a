"""mail_posts: record each published article for the newsletter sender.

At build time, every published article is written as one record outside the
published site (blogcore.records holds the contract: file, folder, schema, version):
the typographed title, summary and content exactly as the site shows them, with
every link and image made absolute against the post's public URL, plus the path
and hash of its Markdown source for the plain-text alternative. `make send` reads these records, so the mail is the
post as it was built, never a second rendering that could drift from the site.

The rubriques of the published posts are the newsletter's lists (besides the whole blog): they go in the
same file, for the signup service, and in the templates' context as NEWSLETTER_RUBRIQUES, a sorted list
of (slug, name) in slug order, for the signup form of every page.

Settings:
    MAIL_POSTS_PATH: where the records go. Unset (the default), var/posts beside the
        output folder: `make build` writes <project>/var/posts, where `make send` reads,
        and a test build into a temporary folder keeps its records there. A relative
        path is taken from the project root (blogcore.records has the rule).
"""
import hashlib
import logging
import os
from pathlib import Path
from urllib.parse import urljoin

from pelican import signals

from blogcore import htmltext, language, records, urls
from blogcore.htmltext import plain_text
from blogcore.language import lang_of
from blogcore.records import RecordsError, RecordsWriter, make_record, records_folder
from blogcore.urls import absolute_urls, problem, public_url

logger = logging.getLogger(__name__)

_collected: list = []
_prepared: list = []  # (open RecordsWriter, count, remade) from page_writer_finalized


def record(article, base: str) -> dict:
    """The record of one article: what the site shows, with absolute URLs (links exactly as in the feeds)."""
    url = urljoin(base + "/", article.url)
    source = Path(article.source_path)
    summary_html = absolute_urls(article.summary or "", url)
    category = getattr(article, "category", None)
    return make_record(
        slug=article.slug,
        title=article.title,
        title_text=plain_text(article.title),
        url=url,
        date=article.date.isoformat(),
        lang=lang_of(article, article.settings),
        category={"name": category.name, "url": urljoin(base + "/", category.url), "slug": category.slug}
        if category else None,
        tags=[{"name": tag.name, "url": urljoin(base + "/", tag.url)} for tag in getattr(article, "tags", [])],
        author=getattr(getattr(article, "author", None), "name", None),
        summary_html=summary_html,
        summary_text=plain_text(summary_html),
        content_html=absolute_urls(article.content, url),
        source_path=str(source),
        source_sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
    )


# This plugin's code and the core it writes with: a change to any rewrites every record.
CODE_DIGEST = hashlib.sha256(b"".join(Path(module).read_bytes() for module in (
    __file__, htmltext.__file__, language.__file__, records.__file__, urls.__file__))).hexdigest()


def stamp(article, base: str) -> str:
    """What a record is made of, hashed: an unchanged stamp means the record on disk is still right.
    Cheap: the post's digest as an accelerator (fast_build) read it stands for its text and metadata (else
    Pelican's rendered content is hashed); only the URL rewriting and JSON of unchanged posts are skipped."""
    source = os.stat(article.source_path)
    read = getattr(article, "read_digest", None)  # the post as read: title, content, summary, date, url, tags...
    parts = [CODE_DIGEST, base, article.source_path, f"{source.st_mtime_ns}:{source.st_size}"]
    parts += [read.hex()] if read is not None else [
        article.slug, article.url, article.title, article.content, article.summary or "", article.date.isoformat(),
        str(getattr(article, "category", "")), repr(getattr(article, "tags", [])), str(getattr(article, "author", "")),
        str(getattr(article, "lang", ""))]
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=32).hexdigest()


def collect(generator):
    # article_generator_finalized: every article is read and typographed
    # (content_object_init has run), drafts and hidden posts are already apart.
    # Only the articles are kept here: reading article.content now would cache it
    # before the static generator knows the files that {static} links point to.
    _collected[:] = generator.articles
    # Every template's signup form offers these lists; the same build writes them for the service (prepare).
    generator.context["NEWSLETTER_RUBRIQUES"] = sorted(rubriques(generator.articles).items())  # by slug: ASCII


WHOLE_BLOG_WORD = "tout"  # the signup form's value for the whole blog: a rubrique cannot take it


def rubriques(articles) -> dict:
    """slug: name of the rubriques of these posts, each a newsletter list."""
    found = {}
    for article in articles:
        category = getattr(article, "category", None)
        if category is None or category.slug in found:
            continue
        if category.slug == WHOLE_BLOG_WORD:
            logger.warning("mail_posts: the rubrique %r has the slug %r, which names the whole blog in the "
                           "signup form: it gets no newsletter list of its own", category.name, category.slug)
            continue
        found[category.slug] = category.name
    return found


def prepare(generator, writer):
    # page_writer_finalized: every generator's context is final ({static} links can be
    # resolved), and a parallel writer is rendering the article pages: the records are
    # made now, alongside, in a transaction committed at finalized.
    settings = generator.settings
    base = public_url(settings)
    if problem(base):
        logger.warning("mail_posts: %s; mail links would not be absolute", problem(base))
    try:
        folder = records_folder(settings)
    except RecordsError as error:
        logger.error("mail_posts: %s; no post records written", error)
        return
    out = RecordsWriter(folder)
    try:
        previous = out.stamps()
        remade = 0
        for article in _collected:
            key = stamp(article, base)
            if previous.pop(article.slug, None) != key:  # a warm rebuild keeps the unchanged posts' rows
                out.put(key, record(article, base))
                remade += 1
        out.remove(previous)  # posts gone
        out.put_rubriques(rubriques(_collected))
    except BaseException:
        out.close()  # rolls back
        raise
    _prepared[:] = [(out, len(_collected), remade)]
    _collected.clear()


def write(pelican):
    # finalized: the build went through, so the records describe a site that exists.
    # A failed build never gets here: its transaction is rolled back, the records stay as they were.
    if not _prepared:
        return
    out, count, remade = _prepared.pop()
    out.commit()
    logger.info("mail_posts: %d post records in %s (%d remade)", count, out.path, remade)


def register():
    signals.article_generator_finalized.connect(collect)
    signals.page_writer_finalized.connect(prepare)
    signals.finalized.connect(write)
