"""The public base URL of the site, and links made absolute against it.

Links inside the site stay root-relative (SITEURL is "" so the dev site works on any
port); whatever leaves the site (canonical, Open Graph, JSON-LD, feeds, sitemap, mails)
needs absolute URLs. One rule for their base, followed by the build and the newsletter:

    PUBLIC_URL if set, else SITEURL; without its trailing slash.

publishconf.py sets PUBLIC_URL from the SITEURL environment variable; pelicanconf.py
from PORT. A base that is not an absolute http(s) URL is reported by `problem`, and each
caller says what it does then (the sitemap is not written, the newsletter refuses to start).
"""
import html
import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

URL_ATTR = re.compile(r"""(?P<lead>\s(?:href|src|poster|cite|action|longdesc)\s*=\s*)"""
                      r"""(?:(?P<q>["'])(?P<quoted>.*?)(?P=q)|(?P<bare>[^\s"'>]+))""", re.I | re.S)
SRCSET_ATTR = re.compile(r"""(?P<lead>\ssrcset\s*=\s*)(?P<q>["'])(?P<value>.*?)(?P=q)""", re.I | re.S)


def public_url(settings) -> str:
    """The absolute base of the site, without a trailing slash ("" when neither setting is set)."""
    return str(settings.get("PUBLIC_URL") or settings.get("SITEURL") or "").rstrip("/")


def problem(base: str) -> str | None:
    """Why `base` cannot make absolute URLs, or None when it can."""
    parts = urlsplit(base)  # which drops tabs and line breaks: a link built from `base` would keep them
    if parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in base):
        return None
    return f"PUBLIC_URL must be an absolute http(s) URL without white space, not {base!r}"


@lru_cache(maxsize=256)  # a post is in the site's, its category's and its tags' feeds, then in its mail record
def absolute_urls(fragment: str, base: str) -> str:
    """The HTML with every relative href/src/srcset/poster/cite resolved against base."""
    def one(url: str) -> str:
        raw = html.unescape(url.strip())
        return html.escape(urljoin(base, raw), quote=True) if raw else html.escape(base)

    def attr(match):
        if match["bare"] is not None:
            return f'{match["lead"]}"{one(match["bare"])}"'
        return f'{match["lead"]}{match["q"]}{one(match["quoted"])}{match["q"]}'

    def srcset(match):
        candidates = []
        for candidate in match["value"].split(","):
            parts = candidate.strip().split(None, 1)
            if parts:
                candidates.append(" ".join([one(parts[0])] + parts[1:]))
        return f'{match["lead"]}{match["q"]}{", ".join(candidates)}{match["q"]}'

    return SRCSET_ATTR.sub(srcset, URL_ATTR.sub(attr, fragment))
