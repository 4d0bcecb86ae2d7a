"""One JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) from the entries an Atom feed holds.

A JSON Feed says what its Atom twin says, from the same functions: the same ids
(entry_id), the same titles, dates in the site's time zone as RFC 3339, the same
full content with absolute links, the same authors. Nothing but the specification's
own keys (no `_` extensions). Bytes are deterministic: keys in a fixed order, no
build time, so the content cache and the accelerator's byte comparisons hold.

`image` is the post's `Image:` as the share_cards plugin published it (`article.share_card`: 1200×630,
its metadata stripped) when that plugin runs; without it, the value made absolute: `{static}/x.png` and
`/x.png` against the site's root, `x.png` against the post's own URL.
"""
import json
from urllib.parse import urljoin

from blogcore.htmltext import plain_text
from blogcore.urls import absolute_urls, public_url

VERSION = "https://jsonfeed.org/version/1.1"
LINK_PREFIXES = ("{static}", "{attach}", "{filename}", "|static|", "|attach|", "|filename|")


def image_url(value, permalink: str, base: str) -> str | None:
    """The absolute URL of an `Image:` value, or None when there is none."""
    text = str(value or "").strip()
    if not text:
        return None
    for prefix in LINK_PREFIXES:
        if text.startswith(prefix):
            return f"{base}/{text[len(prefix):].lstrip('/')}"
    return urljoin(permalink if not text.startswith("/") else base + "/", text)


def item(article, settings: dict, entry_id: str, published, updated) -> dict:
    """One post as a JSON Feed item (the caller gives the Atom entry's id and dates)."""
    base = public_url(settings)
    permalink = f"{base}/{article.url}"
    out = {"id": entry_id, "url": permalink, "title": plain_text(article.title),
           "content_html": absolute_urls(article.content, permalink)}
    summary = plain_text(getattr(article, "summary", ""))
    if summary:
        out["summary"] = summary
    card = getattr(article, "share_card", None)
    if article.metadata.get("image") and card:
        image = card["url"]  # the picture as published for sharing: resized, no EXIF
    else:
        image = image_url(article.metadata.get("image"), permalink, base)
    if image:
        out["image"] = image
    out["date_published"] = published.isoformat()
    out["date_modified"] = updated.isoformat()
    authors = [{"name": a.name, "url": f"{base}/{a.url}"} for a in getattr(article, "authors", []) if a.name]
    if authors:
        out["authors"] = authors
    tags = [article.category.name] + [t.name for t in getattr(article, "tags", [])]
    out["tags"] = list(dict.fromkeys(tags))  # a tag named like the category once
    return out


def render(head: dict, items: list) -> bytes:
    """The feed's bytes: `head` (title, home_page_url, feed_url, description, authors) and the items."""
    feed = {"version": VERSION, **head, "items": items}
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
