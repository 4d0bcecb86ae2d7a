"""Redirects for old addresses (those of an imported WordPress site): small pages, and an nginx map.

content/redirects.csv (REDIRECTS_FILE, relative to PATH) has a line per old address,
`old,new`: a path of the site, maybe with a query (/2019/05/12/titre/, /?p=123), and where
it leads now, written as Pelican's own links ({filename}/posts/….md, {category}Nom,
{tag}nom) or as an address (/atom.xml, https://…). `make import-wordpress` writes it; the
author may add lines. Targets are resolved at each build: redirects follow the URL
settings and the slugs.

Written:

- for each old path without a query, <path>/index.html (or <path> when it names a file):
  a French page « Cette page a déménagé : … » with <meta http-equiv="refresh" content="0;
  url=…">, rel=canonical to the new address, and noindex. No script, no style: the CSP
  stays default-src 'self'.
- REDIRECTS_NGINX_MAP (default redirects.nginx.map) in the output: every old address, query
  or not, as `map $request_uri` entries, for real 301s (README, « Anciennes adresses »).
  An address with a query (/?p=123) can only be redirected by the web server: a static
  file cannot answer a query. Without the map it gets the home page, never the 404 page.

Not written, with one warning each: an old path that is a page of this site (the page
wins), a target this build does not have (a draft, a removed post, a typo). A malformed
line of the file stops the build, naming the line.

Pages whose bytes did not change keep the live site's file and time (FAST_BUILD_LIVE_OUTPUT,
set by sitebuild): a deploy that compares times does not send them again.
"""
import csv
import html
import logging
import os
import posixpath
import re
from urllib.parse import quote, unquote, urlsplit

from pelican import signals
from pelican.generators import Generator
from pelican.urlwrappers import Category, Tag

from blogcore.language import is_french
from blogcore.typography import fix_text
from blogcore.urls import public_url

logger = logging.getLogger(__name__)

DEFAULTS = {"REDIRECTS_FILE": "redirects.csv", "REDIRECTS_NGINX_MAP": "redirects.nginx.map"}
LIVE_OUTPUT = "FAST_BUILD_LIVE_OUTPUT"  # where sitebuild's live output/ is, when it stages the build elsewhere
LINK = re.compile(r"^\{(?P<what>filename|static|category|tag|author|index)\}(?P<value>.*)$")
PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{moved} – {site}</title>
<link rel="canonical" href="{canonical}">
<meta http-equiv="refresh" content="0; url={href}">
</head>
<body>
<main>
<p>{moved}{colon} <a href="{href}">{label}</a></p>
</main>
</body>
</html>
"""


class RedirectsError(SystemExit):
    """A malformed redirects file: the build stops, naming the line."""


def read_rows(path: str) -> list[tuple[int, str, str]]:
    """(line, old, new) of the file, its `old,new` header skipped."""
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file)
        for row in reader:
            line = reader.line_num
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            if [cell.strip() for cell in row] == ["old", "new"]:
                continue
            if len(row) != 2 or not row[0].strip().startswith("/") or not row[1].strip():
                raise RedirectsError(f"{path}:{line}: expected `old,new` with old starting with /, not {row!r}")
            rows.append((line, row[0].strip(), row[1].strip()))
    return rows


class Resolver:
    """What the targets of this build are: content by source path, categories and tags by slug."""

    def __init__(self, context, settings):
        self.settings = settings
        self.content = {}
        for path, item in context.get("generated_content", {}).items():
            if getattr(item, "status", "published") in ("published", "hidden") and getattr(item, "url", None):
                self.content[path.replace(os.sep, "/")] = item
        self.categories = {category.slug: category for category, _ in context.get("categories", [])}
        self.tags = {tag.slug: tag for tag, _ in context.get("tags", [])}

    def target(self, value: str):
        """(url relative to the site's root or absolute, label) of a target, or None when the build has none."""
        match = LINK.match(value)
        if not match:
            if value.startswith(("http://", "https://")):
                return value, html.escape(value)
            if value.startswith("/"):
                return value.lstrip("/"), html.escape(value)
            return None
        what, name = match["what"], match["value"].strip()
        if what == "filename":
            item = self.content.get(name.lstrip("/"))
            return (item.url, item.title) if item is not None else None
        if what == "index":
            return "", html.escape(self.settings.get("SITENAME", ""))
        wrapper = {"category": (Category, self.categories), "tag": (Tag, self.tags)}.get(what)
        if wrapper is None:
            return None
        found = wrapper[1].get(wrapper[0](name, self.settings).slug)
        return (found.url, html.escape(found.name)) if found is not None else None


def taken_paths(context, settings) -> set:
    """Every file this build writes for a page of the site: an old address never replaces one."""
    taken = set()
    for key in ("generated_content", "static_content"):
        for item in context.get(key, {}).values():
            for one in [item, *getattr(item, "translations", [])]:
                if getattr(one, "save_as", None):
                    taken.add(one.save_as)
    for key in ("categories", "tags", "authors"):
        for wrapper, _ in context.get(key, []):
            taken.add(wrapper.save_as)
    for key, value in settings.items():
        if key.endswith("_SAVE_AS") and isinstance(value, str) and "{" not in value and value:
            taken.add(value)
    return taken


def file_for(old_path: str) -> str | None:
    """The output file answering an old path (query-less), or None for the root or a path leaving the site."""
    path = unquote(old_path)
    if path.endswith("/") or "." not in posixpath.basename(path):
        path = posixpath.join(path, "index.html")
    path = posixpath.normpath(path).lstrip("/")
    if path in ("index.html", ".") or path.startswith("..") or "\x00" in path:
        return None
    return path


def nginx_keys(old: str) -> list[str]:
    """$request_uri spellings of an old address: as written, and without its final slash. (nginx compares a map's
    strings without regard to case, so %c3%a9 and %C3%A9 are one key.)"""
    keys = [old]
    head, mark, query = old.partition("?")
    if not mark and head.endswith("/") and len(head) > 1:
        keys.append(head.rstrip("/"))
    return keys


def nginx_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_if_changed(output: str, live: str | None, relative: str, text: str):
    """Write a file of the build; bytes the live site already has keep its file's time (nothing to deploy)."""
    path = os.path.join(output, relative)
    data = text.encode("utf-8")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path, "rb") as file:
            if file.read() == data:
                return
    with open(path, "wb") as file:
        file.write(data)
    if live and os.path.abspath(live) != os.path.abspath(output):
        previous = os.path.join(live, relative)
        try:
            with open(previous, "rb") as file:
                same = file.read() == data
            if same:
                stat = os.stat(previous)
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        except OSError:
            pass
    logger.info("Writing %s", path)


class RedirectsGenerator(Generator):
    """Writes after every other generator has filled the context (targets and taken pages are known)."""

    def generate_output(self, writer):
        settings = {**DEFAULTS, **self.settings}
        source = os.path.join(settings["PATH"], settings["REDIRECTS_FILE"])
        if not settings["REDIRECTS_FILE"] or not os.path.isfile(source):
            return
        rows = read_rows(source)
        resolver, taken = Resolver(self.context, settings), taken_paths(self.context, settings)
        site_url = str(settings.get("SITEURL") or "").rstrip("/")
        base = public_url(settings)
        root = urlsplit(base).path.rstrip("/")
        live = settings.get(LIVE_OUTPUT)
        french = is_french(settings.get("DEFAULT_LANG", "fr"))
        moved = fix_text("Cette page a déménagé") if french else "Cette page a déménagé"
        entries = []
        for line, old, new in rows:
            found = resolver.target(new)
            if found is None:
                logger.warning("redirects: %s:%s: %s is not in this build (a draft, a removed post, a typo?): "
                               "%s not redirected", source, line, new, old)
                continue
            url, label = found
            absolute = url.startswith(("http://", "https://"))
            if not absolute and "?" not in old and unquote(old).rstrip("/") == unquote("/" + url).rstrip("/"):
                continue  # the post kept its address: nothing to redirect
            relative = file_for(urlsplit(old).path) if "?" not in old else None
            if relative in taken:
                logger.warning("redirects: %s:%s: %s is a page of this site: not redirected to %s",
                               source, line, old, new)
                continue
            href = url if absolute else f"{site_url}/{quote(url, safe='/%#?=&:@!$,;~+')}"
            entries.append((old, url if absolute else f"{root}/{quote(url, safe='/%#?=&:@!$,;~+')}"))
            if relative is None:
                continue
            canonical = url if absolute else f"{base}/{quote(url, safe='/%#?=&:@!$,;~+')}"
            page = PAGE.format(moved=moved, colon="\u202f:" if french else ":", site=html.escape(
                settings.get("SITENAME", "")), canonical=html.escape(canonical, quote=True),
                href=html.escape(href, quote=True), label=label)
            write_if_changed(self.output_path, live, relative, page)
        if settings["REDIRECTS_NGINX_MAP"] and entries:
            lines = ["# Old addresses -> new ones, for nginx: map $request_uri $redirect { include <this file>; }",
                     "# then, in the server block: if ($redirect) { return 301 $redirect; }"]
            seen = set()
            for old, new in entries:
                for key in nginx_keys(old):
                    if key.lower() not in seen:  # nginx refuses a key given twice, in any case
                        seen.add(key.lower())
                        lines.append(f"{nginx_quote(key)} {nginx_quote(new)};")
            write_if_changed(self.output_path, live, settings["REDIRECTS_NGINX_MAP"], "\n".join(lines) + "\n")


def get_generators(pelican):
    """get_generators: a generator's generate_output runs once every context (posts, categories) is complete."""
    return RedirectsGenerator


def register():
    signals.get_generators.connect(get_generators)
