"""mail_posts: record each published article for the newsletter sender.

At build time, every published article is written as one JSON file in
MAIL_POSTS_PATH (outside the published site): the typographed title, summary and
content exactly as the site shows them, with every link and image made absolute
against the post's public URL, plus the path and hash of its Markdown source for
the plain-text alternative. `make send` reads these records, so the mail is the
post as it was built, never a second rendering that could drift from the site.
"""
import hashlib
import json
import logging
import os
import sqlite3
from pathlib import Path
from urllib.parse import urljoin

from pelican import signals

# The feeds plugin (listed before this one in PLUGINS; Pelican registers each plugin
# module under its name) already resolves relative URLs and flattens summaries:
# the mail must link exactly as the feeds do.
from feeds import absolute_urls, plain_text, read_digest_of

logger = logging.getLogger(__name__)

# MAIL_POSTS_PATH: where the records go. Unset, they go to var/posts beside the
# output folder (OUTPUT_PATH's parent): `make build` writes <project>/var/posts,
# where `make send` reads, and a test build into a temporary folder keeps its
# records there instead of overwriting the project's. A relative MAIL_POSTS_PATH
# is taken from the project root (the folder holding plugins/ and pelicanconf.py).
MAIL_POSTS_DEFAULTS = {
    "MAIL_POSTS_PATH": None,
}

# The project root: plugins/mail_posts/__init__.py -> the folder holding plugins/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
RECORD_VERSION = 1

_collected: list = []
_prepared: list = []  # (open transaction, folder, count, remade) from page_writer_finalized


def posts_path(settings) -> Path:
    """Where the records go (see MAIL_POSTS_DEFAULTS)."""
    config = {**MAIL_POSTS_DEFAULTS, **{k: v for k, v in settings.items() if k.startswith("MAIL_POSTS_")}}
    value = config["MAIL_POSTS_PATH"]
    if value is None:
        return Path(settings["OUTPUT_PATH"]).resolve().parent / "var" / "posts"
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        logger.error("mail_posts: MAIL_POSTS_PATH must be a folder path, got %r", value)
        value = "var/posts"
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def record(article, public_url: str) -> dict:
    """The JSON record of one article: what the site shows, with absolute URLs."""
    url = urljoin(public_url + "/", article.url)
    source = Path(article.source_path)
    summary_html = absolute_urls(article.summary or "", url)
    category = getattr(article, "category", None)
    return {
        "version": RECORD_VERSION,
        "slug": article.slug,
        "title": article.title,
        "title_text": plain_text(article.title),
        "url": url,
        "date": article.date.isoformat(),
        "lang": getattr(article, "lang", "fr"),
        "category": {"name": category.name, "url": urljoin(public_url + "/", category.url)} if category else None,
        "tags": [{"name": tag.name, "url": urljoin(public_url + "/", tag.url)} for tag in getattr(article, "tags", [])],
        "author": getattr(getattr(article, "author", None), "name", None),
        "summary_html": summary_html,
        "summary_text": plain_text(summary_html),
        "content_html": absolute_urls(article.content, url),
        "source_path": str(source),
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }


# This plugin's and the feeds plugin's code: a change to either rewrites every record.
CODE_DIGEST = hashlib.sha256(b"".join(
    (Path(__file__).parent.parent / name / "__init__.py").read_bytes() for name in ("mail_posts", "feeds"))).hexdigest()
RECORDS = "records.sqlite3"  # one file, one row a post: rows are rewritten only when their post changed


def stamp(article, public_url: str) -> str:
    """What a record is made of, hashed: an unchanged stamp means the record on disk is still right.
    Cheap: the post's digest as fast_build read it stands for its text and metadata (else Pelican's rendered
    content is hashed); only the URL rewriting and JSON of unchanged posts are skipped."""
    source = os.stat(article.source_path)
    read = read_digest_of(article)  # the post as read: title, content, summary, date, url, category, tags...
    parts = [CODE_DIGEST, public_url, article.source_path, f"{source.st_mtime_ns}:{source.st_size}"]
    parts += [read.hex()] if read is not None else [
        article.slug, article.url, article.title, article.content, article.summary or "", article.date.isoformat(),
        str(getattr(article, "category", "")), repr(getattr(article, "tags", [])), str(getattr(article, "author", ""))]
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=32).hexdigest()


def collect(generator):
    # article_generator_finalized: every article is read and typographed
    # (content_object_init has run), drafts and hidden posts are already apart.
    # Only the articles are kept here: reading article.content now would cache it
    # before the static generator knows the files that {static} links point to.
    _collected[:] = generator.articles


def prepare(generator, writer):
    # page_writer_finalized: every generator's context is final ({static} links can be
    # resolved), and a parallel writer is rendering the article pages: the records are
    # made now, alongside, in a transaction committed at finalized.
    settings = generator.settings
    public_url = str(settings.get("PUBLIC_URL") or settings.get("SITEURL") or "").rstrip("/")
    if not public_url:
        logger.warning("mail_posts: PUBLIC_URL is empty; mail links would not be absolute")
    folder = posts_path(settings)
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / RECORDS, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")  # the sender sees the previous records or these, never a mix
        db.execute("CREATE TABLE IF NOT EXISTS posts (slug TEXT PRIMARY KEY, stamp TEXT NOT NULL, record TEXT NOT NULL)")
        previous = dict(db.execute("SELECT slug, stamp FROM posts"))
        remade = 0
        for article in _collected:
            key = stamp(article, public_url)
            if previous.pop(article.slug, None) != key:  # a warm rebuild keeps the unchanged posts' rows
                db.execute("INSERT OR REPLACE INTO posts VALUES (?, ?, ?)",
                           (article.slug, key, json.dumps(record(article, public_url), ensure_ascii=False)))
                remade += 1
        db.executemany("DELETE FROM posts WHERE slug = ?", [(slug,) for slug in previous])  # posts gone
    except BaseException:
        db.close()  # rolls back
        raise
    _prepared[:] = [(db, folder, len(_collected), remade)]
    _collected.clear()


def write(pelican):
    # finalized: the build went through, so the records describe a site that exists.
    # A failed build never gets here: its transaction is rolled back, the records stay as they were.
    if not _prepared:
        return
    db, folder, count, remade = _prepared.pop()
    try:
        db.execute("COMMIT")
    finally:
        db.close()
    logger.info("mail_posts: %d post records in %s (%d remade)", count, folder / RECORDS, remade)


def register():
    signals.article_generator_finalized.connect(collect)
    signals.page_writer_finalized.connect(prepare)
    signals.finalized.connect(write)
