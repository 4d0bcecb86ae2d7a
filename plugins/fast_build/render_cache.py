"""Render cache: reuse last build's bytes for a page whose inputs did not change.

A page's fingerprint is a digest of everything its rendering can read:

- the site: Pelican, Jinja and Markdown versions, every settings value, the source
  of every plugin (filters, globals) and of every template the Jinja loader
  can find (site_digest);
- the page: its template name, output path and relative-URL mode, and the value
  of every name its template (with what it extends, includes and imports)
  leaves undeclared, looked up in the page's context (template_names). Names read
  by a Jinja context function or filter (feeds_here reads `tag` and `category`)
  are the string constants of its code.

Values are digested by kind (digest): plain data as is; a content object
(article, page) by all its attributes (metadata, Markdown output, URL,
reading time...), by the attributes of the content objects it refers to
(older/newer neighbours, translations), and one level further by their
identity (title, URL...); categories, tags and authors by name, slug and URLs;
a pagination page by its number, URLs and its objects; a paginator by its
numbers (plus all its objects if a template reaches them). Anything else makes
the page "unknown": it is rendered, never reused.

Rendered pages are kept in CACHE_PATH/<site>/pages/<fingerprint>, as hard links
to the output files (a copy across file systems), and found through a manifest
(output path -> fingerprint, size, mtime) saved with the content cache. A page
whose stored file changed since (size or mtime) is rendered again.
"""
import hashlib
import os
import re
import types
from datetime import date, datetime, time as dtime, timedelta, tzinfo

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import TemplateNotFound
from jinja2.utils import _PassArg
from pelican.contents import Content
from pelican.paginator import Page as PaginationPage, Paginator
from pelican.urlwrappers import URLWrapper

MISSING = "\0missing"
# Content attributes that are not the object's own data: the whole settings and site context; and url and
# save_as, cached on the object once read (frozen_urls), so present or not depending on what ran before: they
# follow from the other attributes and the settings.
SKIPPED_ATTRIBUTES = {"settings", "_context", "url", "save_as"}
# Left out of what a page shows of a content object two steps away (a neighbour's neighbour): its body.
IDENTITY_SKIPPED = {"_content"}
# A paginator's attributes a template may read without reaching its full object list.
SAFE_PAGINATOR_ATTRIBUTES = {"num_pages", "count", "page_range", "per_page", "orphans", "name", "url"}
# A context function using one of these may read any variable: its pages are never reused.
OPEN_CONTEXT_READS = {"get_all", "items", "keys", "values", "parent", "vars", "exported_vars", "resolve_or_missing",
                      "__iter__", "__contains__"}
# Types whose repr is exact and tells them apart (str quoted, floats exact, datetimes with their zone).
REPR_EXACT = {str, int, float, bool, type(None), bytes, datetime, date, dtime, timedelta}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Unknown(Exception):
    """A value the cache cannot digest: the page is rendered."""


def _h(*parts) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.digest()


def code_strings(function) -> tuple[set, set]:
    """The string constants and attribute/global names of a function's code, nested code included."""
    strings, names = set(), set()
    code = getattr(function, "__code__", None)
    stack = [code] if code is not None else []
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, str):
                strings.add(const)
            elif isinstance(const, types.CodeType):
                stack.append(const)
    return strings, names


def context_reads(function):
    """Names a Jinja context function/filter may read from the context; None: it may read any."""
    if getattr(function, "jinja_pass_arg", None) is not _PassArg.context:
        return set()
    strings, names = code_strings(function)
    if getattr(function, "__code__", None) is None or names & OPEN_CONTEXT_READS:
        return None
    return {s for s in strings if IDENTIFIER.match(s)}


class Fingerprints:
    """Fingerprints of the pages of one build (the memo tables hold the objects, so ids stay valid)."""

    def __init__(self, site_key: str):
        self.site_key = site_key
        self.sites = {}      # id(env): (env, site digest)
        self.templates = {}  # (id(env), name): (names, filter/test names, full paginators) or None
        self.own = {}        # id(content): (content, digest of its own attributes, refs)
        self.ident = {}      # id(content): (content, digest of its identity)
        self.values = {}     # id(list or other big global value): (value, digest)
        self.link_regex = {}

    # The site -----------------------------------------------------------------

    def site_digest(self, env) -> bytes:
        found = self.sites.get(id(env))
        if found is None:
            parts = [self.site_key, jinja2.__version__]
            for name in sorted(env.loader.list_templates()):
                try:
                    source = env.loader.get_source(env, name)[0]
                except TemplateNotFound:
                    continue
                parts += [name, source]
            found = self.sites[id(env)] = (env, _h(*parts))
        return found[1]

    # Templates ----------------------------------------------------------------

    def template_names(self, env, name):
        """(undeclared names, filter and test names, paginators read fully) of a template and all it uses."""
        key = (id(env), name)
        if key in self.templates:
            return self.templates[key]
        names, filters, full, seen, todo = set(), set(), False, set(), [name]
        result = None
        try:
            while todo:
                current = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                try:
                    source = env.loader.get_source(env, current)[0]
                except TemplateNotFound:
                    continue  # an `ignore missing` include; the loader's listing is in the site digest
                parsed = _parsed.get((current, source))
                if parsed is None:
                    parsed = _parsed[(current, source)] = analyse(env.parse(source))
                if parsed is None:
                    raise Unknown(f"{current}: a template chosen at render time")
                names |= parsed[0]
                todo += parsed[1]
                filters |= parsed[2]
                full = full or parsed[3]
            result = (frozenset(names), frozenset(filters), full)
        except Unknown:
            result = None
        self.templates[key] = result
        return result

    # Pages --------------------------------------------------------------------

    def page(self, template, localcontext, save_as, relative_urls):
        """The page's fingerprint (hex), or None if it cannot be fingerprinted."""
        env = template.environment
        if template.name is None:
            return None
        found = self.template_names(env, template.name)
        if found is None:
            return None
        names, filters, full = found
        names = set(names)
        try:
            for kind, name in filters:
                function = (env.filters if kind == "filter" else env.tests).get(name)
                reads = context_reads(function) if function is not None else set()
                if reads is None:
                    return None
                names |= reads & set(localcontext)
            for name in list(names):
                value = localcontext[name] if name in localcontext else env.globals.get(name)
                if callable(value) and not isinstance(value, type):
                    reads = context_reads(value)
                    if reads is None:
                        return None
                    names |= reads & set(localcontext)
            parts = [self.site_digest(env), template.name, save_as, bool(relative_urls), full]
            for name in sorted(names):
                if name in localcontext:
                    parts += [name, self.digest(localcontext[name], full, top=True)]
                elif name in env.globals:
                    parts += [name, self.digest(env.globals[name], full, top=True)]
                else:
                    parts += [name, MISSING]
        except Unknown:
            return None
        return _h(*parts).hex()

    # Values -------------------------------------------------------------------

    def digest(self, value, full=False, top=False) -> str:
        """An exact text of what a template can read from the value (raises Unknown); digests for content."""
        kind = type(value)
        if kind in REPR_EXACT:
            return repr(value)
        if isinstance(value, Content):
            return self.content_full(value) if top else self.content_own(value)
        if isinstance(value, (list, tuple)):
            big = len(value) > 32
            if big:
                memo = self.values.get(id(value))
                if memo and memo[0] is value:
                    return memo[1]
            result = f"{kind.__name__}[{','.join([self.digest(item, full) for item in value])}]"
            if big:
                result = _h(result).hex()
                self.values[id(value)] = (value, result)
            return result
        if isinstance(value, URLWrapper):
            return self.wrapper(value)
        if isinstance(value, dict):
            return "{" + ",".join(sorted([f"{self.digest(k, full)}:{self.digest(v, full)}"
                                          for k, v in value.items()])) + "}"
        if isinstance(value, (str, bytes, bool, int, float, complex, datetime, date, dtime, timedelta, tzinfo)):
            return f"{kind.__module__}.{kind.__qualname__}({value!r})"  # subclasses: Markup, ZoneInfo...
        if value is None:
            return "None"
        if isinstance(value, (set, frozenset)):
            return "set{" + ",".join(sorted(self.digest(item, full) for item in value)) + "}"
        if isinstance(value, PaginationPage):
            return _h("page", value.full_name, value.base_url, value.number, value.url, value.save_as,
                      self.paginator(value.paginator, full), self.digest(value.object_list, full)).hex()
        if isinstance(value, Paginator):
            return self.paginator(value, full)
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            # Code is in the site digest (plugins) or in a version; data it closes over is settings.
            return f"function:{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
        raise Unknown(type(value).__name__)

    def paginator(self, paginator, full):
        parts = ["paginator", paginator.name, paginator.url, paginator.per_page, paginator.orphans,
                 paginator.count, paginator.num_pages]
        if full:
            parts.append(self.digest(paginator.object_list))
        return _h(*parts).hex()

    def wrapper(self, value):
        """A category, tag or author: its URLs follow from its name and slug and the settings."""
        memo = self.values.get(id(value))
        if memo is None or memo[0] is not value:
            memo = self.values[id(value)] = (value, f"{type(value).__name__}({value.name!r},{value.slug!r})")
        return memo[1]

    def _intrasite(self, content) -> bool:
        key = content.settings.get("INTRASITE_LINK_REGEX")
        regex = self.link_regex.get(key)
        if regex is None:
            regex = self.link_regex[key] = content._get_intrasite_link_regex()
        return bool(content._content and regex.search(content._content))

    def _scalars(self, content):
        """Digest of a content object's attributes, content objects it refers to only by identity; and those."""
        # No url or save_as: they follow from the attributes and the settings.
        refs, parts = [], [type(content).__name__]

        def plain(value):
            if isinstance(value, Content):
                refs.append(value)
                return "ref:" + self.identity(value)
            if isinstance(value, (list, tuple)) and any(isinstance(item, Content) for item in value):
                return f"{type(value).__name__}[{','.join(plain(item) for item in value)}]"
            if isinstance(value, dict) and any(isinstance(item, Content) for item in value.values()):
                return "{" + ",".join(sorted(f"{self.digest(k)}:{plain(v)}" for k, v in value.items())) + "}"
            return self.digest(value)

        for key in sorted(vars(content)):
            if key not in SKIPPED_ATTRIBUTES:
                parts += [key, plain(vars(content)[key])]
        if hasattr(content, "_get_content") or (hasattr(content, "_content") and self._intrasite(content)):
            parts += ["resolved", content.content]  # links to other content: their URLs are in the text
        return _h(*parts).hex(), refs

    def content_own(self, content) -> str:
        memo = self.own.get(id(content))
        if memo is None or memo[0] is not content:
            own, refs = self._scalars(content)
            memo = self.own[id(content)] = (content, own, refs)
        return memo[1]

    def content_full(self, content) -> str:
        own = self.content_own(content)
        refs = self.own[id(content)][2]
        return _h("full", own, *(self.content_own(ref) for ref in refs)).hex()

    def identity(self, content) -> str:
        """What a page shows of a content object it reaches through another: title, URL, date, summary..."""
        memo = self.ident.get(id(content))
        if memo is None or memo[0] is not content:
            parts = [type(content).__name__]
            for key in sorted(vars(content)):
                value = vars(content)[key]
                if key in SKIPPED_ATTRIBUTES or key in IDENTITY_SKIPPED or isinstance(value, Content):
                    continue
                if isinstance(value, (list, tuple)) and any(isinstance(item, Content) for item in value):
                    parts += [key, len(value)]
                    continue
                parts += [key, self.digest(value)]
            memo = self.ident[id(content)] = (content, _h(*parts).hex())
        return memo[1]


_parsed = {}  # (template name, source): analyse()


def analyse(ast):
    """(undeclared names, templates used, filters and tests, paginators read fully), None if one is dynamic."""
    referenced = list(meta.find_referenced_templates(ast))
    if None in referenced:
        return None
    filters = {("filter", node.name) for node in ast.find_all(nodes.Filter)}
    filters |= {("test", node.name) for node in ast.find_all(nodes.Test)}
    return meta.find_undeclared_variables(ast), referenced, filters, reaches_paginated_objects(ast)


def reaches_paginated_objects(ast) -> bool:
    """Whether a template may read a paginator's whole object list (not only its page's)."""
    for node in ast.find_all(nodes.Const):
        if node.value in ("object_list", "paginator"):
            return True
    allowed = set()
    for node in ast.find_all(nodes.Getattr):
        if node.attr == "paginator":
            return True
        if isinstance(node.node, nodes.Name) and node.node.name.endswith("_paginator"):
            if node.attr not in SAFE_PAGINATOR_ATTRIBUTES:
                return True
            allowed.add(id(node.node))
        elif node.attr == "object_list" and not (isinstance(node.node, nodes.Name)
                                                 and node.node.name.endswith("_page")):
            return True
    for node in ast.find_all(nodes.Test):  # `articles_paginator is defined`
        if isinstance(node.node, nodes.Name) and node.name in ("defined", "undefined", "none"):
            allowed.add(id(node.node))
    for node in ast.find_all(nodes.Name):
        if node.name.endswith("_paginator") and id(node) not in allowed:
            return True
    return False


# The page store --------------------------------------------------------------------

def store_page(store: str, fingerprint: str, path: str):
    """Keep a rendered output file under its fingerprint; (size, mtime_ns) of the kept file, or None."""
    target = os.path.join(store, fingerprint)
    temporary = os.path.join(store, f".tmp-{fingerprint}-{os.getpid()}")
    try:
        try:
            os.link(path, temporary)
        except OSError:
            import shutil
            shutil.copyfile(path, temporary)
        os.replace(temporary, target)
        info = os.stat(target)
        return info.st_size, info.st_mtime_ns
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return None


def reuse_page(store: str, entry, path: str) -> bool:
    """Put the kept file of a manifest entry at `path`; False if it is gone or was changed."""
    fingerprint, size, mtime = entry
    source = os.path.join(store, fingerprint)
    try:
        info = os.stat(source)
        if (info.st_size, info.st_mtime_ns) != (size, mtime):
            return False
        unlink_quietly(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.link(source, path)
        except OSError:
            import shutil
            shutil.copyfile(source, path)
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        return True
    except OSError:
        return False


def unlink_quietly(path):
    """Never write through a hard link to a kept page: remove what is at the path first."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass
