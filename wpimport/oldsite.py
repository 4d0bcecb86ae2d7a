"""The old WordPress site's addresses: which links point into it, and the path of each.

An address is the old site's when it is relative (`/2019/05/x/`) or its host is the
export's (its <link> or wp:base_blog_url, with or without `www.`). Its key is its path and
query as WordPress wrote them, percent-escapes in lower case and without the trailing
slash, so that /2019/05/ete/, /2019/05/ete and /2019/05/%C3%A9t%C3%A9/ find one another.
"""
import re
from urllib.parse import quote, urlsplit

ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def wp_quote(text: str) -> str:
    """A path segment as WordPress writes it: UTF-8 percent-escapes in lower case."""
    return ESCAPE.sub(lambda m: m[0].lower(), quote(text, safe="-_.~!$&'()*+,;=:@%"))


class OldSite:
    def __init__(self, link: str, blog_url: str):
        self.hosts = {h for h in (_host(link), _host(blog_url)) if h}
        self.base = urlsplit(blog_url or link).path.rstrip("/")  # "/blog" for a blog in a folder

    def owns_host(self, host: str) -> bool:
        host = (host or "").lower()
        return (host[4:] if host.startswith("www.") else host) in self.hosts

    def path(self, url: str) -> str | None:
        """`/path/?query` of an address of the old site, or None for an address elsewhere (or no address)."""
        url = (url or "").strip()
        parts = urlsplit(url)
        if not url or url.startswith("#") or parts.scheme not in ("", "http", "https"):
            return None
        if parts.netloc:
            if not self.owns_host(parts.hostname):
                return None
        elif not parts.path.startswith("/"):
            return None  # a relative link ("page.html"): nothing to go on
        path = ESCAPE.sub(lambda m: m[0].lower(), quote(parts.path or "/", safe="/%-_.~!$&'()*+,;=:@"))
        return path + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def key(path: str) -> str:
        """The form under which two spellings of one old address meet."""
        head, mark, query = path.partition("?")
        return (head.rstrip("/") or "/") + mark + query
