"""What a page is rendered from, as one digest: equal digests, equal pages.

A page is a template rendered with a local context. Jinja tells which names a
template (with everything it extends and includes) reads; the page's
fingerprint is the digest of those templates' sources and of the values those
names have in the page's context. A setting is not digested: the cache folder
the fingerprints live in is already keyed by every setting, the plugins' code,
Pelican and Markdown (see site_cache_key).

A content object is digested as the object the reader built (its pickle, taken
when it was read or loaded from the cache) plus what was attached to it after
reading (neighbours, translations): an object it points to counts by its own
read digest, so a neighbour's edit reaches this page but nothing cascades
further. An object whose text links to other content ({filename}, {static}…),
or any value of a type not known here, makes the page unknown: it is rendered
every time. So does a Jinja global or filter that takes the whole context
(pass_context) without saying, in a `context_names` attribute, which names of
it it reads.
"""
import datetime
import hashlib
import re

from jinja2 import meta, nodes
from jinja2.utils import _PassArg
from pelican.contents import Content
from pelican.paginator import Page as PaginatorPage, Paginator
from pelican.urlwrappers import URLWrapper

# Pelican's intrasite link markers, in the pickled text: their targets' URLs are resolved at render time.
LINK_MARKER = re.compile(rb"[{|](?:filename|static|attach|category|tag|author|index)[|}]")
# Attributes Pelican sets at reading time but replaces later.
REPLACED_LATER = frozenset({"translations"})
ABSENT = object()
# What Pelican's writer names the pages before and after a paginated page: their pages link to them.
NEIGHBOUR_PAGES = ("_previous_page", "_next_page")


def context_reads(functions) -> set:
    """The context names that Jinja globals or filters taking the whole context (pass_context) read.

    Such a function reads names its template never mentions; it must say which, in a
    `context_names` attribute, or the pages that use it are always rendered.
    """
    names = set()
    for function in functions:
        if getattr(function, "jinja_pass_arg", None) is _PassArg.context:
            declared = getattr(function, "context_names", None)
            if declared is None:
                raise Unknown(function)
            names.update(declared)
    return names


class Unknown(Exception):
    """A value this module cannot digest: the page is rendered every time."""


def read_digest(data: bytes) -> bytes | None:
    """The digest of a content object as read, from its pickle; None if it links to other content."""
    if LINK_MARKER.search(data):
        return None
    return hashlib.blake2b(data, digest_size=16).digest()


class Fingerprints:
    """Page fingerprints for one build: read digests of its content objects, and its templates' names."""

    def __init__(self, settings):
        self.settings = settings
        self.objects = {}    # id(content object): (object, read digest or None, attributes it had when read)
        self.templates = {}  # template name: (names read, digest of the sources) or None
        self.values = {}     # id(value): (value, digest), for values shared by many pages (lists, objects)
        self.analysed = {}   # digest of a template source: (names it reads, templates it refers to)
        self.from_context = {}  # (template name, id(shared context)): names it reads there that are not settings

    def read(self, content, digest):
        """Record a content object as it was read (called right after it is built or loaded)."""
        self.objects[id(content)] = (content, digest, frozenset(vars(content)))

    def page(self, template, extras, context) -> bytes | None:
        """The page's fingerprint, or None when it cannot be known (then it is rendered).

        The page's local context is the shared context with `extras` on top (Pelican's writer).
        """
        names = self.template_names(template.environment, template.name)
        if names is None:
            return None
        variables, sources = names
        key = (template.name, id(context))
        from_context = self.from_context.get(key)
        if from_context is None:  # the names the shared context gives other than as a setting
            from_context = self.from_context[key] = frozenset(
                name for name in variables if name in context and context[name] is not self.settings.get(name, ABSENT))
        digest = hashlib.blake2b(sources, digest_size=16)
        try:
            for name in variables:
                if name in extras:
                    value = extras[name]
                    if value is self.settings.get(name, ABSENT):  # a setting, as given: in the cache key
                        continue
                    if isinstance(value, PaginatorPage) and name.endswith(NEIGHBOUR_PAGES):
                        digest.update(f"{name}={value.number}:{value.url};".encode())  # a link to it, no more
                        continue
                elif name in from_context:
                    value = context[name]
                else:
                    continue
                digest.update(name.encode() + b"=" + self.value(value) + b";")
        except Unknown:
            return None
        return digest.digest()

    def template_names(self, env, name):
        """Undeclared names of a template and of all it extends, includes or imports; and their sources' digest."""
        if name in self.templates:
            return self.templates[name]
        names, sources, todo, seen = set(), hashlib.blake2b(digest_size=16), [name], set()
        result = None
        try:
            while todo:
                current = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                source = env.loader.get_source(env, current)[0].encode()
                sources.update(current.encode() + b"\0" + source + b"\0")
                variables, referenced, filters, loaded = self.analyse(env, source)
                names.update(variables)
                names.update(context_reads(env.filters.get(f) for f in filters))
                names.update(context_reads(env.globals.get(n) for n in loaded))  # globals are not "undeclared"
                if None in referenced:  # a computed template name: what it reads cannot be known
                    raise Unknown(current)
                todo.extend(referenced)
            result = (tuple(sorted(names)), sources.digest())
        except Exception:  # noqa: BLE001 - a template that cannot be analysed is simply always rendered
            result = None
        self.templates[name] = result
        return result

    def analyse(self, env, source: bytes):
        """What a template source reads from its context, the templates it refers to, the filters it applies and
        every name it loads (Jinja globals among them); kept across builds by source."""
        key = hashlib.blake2b(source, digest_size=16).digest()
        if key not in self.analysed:
            tree = env.parse(source.decode())
            self.analysed[key] = (tuple(meta.find_undeclared_variables(tree)),
                                  tuple(meta.find_referenced_templates(tree)),
                                  tuple({node.name for node in tree.find_all(nodes.Filter)}),
                                  tuple({node.name for node in tree.find_all(nodes.Name) if node.ctx == "load"}))
        return self.analysed[key]

    def value(self, value, shallow=False) -> bytes:
        """A digest of a value a template reads (Unknown if it cannot be made). shallow: content objects inside
        count by their read digest only (for what is attached to another object: no cascade, no cycle)."""
        if value is None or isinstance(value, (str, int, float, bool)):
            return repr(value).encode()
        if isinstance(value, (datetime.datetime, datetime.date)):
            return repr(value).encode()
        key = (id(value), shallow)
        known = self.values.get(key)
        if known is not None and known[0] is value:
            return known[1]
        if isinstance(value, Content):
            digest = self.content(value, shallow)
        elif isinstance(value, URLWrapper):
            digest = f"{type(value).__name__}:{value.name}:{value.slug}".encode()
        elif isinstance(value, Paginator):  # pagination links only: its pages carry their own objects
            digest = f"Paginator:{value.name}:{value.url}:{value.count}:{value.per_page}".encode()
        elif isinstance(value, PaginatorPage):
            digest = self.sequence((value.number, value.paginator, value.object_list), shallow)
        elif isinstance(value, (list, tuple)):
            digest = self.sequence(value, shallow)
        elif isinstance(value, dict):
            digest = self.sequence(sorted((self.value(k, shallow), self.value(v, shallow)) for k, v in value.items()))
        else:
            raise Unknown(type(value).__name__)
        self.values[key] = (value, digest)
        return digest

    def sequence(self, items, shallow=False) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for item in items:
            digest.update(item if isinstance(item, bytes) else self.value(item, shallow))
            digest.update(b",")
        return digest.digest()

    def content(self, content, shallow=False) -> bytes:
        """A content object: its read digest, plus (unless shallow) what was attached to it after reading,
        in which other content objects count by their read digest."""
        known = self.objects.get(id(content))
        if known is None or known[0] is not content or known[1] is None:
            raise Unknown(content)
        _, digest, read_keys = known
        if shallow:
            return digest
        extra = hashlib.blake2b(digest, digest_size=16)
        attributes = vars(content)
        for key in sorted((attributes.keys() - read_keys) | (attributes.keys() & REPLACED_LATER)):
            extra.update(key.encode() + b"=" + self.value(attributes[key], shallow=True) + b";")
        return extra.digest()
