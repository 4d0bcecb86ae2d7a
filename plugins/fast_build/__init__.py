"""Build on every core and rebuild only what changed, with Pelican's output byte for byte.

- reading (reading.py): a generator's Markdown files are read all at once, by
  forked helpers and the main process (split), each on one reused Markdown
  parser (markdown_reader); unchanged files' objects come from the content cache;
- writing (writer.py, incremental.py): a page whose fingerprint (fingerprints:
  the templates it is rendered with and the values they read) is the one it
  had when the last build wrote it, and whose file is still that one, is
  neither rendered nor written: editing one post of 1,000 renders ~20 pages;
- the content cache, the pages manifest and Jinja's compiled templates live in
  one folder per site and settings under CACHE_PATH, replaced atomically at the
  end of a good run (run.py);
- Pelican's tag, category and author pages are made in linear time (scaling).

Everything a run knows lives in one Run object (run.py), made when the run
starts and closed when it ends: two runs in one process (`pelican --autoreload`,
the dev server) give the bytes of two fresh processes. Every Pelican internal
the accelerator relies on is named in pelican_internals.py; on a Pelican it was
not tested with, or with a plugin it does not know, it steps aside with one
warning and Pelican builds alone. Staging (never leaving a half-built site) is
not done here but by whoever starts the build (sitebuild), which points
FAST_BUILD_LIVE_OUTPUT at the live site when OUTPUT_PATH is a staging folder.

Settings:
    FAST_BUILD: False turns all this off (a plain Pelican build).
    FAST_BUILD_WORKERS: processes that read, the main process included; 0
        (default) means one per usable core, 1 the main process alone.
    FAST_BUILD_MIN_BATCH: fewer files than this are read in the main process
        alone, where forking would cost more than it saves (default 16).
    FAST_BUILD_TRUSTED_PLUGINS: other plugins' names to run with the accelerator
        (it steps aside for any plugin it does not know).
    FAST_BUILD_LIVE_OUTPUT: the folder the site is served from, when OUTPUT_PATH
        is a staging folder that will be moved into it; unchanged pages are left
        there and announced under that path by content_written. Default: OUTPUT_PATH.
"""
import jinja2
from pelican import signals
from pelican.generators import ArticlesGenerator

from . import pelican_internals
from .frozen_urls import freeze_urls
from .markdown_reader import reuse_markdown
from .reading import PrefetchingReads
from .run import finish, run_of, start
from .scaling import identity_taxonomies


def start_run(pelican_object):
    """get_generators: a run starts; it adds no generator."""
    start(pelican_object)


def get_writer(pelican_object):
    """get_writer: Pelican asks plugins for a writer class before any generator writes."""
    run = run_of(pelican_object.settings)
    if run is not None and run.enabled:
        from .writer import FastWriter

        return FastWriter
    return None


def compiled_templates(generator):
    """generator_init: keep Jinja's compiled templates in the site cache (keyed by source checksum by Jinja)."""
    run = run_of(generator.settings)
    env = getattr(generator, "env", None)
    if run is not None and run.cache is not None and env is not None and env.bytecode_cache is None:
        env.bytecode_cache = jinja2.FileSystemBytecodeCache(run.cache.jinja_folder())


def reuse_markdown_when_on(readers):
    run = run_of(readers.settings)
    if run is not None and run.enabled:
        reuse_markdown(readers)


def read_in_parallel(generator):
    """article_generator_init, page_generator_init: the generator exists and has not read anything yet."""
    run = run_of(generator.settings)
    if run is None or not run.enabled or (run.workers < 2 and run.cache is None):
        return
    kind = "ARTICLE" if isinstance(generator, ArticlesGenerator) else "PAGE"
    reads = PrefetchingReads(generator, run, f"{kind}_PATHS", f"{kind}_EXCLUDES")
    run.reads.append(reads)
    pelican_internals.replace_read_file(generator.readers, reads)
    if run.cache is not None:
        pelican_internals.reader_cache_off(generator.readers)
    pelican_internals.generator_cache_off(generator)


def save_objects(generator):
    """article_generator_finalized, page_generator_finalized: the generator has read all its files; save its
    objects for the next run now, and drop their pickles from memory."""
    run = run_of(generator.settings)
    reads = pelican_internals.replaced_read_file(generator.readers)
    if run is not None and isinstance(reads, PrefetchingReads):
        reads.save()


def linear_taxonomies(generator):
    """article_generator_pretaxonomy: tag, category and author pages in linear time (scaling)."""
    run = run_of(generator.settings)
    if run is not None and run.enabled:
        identity_taxonomies(generator)


def freeze_urls_when_on(generators):
    run = run_of(generators[0].settings) if generators else None
    if run is not None and run.enabled:
        freeze_urls(generators)


def finish_run(pelican_object):
    """finalized: every page is written; save and publish the cache for the next run."""
    finish(pelican_object)


def register():
    # get_generators: sent at the start of every run(), before any generator, reader or writer exists.
    signals.get_generators.connect(start_run)
    # readers_init: the reader classes are chosen and no reader exists yet.
    signals.readers_init.connect(reuse_markdown_when_on)
    # *_generator_init: the generator's Readers exist and no file has been read yet.
    signals.article_generator_init.connect(read_in_parallel)
    signals.page_generator_init.connect(read_in_parallel)
    # *_generator_finalized: the generator has read all its files.
    signals.article_generator_finalized.connect(save_objects)
    signals.page_generator_finalized.connect(save_objects)
    # article_generator_pretaxonomy: posts are read, not yet filed under their tags, categories and authors.
    signals.article_generator_pretaxonomy.connect(linear_taxonomies)
    # generator_init: the generator's Jinja environment exists and has compiled nothing yet.
    signals.generator_init.connect(compiled_templates)
    # all_generators_finalized: content is final; every object gets its URLs cached.
    signals.all_generators_finalized.connect(freeze_urls_when_on)
    # get_writer: the supported way to replace Pelican's writer.
    signals.get_writer.connect(get_writer)
    # finalized: sent at the end of a run that went through.
    signals.finalized.connect(finish_run)
