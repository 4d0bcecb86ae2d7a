"""Each post's and page's url and save_as computed once per build, not at every use.

Pelican recomputes Content.url from its URL setting at every access, and a build
reads it ~18 times per post (templates, listings, feeds, sitemap, mail records,
page fingerprints): about a tenth of a 1,000-post build. What a URL is made of
(slug, date, category, lang, metadata) is final once the object is built, so
each object gets, as soon as it is read, a subclass whose url and save_as are
cached on first use. The subclass keeps the class's
name, so anything that reads type(content).__name__ sees no difference.
"""
from functools import cached_property

from pelican.contents import Content

_frozen = {}


def relative_source_path(self, source_path=None):
    """Content.get_relative_source_path, answered for the object's own file by what Content.__init__ stored
    (Pelican asks it again for every post, and os.path.relpath is slow)."""
    if not source_path and "relative_source_path" in vars(self):
        return self.relative_source_path
    return Content.get_relative_source_path(self, source_path)


def frozen_class(cls: type) -> type:
    """cls with url and save_as cached per object (one subclass per content class)."""
    if cls not in _frozen:
        _frozen[cls] = type(cls.__name__, (cls,), {
            "__module__": cls.__module__,
            "url": cached_property(Content.url.fget),
            "save_as": cached_property(Content.save_as.fget),
            "get_relative_source_path": relative_source_path,
        })
    return _frozen[cls]


def freeze(content):
    """Give one object cached url and save_as (Pelican sets nothing a URL is made of after building it)."""
    if isinstance(content, Content) and type(content) not in _frozen.values():
        content.__class__ = frozen_class(type(content))
    return content


def freeze_urls(generators):
    """all_generators_finalized: every content object exists and its metadata is final."""
    for generator in generators:
        for name in ("articles", "translations", "drafts", "drafts_translations",
                     "pages", "hidden_pages", "draft_pages", "hidden_translations", "draft_translations"):
            for content in getattr(generator, name, None) or ():
                freeze(content)
