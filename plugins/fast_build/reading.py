"""Read a generator's files on every core at once, and keep the objects read for the next build.

A generator reads its files one by one through its Readers' read_file. The
first call here reads them all: unchanged files come from the content cache;
the others are split between forked helpers, which take files from the front
of the list, and the main process, which takes them from the back until they
meet (split). Each file is read, turned into a content object and passed
through content_object_init exactly as Readers.read_file does; a helper's
object comes back pickled, the settings and the shared context restored by
reference. Handlers of content_object_init must therefore only change the
object they are given: true of the plugins the accelerator runs with (run.py
steps aside for the others). A file a helper could not build is read again in
the main process, by Pelican, which reports the problem its way.

Each object gets `read_digest`: a digest of the object as read (fingerprints),
which other plugins may use to key caches of their own (feeds, mail_posts).
A post dated after the build time is never cached: Pelican made it a draft
today, and it must go live by itself once its date has passed.
"""
import gc
import logging
import os
import pickle
import time
from io import BytesIO

from pelican.contents import Page, SkipStub

from . import pelican_internals
from .fingerprints import read_digest
from .frozen_urls import freeze
from .split import Split

logger = logging.getLogger(__name__)

# The reads whose jobs forked helpers inherit: set only while helpers run.
_forking = None


class _Pickler(pickle.Pickler):
    """Pickles content objects with the settings and the shared context by reference: every object holds both."""

    def __init__(self, file, settings, context):
        super().__init__(file, pickle.HIGHEST_PROTOCOL)
        self.settings, self.context = settings, context

    def persistent_id(self, obj):
        if obj is self.settings:
            return "settings"
        if obj is self.context:
            return "context"
        return None


def unpickled(data, settings, context):
    unpickler = pickle.Unpickler(BytesIO(data))
    unpickler.persistent_load = {"settings": settings, "context": context}.__getitem__
    return unpickler.load()


def settle(content):
    """Compute, before the object is pickled, what Pelican computes on first use from the object and the
    settings alone: the category's, tags' and authors' slugs, and the url and save_as that frozen_urls
    caches. Objects from the cache then come back with them."""
    wrappers = [getattr(content, "category", None), *getattr(content, "tags", ()), *getattr(content, "authors", ())]
    for wrapper in wrappers:
        if wrapper is not None:
            _ = wrapper.slug
    attributes = vars(content)
    attributes["url"], attributes["save_as"] = content.url, content.save_as


def pickled(content, settings, context) -> tuple[bytes, bytes | None]:
    """The object settled and pickled, and its read digest: what the cache keeps and a helper sends back."""
    settle(content)
    vars(content).pop("read_digest", None)
    buffer = BytesIO()
    _Pickler(buffer, settings, context).dump(content)
    data = buffer.getvalue()
    return data, read_digest(data)


def stamp(path):
    """What says a source file changed: its modification time in nanoseconds and its size."""
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size


def fork_pool(workers: int):
    """A pool of forked workers; objects alive now are frozen so the workers' GC leaves them shared."""
    gc.collect()
    gc.freeze()
    try:
        import multiprocessing  # here: a warm rebuild forks nothing

        return multiprocessing.get_context("fork").Pool(workers)
    finally:
        gc.unfreeze()


def _read(index):
    """In a helper: build one content object as Pelican would; return it pickled (None: the main process
    reads it again, and reports what is wrong)."""
    reads = _forking
    base_path, name = reads.jobs[index]
    try:
        content = reads.read_file(base_path, name, **reads.kwargs)
        if isinstance(content, SkipStub) or not content.is_valid():
            return index, None
        return index, pickled(content, reads.generator.settings, reads.kwargs["context"])
    except Exception:  # noqa: BLE001 - Pelican reads it again in the main process and reports it
        return index, None


def _read_share(_):
    """In a helper: read files from the front of the list until the main process, reading from the back,
    is met."""
    return [_read(index) for index in iter(_forking.split.next_front, None)]


class PrefetchingReads:
    """Stands in for one generator's `readers.read_file` (pelican_internals 1): its first call reads all the
    generator's files at once."""

    def __init__(self, generator, run, paths_key, excludes_key):
        self.generator, self.run = generator, run
        self.read_file = pelican_internals.original_read_file(generator.readers)
        self.keys = (paths_key, excludes_key)
        self.results = None
        self.jobs, self.kwargs, self.split = [], {}, None
        self.cache_file = f"FastBuild-{type(generator).__name__}" if run.cache else None
        self.cached = run.cache.load(self.cache_file, {}) if run.cache else {}  # path: (stamp, pickle, digest)
        self.fresh = {}  # the same for this build: what gets saved

    def __call__(self, base_path, path, content_class=Page, fmt=None, context=None, **kwargs):
        if self.results is None:
            self.results = {}
            self.prefetch(base_path, dict(content_class=content_class, fmt=fmt, context=context, **kwargs))
        full = os.path.abspath(os.path.join(base_path, path))
        found = self.results.pop(full, None)
        if found is not None:
            return freeze(found)
        content = self.read_file(base_path, path, content_class=content_class, fmt=fmt, context=context, **kwargs)
        if not isinstance(content, SkipStub) and content.is_valid():
            self.remember(full, content, context)
        return freeze(content)

    def remember(self, path, content, context, data=None, digest=None):
        """Digest an object built in this run (pickling it if no helper did), and keep it for the next run."""
        try:
            if data is None:
                data, digest = pickled(content, self.generator.settings, context)
        except Exception as error:  # noqa: BLE001 - the cache is only an accelerator; Pelican reports bad content
            logger.debug("fast_build: cannot cache %s: %s", path, error)
            return
        if self.run.cache is not None and not pelican_internals.is_future(content):
            self.fresh[path] = (stamp(path), data, digest)
        self.known(content, digest)

    def known(self, content, digest):
        """The object as read: its digest on it, for the page fingerprints and other plugins."""
        if digest is not None:
            content.read_digest = digest
        if self.run.pages is not None:
            self.run.pages.fingerprints.read(content, digest)

    def prefetch(self, base_path, kwargs):
        """Take unchanged files' objects from the cache; build the others here and in forked helpers."""
        global _forking
        generator, settings, context = self.generator, self.generator.settings, kwargs["context"]
        started = time.perf_counter()
        names = []
        for name in sorted(generator.get_files(settings[self.keys[0]], exclude=settings[self.keys[1]])):
            if generator.get_cached_data(name, None) is not None:
                continue  # Pelican's generator-level cache has it
            path = os.path.abspath(os.path.join(base_path, name))
            entry = self.cached.get(path)
            if entry is not None and len(entry) == 3 and entry[0] == stamp(path):
                content = unpickled(entry[1], settings, context)
                self.results[path] = content
                self.fresh[path] = entry
                self.known(content, entry[2])
            else:
                names.append(name)
        hits = len(self.results)
        workers = self.run.workers
        if workers > 1 and len(names) >= self.run.min_batch:
            self.jobs, self.kwargs, self.split = [(base_path, name) for name in names], kwargs, Split(len(names))
            _forking = self
            pool = fork_pool(workers - 1)
            try:
                shares = pool.map_async(_read_share, range(workers - 1))
                pool.close()
                while (index := self.split.next_back()) is not None:  # the main process reads too, from the back
                    path = os.path.abspath(os.path.join(base_path, names[index]))
                    content = self.read_file(base_path, names[index], **kwargs)
                    self.results[path] = content
                    if not isinstance(content, SkipStub) and content.is_valid():
                        self.remember(path, content, context)
                done = shares.get()
                pool.join()  # the helpers' memory is given back before their objects are unpickled here
                for index, result in (item for share in done for item in share):
                    if result is None:
                        continue  # Pelican reads it again, and reports what is wrong
                    path = os.path.abspath(os.path.join(base_path, names[index]))
                    content = self.results[path] = unpickled(result[0], settings, context)
                    self.remember(path, content, context, *result)
            finally:
                pool.close()
                pool.join()
                _forking = None
                self.jobs, self.kwargs, self.split = [], {}, None
        logger.debug("fast_build: %d objects from the cache, %d built on %d processes, in %.2f s", hits,
                     len(self.results) - hits, max(workers, 1), time.perf_counter() - started)

    def save(self):
        """Write this run's objects for the next one (into the run's private cache folder)."""
        if self.cache_file is None or self.results is None:
            return
        self.run.cache.save(self.cache_file, self.fresh)
        self.cached, self.fresh, self.cache_file = {}, {}, None  # saved once; megabytes of pickles let go
