"""Build on every core, rebuild only what changed, and never leave a half-built site.

Pelican reads Markdown and renders pages one after the other, on one core, into
the output folder as it goes. This plugin keeps Pelican's order of work and its
output, byte for byte, but:

- reads the Markdown files on every core, all at once, as soon as a generator
  is about to read its first file: forked helpers take files from the start of
  the list and the main process from the end until they meet (split), each on
  one reused Markdown parser (markdown_reader); the helpers' objects come back
  pickled, which is also what the content cache keeps;
- supplies a writer that collects the pages a generator asks for and renders
  those that changed; with FAST_BUILD_RENDER_WORKERS > 1, forked helpers render
  from the start of the batch (templates and context inherited, nothing
  pickled) while the main process goes on with feeds, sitemap and mail
  records, then renders from the end until they meet;
- writes into a staging folder beside OUTPUT_PATH and moves the files into it
  only at the end of a good build (staging); a page whose fingerprint
  (fingerprints: the templates it is rendered with and the values they read) is
  the one it had when the last build wrote it, and whose file is still that
  one, is neither rendered nor written (incremental): editing one post of 1,000
  renders ~20 pages;
- keeps the content cache (CACHE_CONTENT), the pages manifest and Jinja's
  compiled templates in one folder per site and settings under CACHE_PATH,
  replaced atomically at the end of a good build, so two builds at once never
  read a half-written cache and a settings change never reuses stale objects.

Settings:
    FAST_BUILD: False turns all this off (a plain sequential build, every page
        rendered), except the staging folder.
    FAST_BUILD_WORKERS: processes that read, the main process included; 0
        (default) means one per usable core, 1 the main process alone.
    FAST_BUILD_RENDER_WORKERS: the same for rendering pages; 1 (default): the
        main process alone. A forked renderer touches every post, so copy-on-write
        gives it a private copy of most of the build's memory (about 25 MB for
        1,000 posts, +45% over stock Pelican's peak) to save about 0.15 s.
    FAST_BUILD_MIN_BATCH: fewer files than this are read in the main process, and
        fewer pages than 8 times this rendered there, where forking would cost
        more than it saves (default 16).
"""
import atexit
import gc
import hashlib
import logging
import os
import pickle
import re
import shutil
import tempfile
import time
import traceback
from io import BytesIO

import jinja2
import markdown
import pelican
from pelican import signals
from pelican.generators import ArticlesGenerator
from pelican.paginator import Paginator
from pelican.contents import Page, SkipStub
from pelican.utils import get_relative_path, path_to_url, sanitised_join
from pelican.writers import FileOverwriteFailedError, Writer

from .fingerprints import read_digest
from .frozen_urls import freeze, freeze_urls
from .markdown_reader import reuse_markdown
from .split import Split
from .incremental import Build

logger = logging.getLogger(__name__)

DEFAULTS = {"FAST_BUILD": True, "FAST_BUILD_WORKERS": 0, "FAST_BUILD_RENDER_WORKERS": 1, "FAST_BUILD_MIN_BATCH": 16}
# Settings that change on every build without changing what is read.
VOLATILE_SETTINGS = {"OUTPUT_PATH", "CACHE_PATH", "CACHE_CONTENT", "LOAD_CONTENT_CACHE", "PORT", "MAIL_POSTS_PATH"}
STALE_TEMP_SECONDS = 3600
# A page renders in well under a millisecond, a forked pool costs tens: small batches render in place.
RENDER_BATCH_FACTOR = 8
UNUSED_DAYS = 7

# What forked workers inherit: set in the main process just before forking.
_jobs = []
_split = [None]  # the Split of those jobs (a lock travels only by inheritance)
# Writers of this process whose pages may still be rendering (Pelican keeps the instance to itself).
_writers = []
# id(settings): the shared site cache folder of the builds of this process (compiled templates live there).
_site_caches = {}
# id(settings): the build under way (staging folder, page fingerprints, pages manifest).
_builds = {}


def config(settings) -> dict:
    """FAST_BUILD_* merged over the defaults; a bad value is reported once and replaced by its default."""
    merged = {**DEFAULTS, **{k: v for k, v in settings.items() if k.startswith("FAST_BUILD")}}
    for key in ("FAST_BUILD_WORKERS", "FAST_BUILD_RENDER_WORKERS", "FAST_BUILD_MIN_BATCH"):
        if not isinstance(merged[key], int) or isinstance(merged[key], bool) or merged[key] < 0:
            logger.error("fast_build: %s must be a whole number >= 0, not %r", key, merged[key])
            merged[key] = DEFAULTS[key]
    return merged


def worker_count(settings, key="FAST_BUILD_WORKERS") -> int:
    """Processes that share reading (or, with FAST_BUILD_RENDER_WORKERS, rendering), the main process
    included (it forks one fewer): 0 when the plugin is off or one process is all there is."""
    conf = config(settings)
    if not conf["FAST_BUILD"]:
        return 0
    workers = conf[key] or len(os.sched_getaffinity(0))
    return workers if workers > 1 else 0


def fork_pool(workers: int):
    """A pool of forked workers; objects alive now are frozen so the workers' GC leaves them shared."""
    gc.collect()
    gc.freeze()
    try:
        import multiprocessing  # here: a warm rebuild forks nothing

        return multiprocessing.get_context("fork").Pool(workers)
    finally:
        gc.unfreeze()


# The settings and the shared context travel by reference: every content object holds both.
class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if obj is _shared[0]:
            return "settings"
        if obj is _shared[1]:
            return "context"
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, settings, context):
        super().__init__(BytesIO(data))
        self.shared = {"settings": settings, "context": context}

    def persistent_load(self, pid):
        return self.shared[pid]


_shared = (None, None)


# Reading ---------------------------------------------------------------------------

def _read(index):
    """In a worker: build one content object as Pelican would; return it pickled.

    None: let Pelican do it in the main process.
    """
    read_file, base_path, name, kwargs = _jobs[index]
    try:
        content = read_file(base_path, name, **kwargs)
        if isinstance(content, SkipStub) or not content.is_valid():
            return index, None
        # Only the finished object comes back: this plugin caches whole objects, so the reader's own
        # cache entry (Markdown output and metadata again) would be pickled for nothing.
        return index, pickled(content)
    except Exception:  # Pelican reads it again in the main process and reports the problem its way
        return index, None


def pickled(content) -> tuple[bytes, bytes | None]:
    """The object settled and pickled (settings and shared context by reference, see _shared), and its
    read digest: what the content cache keeps and what a helper sends back."""
    settle(content)
    buffer = BytesIO()
    _Pickler(buffer, pickle.HIGHEST_PROTOCOL).dump(content)
    data = buffer.getvalue()
    return data, read_digest(data)


def _read_share(_):
    """In a helper: read files from the front of the list until the main process, reading from the back,
    is met."""
    return [_read(index) for index in iter(_split[0].next_front, None)]


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


class PrefetchingReads:
    """Stands in for a generator's `readers.read_file`: its first call reads all the generator's files at once.

    Each file is read, turned into a content object and passed through
    content_object_init, exactly as Readers.read_file does, here or in a forked
    helper; a helper's object comes back pickled, with the settings and the
    shared context restored by reference. Unchanged files come from the cache. No signal hands a read result back to Pelican, hence
    this stand-in on the one generator's Readers instance. Handlers of
    content_object_init and *_generator_preread/context must therefore only
    change the object they are given (true of this project's plugins).
    A file a worker could not build is read here, by Pelican, as usual.
    """

    def __init__(self, generator, paths_key, excludes_key):
        self.generator = generator
        self.readers = generator.readers
        self.read_file = generator.readers.read_file
        self.keys = (paths_key, excludes_key)
        self.results = None
        settings = generator.settings
        self.caching = bool(settings.get("CACHE_CONTENT"))
        self.cache_file = os.path.join(settings["CACHE_PATH"], f"FastBuild-{type(generator).__name__}")
        self.cached = {}  # path: (file stamp, pickled object), from the previous build
        self.fresh = {}   # the same for this build: what gets saved
        if self.caching and settings.get("LOAD_CONTENT_CACHE"):
            try:
                with open(self.cache_file, "rb") as file:
                    self.cached = pickle.load(file)
            except (OSError, EOFError, pickle.PickleError, ValueError, TypeError):
                self.cached = {}

    def __call__(self, base_path, path, content_class=Page, fmt=None, context=None, **kwargs):
        if self.results is None:
            self.results = {}
            self.prefetch(base_path, dict(content_class=content_class, fmt=fmt, context=context, **kwargs))
        full = os.path.abspath(os.path.join(base_path, path))
        found = self.results.pop(full, None)
        if found is not None:
            return freeze(found)
        content = self.read_file(base_path, path, content_class=content_class, fmt=fmt, context=context, **kwargs)
        if self.caching and not isinstance(content, SkipStub) and content.is_valid():
            self.remember(full, content, context)
        return freeze(content)

    def remember(self, path, content, context):
        """Keep the pickled object of a file read here, for the next build."""
        global _shared
        _shared = (self.generator.settings, context)
        try:
            data, digest = pickled(content)
            self.fresh[path] = (stamp(path), data, digest)
            self.fingerprint(content, digest)
        except Exception as error:  # noqa: BLE001 - the cache is only an accelerator; Pelican reports bad content
            logger.debug("fast_build: cannot cache %s: %s", path, error)
        finally:
            _shared = (None, None)

    def fingerprint(self, content, digest):
        """Tell the page fingerprints what this object was when read."""
        build = _builds.get(id(self.generator.settings))
        if build is not None and build.fingerprints is not None:
            build.fingerprints.read(content, digest)

    def prefetch(self, base_path, kwargs):
        """Take unchanged files' objects from the cache; build the others here and in forked workers."""
        global _jobs, _shared
        generator, settings, context = self.generator, self.generator.settings, kwargs["context"]
        started = time.perf_counter()
        names = []
        for name in sorted(generator.get_files(settings[self.keys[0]], exclude=settings[self.keys[1]])):
            if generator.get_cached_data(name, None) is not None:
                continue  # Pelican's generator-level cache has it
            path = os.path.abspath(os.path.join(base_path, name))
            entry = self.cached.get(path)
            if entry is not None and len(entry) == 3 and entry[0] == stamp(path):
                content = _Unpickler(entry[1], settings, context).load()
                self.results[path] = content
                self.fresh[path] = entry
                self.fingerprint(content, entry[2])
            else:
                names.append(name)
        hits = len(self.results)
        workers = worker_count(settings)
        if workers and len(names) >= config(settings)["FAST_BUILD_MIN_BATCH"]:
            _jobs = [(self.read_file, base_path, name, kwargs) for name in names]
            _shared = (settings, context)
            split = _split[0] = Split(len(names))
            pool = fork_pool(workers - 1)
            try:
                shares = pool.map_async(_read_share, range(workers - 1))
                pool.close()
                while (index := split.next_back()) is not None:  # the main process reads too, from the back
                    path = os.path.abspath(os.path.join(base_path, names[index]))
                    content = self.read_file(base_path, names[index], **kwargs)
                    self.results[path] = content
                    if self.caching and not isinstance(content, SkipStub):
                        self.remember(path, content, context)
                done = shares.get()
                pool.join()  # the helpers' memory is given back before their objects are unpickled here
                for index, result in (item for share in done for item in share):
                    if result is None:
                        continue  # Pelican reads it again, and reports what is wrong
                    data, digest = result
                    content = _Unpickler(data, settings, context).load()
                    path = os.path.abspath(os.path.join(base_path, names[index]))
                    self.results[path] = content
                    if self.caching:
                        self.fresh[path] = (stamp(path), data, digest)
                        self.fingerprint(content, digest)
            finally:
                pool.close()
                pool.join()
                _jobs, _shared = [], (None, None)
        logger.debug("fast_build: %d objects from the cache, %d built on %d workers, in %.2f s", hits,
                     len(self.results) - hits, workers, time.perf_counter() - started)

    def save(self):
        """Write this build's objects for the next one (into the private cache folder, published at the end)."""
        if not self.caching or self.results is None:
            return
        os.makedirs(os.path.dirname(self.cache_file), exist_ok=True)
        with open(self.cache_file, "wb") as file:
            pickle.dump(self.fresh, file, pickle.HIGHEST_PROTOCOL)
        self.cached, self.fresh = {}, {}  # megabytes of pickles the render workers need not inherit


def stamp(path):
    """What says a source file changed: its modification time in nanoseconds and its size."""
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size


def read_in_parallel(generator):
    """article_generator_init, page_generator_init: the generator exists and has not read anything yet."""
    settings = generator.settings
    if not (worker_count(settings) or (config(settings)["FAST_BUILD"] and settings.get("CACHE_CONTENT"))):
        return
    kind = "ARTICLE" if isinstance(generator, ArticlesGenerator) else "PAGE"
    generator.readers.read_file = PrefetchingReads(generator, f"{kind}_PATHS", f"{kind}_EXCLUDES")
    # Whole objects are cached here: Pelican's reader cache (Readers is a FileDataCacher) would keep, and
    # save, each file's HTML once more for nothing.
    generator.readers._cache_data_policy = False
    generator.readers._cache = {}
    if not generator._cache_data_policy:  # no generator-level cache (CONTENT_CACHING_LAYER is not "generator"),
        # yet Pelican would stat every file three times to look in it and to store into it
        generator.get_cached_data = lambda filename, default=None: default
        generator.cache_data = lambda filename, data: None


def save_objects(generator):
    """article_generator_finalized, page_generator_finalized: every file of the generator has been read."""
    reads = getattr(generator, "readers", None) and vars(generator.readers).get("read_file")
    if isinstance(reads, PrefetchingReads):
        reads.save()


# Writing ---------------------------------------------------------------------------

def _render(indices):
    """Render and write some pages (here, or in a helper); indices may be any iterable, read lazily.

    Returns the failed indices with their tracebacks, and the fingerprints of the
    pages that were left to be fingerprinted where they are rendered.
    """
    failed, fingerprints = [], []
    for index in indices:
        template, extras, context, path, deferred = _jobs[index]
        try:
            if deferred is not None:
                fingerprints.append((deferred[1], deferred[0].fingerprints.page(template, extras, context)))
            _write(template, extras, context, path)
            logger.info('Writing "%s"', path)
        except Exception:
            failed.append((index, traceback.format_exc()))
    return failed, fingerprints


def _render_share(_):
    """In a helper: render pages from the front of the batch until the main process is met."""
    return _render(iter(_split[0].next_front, None))


def _write(template, extras, context, path):
    """Writer.write_file's rendering and writing of one page (Pelican 4.12).

    extras: what the page's local context has on top of the shared context; the whole local context is made
    only now, page by page, as Pelican's writer does (queued copies of a 300-key context, one per page, would
    weigh tens of megabytes in the main process and in every worker)."""
    localcontext = {**context, **extras}
    if localcontext["localsiteurl"]:
        context["localsiteurl"] = localcontext["localsiteurl"]
    output = template.render(localcontext)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(output)


class ParallelWriter(Writer):
    """Pelican's Writer, except that write_file only queues a page; queued pages render in forked workers and here.

    A batch starts when a generator has finished asking (article_writer_finalized,
    page_writer_finalized) and is waited for at `finalized`, or at once when some
    plugin listens to content_written (it may read the file). content_written is
    sent for every page, in Pelican's order, once the page is on disk. A second
    write to a path still queued or rendering waits for the first to land.
    """

    def __init__(self, output_path, settings=None):
        super().__init__(output_path, settings=settings)
        self.workers = worker_count(self.settings, "FAST_BUILD_RENDER_WORKERS")
        self.min_batch = config(self.settings)["FAST_BUILD_MIN_BATCH"]
        self.queue = []      # (template, extras of the local context, context, path, deferred fingerprint)
        self.running = []    # (pool, async result, jobs)
        self.in_flight = set()
        _writers.append(self)

    def _claim(self, filename, override):
        """Pelican's _open_w bookkeeping without opening the file: the path to write, or os.devnull."""
        if filename in self.in_flight:
            self.start()  # the earlier write must land before this one replaces it
            self.wait()
        if filename in self._overridden_files:
            if override:
                raise FileOverwriteFailedError(
                    f'Failed to overwrite "{filename}" a second time (was previously overwritten)')
            logger.info('Skipping "%s", not overwriting', filename)
            return os.devnull
        if filename in self._written_files:
            if override:
                logger.info('Overwriting "%s"', filename)
            else:
                raise FileOverwriteFailedError(
                    f'Failed to overwrite "{filename}" as Pelican has already written to it previously '
                    "(set `override=True` if intended)")
        if override:
            self._overridden_files.add(filename)
        self._written_files.add(filename)
        return filename

    def write_file(self, name, template, context, relative_urls=False, paginated=None, template_name=None,
                   override_output=False, url=None, **kwargs):
        """Same pages, names and local contexts as Writer.write_file (Pelican 4.12), queued instead of written.

        A page whose fingerprint is the one it had when the last build wrote it, and whose file in output/
        is still that build's, is not rendered: it is kept where it is.
        """
        if not name:
            return
        build = _builds.get(id(self.settings))

        def queue(extras, save_as):
            path = self._claim(sanitised_join(self.output_path, save_as), override_output)
            deferred = None  # (build, relative path): fingerprinted where it is rendered
            if build is not None and path != os.devnull:
                prefix = os.path.join(self.output_path, "")  # (os.path.relpath costs more than the page)
                relative = path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, self.output_path)
                if build.keep(relative, template, extras, context):
                    signals.content_written.send(os.path.join(build.staging.output, relative),
                                                 context={**context, **extras})
                    return
                if relative in build.deferred:
                    deferred = (build, relative)
            self.in_flight.add(path)
            self.queue.append((template, extras, context, path, deferred))

        def local(save_as, extra):
            """What Writer.write_file puts in a copy of the context, without the copy."""
            extras = {"localsiteurl": context.get("localsiteurl", None)}
            if relative_urls:
                relative_url = path_to_url(get_relative_path(save_as))
                extras["SITEURL"] = relative_url
                extras["localsiteurl"] = relative_url
            extras["output_file"] = save_as
            extras.update(extra)
            return extras

        if paginated is None:
            paginated = {key: val for key, val in kwargs.items() if key in {"articles", "dates"}}
        if paginated and template_name in self.settings["PAGINATED_TEMPLATES"]:
            per_page = self.settings["PAGINATED_TEMPLATES"][template_name] or self.settings["DEFAULT_PAGINATION"]
            paginators = {key: Paginator(name, url, val, self.settings, per_page) for key, val in paginated.items()}
            for page_num in range(next(iter(paginators.values())).num_pages):
                paginated_kwargs = kwargs.copy()
                for key, paginator in paginators.items():
                    previous_page = paginator.page(page_num) if page_num > 0 else None
                    page = paginator.page(page_num + 1)
                    next_page = paginator.page(page_num + 2) if page_num + 1 < paginator.num_pages else None
                    paginated_kwargs.update({f"{key}_paginator": paginator, f"{key}_page": page,
                                             f"{key}_previous_page": previous_page,
                                             f"{key}_next_page": next_page})
                queue(local(page.save_as, paginated_kwargs), page.save_as)
        else:
            queue(local(name, kwargs), name)

    def start(self):
        """Start rendering what is queued: in forked workers (and later here) when it is worth it, else here."""
        global _jobs
        jobs, self.queue = self.queue, []
        if not jobs:
            return
        _jobs = jobs
        if not self.workers or len(jobs) < RENDER_BATCH_FACTOR * self.min_batch:
            try:
                self._finish(jobs, *_render(range(len(jobs))))
            finally:
                _jobs = []
            return
        split = _split[0] = Split(len(jobs))
        pool = fork_pool(self.workers - 1)
        _jobs = []
        self.running.append((pool, pool.map_async(_render_share, range(self.workers - 1)), jobs, split))
        pool.close()
        if signals.content_written.receivers:
            self.wait()

    def wait(self):
        """Render here the pages of every started batch the helpers have not taken (from the back), wait
        for theirs, render again here what a helper failed, then signal."""
        global _jobs
        while self.running:
            pool, result, jobs, split = self.running.pop(0)
            _jobs = jobs
            try:
                failed, fingerprints = _render(iter(split.next_back, None))
            finally:
                _jobs = []
            for share_failed, share_fingerprints in result.get():
                failed += share_failed
                fingerprints += share_fingerprints
            pool.join()
            self._finish(jobs, failed, fingerprints)

    def _finish(self, jobs, failed, fingerprints):
        for index, trace in failed:
            template, extras, context, path, deferred = jobs[index]
            logger.debug("fast_build: rendering %s again in the main process:\n%s", path, trace)
            if deferred is not None:
                fingerprints.append((deferred[1], deferred[0].fingerprints.page(template, extras, context)))
            _write(template, extras, context, path)  # raises here, with Pelican's handling, if it must
        build = _builds.get(id(self.settings))
        if build is not None:
            build.rendered_count += len(jobs)
            build.rendering.update((relative, fingerprint) for relative, fingerprint in fingerprints if fingerprint)
        listening = bool(signals.content_written.receivers)
        for template, extras, context, path, _ in jobs:
            self.in_flight.discard(path)
            if listening:
                signals.content_written.send(path, context={**context, **extras})


def compiled_templates(generator):
    """generator_init: keep Jinja's compiled templates in the site cache (keyed by source checksum by Jinja)."""
    shared = _site_caches.get(id(generator.settings))
    env = getattr(generator, "env", None)
    if shared is not None and env is not None and env.bytecode_cache is None:
        folder = os.path.join(shared, "jinja")
        os.makedirs(folder, exist_ok=True)
        env.bytecode_cache = jinja2.FileSystemBytecodeCache(folder)


def get_writer(pelican_object):
    """get_writer: Pelican asks plugins for a writer class before any generator writes."""
    return ParallelWriter if config(pelican_object.settings)["FAST_BUILD"] else None


def read_digest_of(content) -> bytes | None:
    """The digest of a post or page as it was read (fingerprints), for plugins that key their own caches on
    one (feeds, mail_posts): everything read from the file and the settings, url and save_as included.
    None when this plugin did not read it, or when its text links to other content."""
    for build in _builds.values():
        known = build.fingerprints.objects.get(id(content)) if build.fingerprints is not None else None
        if known is not None and known[0] is content:
            return known[1]
    return None


def start_batch(generator, writer):
    """article_writer_finalized, page_writer_finalized: the generator has queued all its pages."""
    if isinstance(writer, ParallelWriter):
        writer.start()


def finish(pelican_object):
    """finalized: every page staged, then moved into output/; then the cache is published."""
    while _writers:
        writer = _writers.pop()
        writer.start()
        writer.wait()
    build = _builds.pop(id(pelican_object.settings), None)
    if build is not None:
        build.publish(pelican_object)
    publish_cache(pelican_object)
    # Everything is written and closed (every write here and in Pelican is in a `with`). The build's objects
    # die with the process: the interpreter's last collection need not walk them (~0.04 s of a warm rebuild).
    atexit.register(gc.freeze)


class PagesLanded:
    """A last generator (Pelican runs plugins' generators after its own, before the static files): its
    output step waits for the pages still rendering, so a page that fails stops the build before
    `finalized`, where other plugins commit what a good build produced (mail_posts)."""

    def __init__(self, *args, **kwargs):
        pass

    def generate_output(self, writer):
        if isinstance(writer, ParallelWriter):
            writer.start()
            writer.wait()


def stage_output(pelican_object):
    """get_generators: the run starts; its generators will write where output_path then says."""
    settings = pelican_object.settings
    incremental = config(settings)["FAST_BUILD"] and id(settings) in _site_caches  # the cache folder is ready
    _builds[id(settings)] = Build(pelican_object, settings["CACHE_PATH"] if incremental else None)
    return PagesLanded


# Content cache ---------------------------------------------------------------------

def stable(value) -> str:
    """A repr that is the same in every process: sets sorted, object addresses dropped."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{stable(k)}: {stable(v)}" for k, v in sorted(value.items(), key=lambda i: str(i[0]))) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(stable(v) for v in value) + "]"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(stable(v) for v in value)) + "}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def site_cache_key(settings) -> str:
    """What the cached reader output depends on: the content folder, the settings, Pelican and Markdown."""
    relevant = {k: v for k, v in settings.items() if k not in VOLATILE_SETTINGS}
    digest = hashlib.sha256()
    core = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "blogcore")  # the plugins' core package
    for folder in [*settings.get("PLUGIN_PATHS", []), core]:  # plugins change objects after reading (typography...)
        for root, dirs, files in sorted(os.walk(folder)):
            dirs.sort()
            for name in sorted(f for f in files if f.endswith(".py")):
                with open(os.path.join(root, name), "rb") as file:
                    digest.update(name.encode() + b"\0" + file.read())
    text = "\n".join([os.path.abspath(settings["PATH"]), pelican.__version__, markdown.__version__,
                      stable(relevant), digest.hexdigest()])
    name = os.path.basename(os.path.abspath(settings["PATH"])) or "site"
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def private_cache(pelican_object):
    """initialized: read and write the cache in a private copy of this site's cache folder."""
    settings = pelican_object.settings
    if not (config(settings)["FAST_BUILD"] and settings.get("CACHE_CONTENT")):
        return
    key = site_cache_key(settings)
    shared = os.path.join(settings["CACHE_PATH"], key)
    os.makedirs(shared, exist_ok=True)
    for entry in os.scandir(shared):  # private copies left by builds that crashed
        if entry.name.startswith(".build-") and entry.stat().st_mtime < time.time() - STALE_TEMP_SECONDS:
            shutil.rmtree(entry.path, ignore_errors=True)
    private = tempfile.mkdtemp(prefix=".build-", dir=shared)
    _site_caches[id(settings)] = shared
    if settings.get("LOAD_CONTENT_CACHE"):
        for entry in os.scandir(shared):
            if entry.is_file():
                shutil.copy2(entry.path, private)
    settings["CACHE_PATH"] = private
    pelican_object._fast_build_cache = (private, shared)


def publish_cache(pelican_object):
    """The build went through: its cache files replace the shared ones, each in one atomic rename."""
    private, shared = getattr(pelican_object, "_fast_build_cache", (None, None))
    if private is None:
        return
    os.makedirs(shared, exist_ok=True)  # pruned meanwhile by another build: the cache is only an accelerator
    for entry in os.scandir(private):
        if entry.is_file():
            os.replace(entry.path, os.path.join(shared, entry.name))
    shutil.rmtree(private, ignore_errors=True)
    source = os.path.abspath(pelican_object.settings["PATH"])
    with open(os.path.join(shared, "SOURCE"), "w", encoding="utf-8") as file:
        file.write(source)
    pelican_object.settings["CACHE_PATH"] = os.path.dirname(shared)
    _site_caches.pop(id(pelican_object.settings), None)
    prune(os.path.dirname(shared))


def prune(cache_root):
    """Drop site caches whose content folder is gone (tests' copies) or unused for UNUSED_DAYS."""
    for entry in os.scandir(cache_root):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            with open(os.path.join(entry.path, "SOURCE"), encoding="utf-8") as file:
                gone = not os.path.isdir(file.read())
            unused = time.time() - os.stat(os.path.join(entry.path, "SOURCE")).st_mtime > UNUSED_DAYS * 86400
        except OSError:
            continue  # not one of ours, or being written
        if gone or unused:
            shutil.rmtree(entry.path, ignore_errors=True)


def reuse_markdown_when_on(readers):
    if config(readers.settings)["FAST_BUILD"]:
        reuse_markdown(readers)


def freeze_urls_when_on(generators):
    if generators and config(generators[0].settings)["FAST_BUILD"]:
        freeze_urls(generators)


def register():
    # initialized: settings are final and no generator has loaded the cache yet.
    signals.initialized.connect(private_cache)
    # *_generator_init: the generator's Readers exist and no file has been read yet.
    signals.article_generator_init.connect(read_in_parallel)
    signals.page_generator_init.connect(read_in_parallel)
    # readers_init: the reader classes are chosen and no reader exists yet.
    signals.readers_init.connect(reuse_markdown_when_on)
    # *_generator_finalized: the generator has read all its files; keep their objects for the next build.
    signals.article_generator_finalized.connect(save_objects)
    signals.page_generator_finalized.connect(save_objects)
    # get_generators: sent at the start of each run, just before the generators get their output path.
    signals.get_generators.connect(stage_output)
    # get_writer: the supported way to replace Pelican's writer.
    signals.get_writer.connect(get_writer)
    # generator_init: the generator's Jinja environment exists and has compiled nothing yet.
    signals.generator_init.connect(compiled_templates)
    # *_writer_finalized: a generator has asked for all its pages; render them (in helpers, while Pelican
    # goes on, with FAST_BUILD_RENDER_WORKERS > 1).
    signals.article_writer_finalized.connect(start_batch)
    signals.page_writer_finalized.connect(start_batch)
    # all_generators_finalized: content is final; objects not read through PrefetchingReads get their
    # URLs cached too.
    signals.all_generators_finalized.connect(freeze_urls_when_on)
    # finalized: every page is written (PagesLanded waited for them); move the staging folder in, then
    # publish the cache.
    signals.finalized.connect(finish)
