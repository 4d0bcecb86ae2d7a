"""Keep Pelican's taxonomy pages linear in the number of posts, through a public signal.

Why: Pelican 4.12's ArticlesGenerator.generate_tags, generate_categories and
generate_authors each compute, for every tag, category and author,

    dates = [article for article in self.dates if article in articles]

where `articles` is a plain list: every membership test scans it, so the work
is posts x posts-per-term per term, quadratic in the size of the site. At
10,000 posts it was half of a one-post rebuild (~11 s of cProfile time; about
0.1 s at 1,000 posts). The comprehension runs on every build, even when the
page it feeds is kept from the last build.

What: on `article_generator_pretaxonomy` (sent after the articles are read and
split from their translations, before Pelican files them under their tags,
categories and authors), the generator's three `defaultdict(list)` get
`IdentityList` as their factory. Pelican then appends each article to an
IdentityList, and every later holder (generator.tags/categories/authors, the
shared context, templates, other plugins) sees those very objects.

An IdentityList is a list: same items, order, iteration, indexing, equality
and repr; a slice or .copy() is a plain list, as for any list subclass;
copy.copy and pickle make an IdentityList of the same items, without the
cache. Only `in` is faster: the first test builds a set of the items, valid
until the list changes; a test is then one hash lookup. The answer is
list.__contains__'s exactly: the set is used only when every item (checked
when the set is built) and the probe have object's own __eq__ and __hash__
(true of Pelican's Content, which defines neither: equality is identity);
any other case falls back to the list scan.

Not reachable by any hook: `process_translations` (pelican/utils.py), which
runs inside generate_context before any signal, with local lists. Its fix is an
upstream patch, see UPSTREAM.md; so is generate_tags' remaining walk over all
of `self.dates` for each term (posts x terms, linear for a fixed number of
terms, no longer posts x posts).

Use: `connect(signals)` from the plugin's register(), with pelican.signals.
"""
from collections import defaultdict

_OBJECT_EQ = object.__eq__
_OBJECT_HASH = object.__hash__


def _plain(cls) -> bool:
    """Instances of cls are equal only to themselves and hash by identity (object's own methods)."""
    return cls.__eq__ is _OBJECT_EQ and cls.__hash__ is _OBJECT_HASH


class IdentityList(list):
    """A list whose `in` is a set lookup when its items compare by identity (see the module docstring)."""

    # The set of the items, or None (not built yet, or the list changed since); whether it may be used (the
    # items' types are checked when it is built); the length it was built at (a guard against changes made
    # through list's own methods, e.g. list.append(ours, x), which bypass the overrides below).
    __slots__ = ("_members", "_usable", "_length")

    def __init__(self, *args):
        super().__init__(*args)
        self._members = None
        self._usable = False
        self._length = -1

    def __contains__(self, item):
        members = self._members
        if members is None or self._length != len(self):
            members = self._index()
        if self._usable and _plain(type(item)):
            return item in members
        return list.__contains__(self, item)

    def _index(self):
        types = {type(item) for item in self}
        self._usable = all(_plain(cls) for cls in types)
        self._members = members = set(self) if self._usable else frozenset()
        self._length = len(self)
        return members

    def __reduce_ex__(self, protocol):
        return type(self), (list(self),)

    # Every change to the items drops the set (sort and reverse keep the same items).
    def _changed(name):
        method = getattr(list, name)

        def changed(self, *args):
            self._members = None
            return method(self, *args)

        changed.__name__ = name
        changed.__doc__ = method.__doc__
        return changed

    append = _changed("append")
    extend = _changed("extend")
    insert = _changed("insert")
    pop = _changed("pop")
    remove = _changed("remove")
    clear = _changed("clear")
    __setitem__ = _changed("__setitem__")
    __delitem__ = _changed("__delitem__")
    __iadd__ = _changed("__iadd__")
    __imul__ = _changed("__imul__")
    del _changed


def identity_taxonomies(generator):
    """article_generator_pretaxonomy: tags, categories and authors will file articles in IdentityLists."""
    for name in ("tags", "categories", "authors"):
        terms = getattr(generator, name, None)
        if isinstance(terms, defaultdict) and terms.default_factory is list:
            terms.default_factory = IdentityList
            for term, articles in terms.items():  # filled by another handler already: same items
                if type(articles) is list:
                    terms[term] = IdentityList(articles)


HANDLERS = (("article_generator_pretaxonomy", identity_taxonomies),)


def connect(signals):
    """Connect this module's handlers to Pelican's signals (pass pelican.signals)."""
    for name, handler in HANDLERS:
        getattr(signals, name).connect(handler)
