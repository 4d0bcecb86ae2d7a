"""Every part of Pelican the accelerator uses that is not a public extension point, in one place.

Signals, `get_writer`, `readers_init`, reader classes and settings cover most
of fast_build. What they do not cover is here, each with the reason no public
hook serves:

1. `Readers.read_file`, replaced on one generator's Readers instance
   (replace_read_file): no signal hands a read object back to Pelican, and
   reading all files at once, on every core, needs the whole list first.
2. `FileDataCacher._cache_data_policy` and `._cache` (reader_cache_off): when
   whole objects are cached, Pelican's reader cache would pickle every post's
   HTML a second time; no setting turns it off without turning ours off. And
   a generator whose own cache is off (generator_cache_off) still stats, or
   hashes, every file three times to look into it and store into it.
3. `Writer.write_file` and `Writer._open_w`, copied by FastWriter (claim, and
   writer.py): a page whose inputs did not change must be neither rendered
   nor written, and write_file offers no hook between choosing a page and
   rendering it.
4. `MarkdownReader.read` and its `_md`, `_source_path`, `_parse_metadata`,
   copied by markdown_reader: Pelican builds one Markdown parser per file.
5. `Content.url`, `Content.save_as` and `Content.get_relative_source_path`,
   cached per object by frozen_urls through a subclass: Pelican recomputes
   them at every access, about a tenth of a build.
6. `Article.__init__`'s WITH_FUTURE_DATES rule (is_future): a post dated in
   the future is a draft today and public later, with no change to its file,
   so it is never taken from the cache.

Outside Pelican, fingerprints.py reads Jinja's `jinja2.utils._PassArg`, to
tell a global or filter that takes the whole context (pass_context); Jinja
has no public way to ask.

MIRRORED pins a digest of the source of each of these; the test suite
(tests/test_fast_build_internals.py) fails when Pelican changes one. At run
time, a Pelican version not in TESTED_VERSIONS, or a missing attribute, turns
the accelerator off with one warning: the build is then Pelican's own.
"""
import datetime
import hashlib
import importlib
import inspect
import os

import pelican
import pelican.contents
from pelican.cache import FileDataCacher
from pelican.contents import Article, Content
from pelican.readers import MarkdownReader, Readers
from pelican.writers import FileOverwriteFailedError, Writer

TESTED_VERSIONS = frozenset({"4.12.0"})

# Digest of each mirrored or relied-upon Pelican function's source (sha256 of inspect.getsource), for the tests.
MIRRORED = {
    "pelican.readers.Readers.read_file": "356c609e59c1b30a",
    "pelican.cache.FileDataCacher.__init__": "0e94df62b258a9c2",
    "pelican.cache.FileStampDataCacher.get_cached_data": "9e22f9c49dede667",
    "pelican.cache.FileStampDataCacher.cache_data": "1278c0b3c9b2ca32",
    "pelican.writers.Writer.write_file": "6a604ad67bbeec99",
    "pelican.writers.Writer._open_w": "69700ea0b4668663",
    "pelican.readers.MarkdownReader.read": "1c8cfd04d8822d57",
    "pelican.contents.Content.url": "7fd9b8dd55c6030b",
    "pelican.contents.Content.save_as": "4df34b66c0bf99bf",
    "pelican.contents.Content.get_relative_source_path": "6c1f5107e08bf7ea",
    "pelican.contents.Article.__init__": "9e11f533d98dbc1e",
}


def source_of(qualified: str):
    """The Pelican function a MIRRORED key names (a property gives its getter)."""
    module, cls, name = qualified.rsplit(".", 2)
    obj = vars(getattr(importlib.import_module(module), cls))[name]
    return obj.fget if isinstance(obj, property) else obj


def digest(qualified: str) -> str:
    """The first 16 hex digits of the sha256 of that object's source."""
    return hashlib.sha256(inspect.getsource(source_of(qualified)).encode()).hexdigest()[:16]


def problems() -> list[str]:
    """Why the accelerator cannot run on this Pelican (cheap: no source is read); [] when it can."""
    found = []
    if pelican.__version__ not in TESTED_VERSIONS:
        found.append(f"Pelican {pelican.__version__} is not a version it was tested with "
                     f"({', '.join(sorted(TESTED_VERSIONS))})")
    writer = Writer.__new__(Writer)
    try:
        Writer.__init__(writer, os.devnull, {})
    except Exception as error:  # noqa: BLE001 - any failure means the bookkeeping moved
        found.append(f"Writer() failed: {error}")
    else:
        for name in ("_written_files", "_overridden_files"):
            if not isinstance(getattr(writer, name, None), set):
                found.append(f"Writer.{name} is gone")
    for cls, name in ((FileDataCacher, "get_cached_data"), (MarkdownReader, "_parse_metadata"),
                      (Content, "get_relative_source_path")):
        if not hasattr(cls, name):
            found.append(f"{cls.__name__}.{name} is gone")
    return found


# 1. Reading ------------------------------------------------------------------------------------------------

def replace_read_file(readers, function):
    """Make `function` answer this Readers instance's read_file calls (an instance attribute shadows the method)."""
    readers.read_file = function


def original_read_file(readers):
    """The read_file Pelican's class gives this instance, whatever replaced it."""
    return Readers.read_file.__get__(readers)


def replaced_read_file(readers):
    """What replace_read_file put on this instance, or None."""
    return vars(readers).get("read_file")


# 2. Pelican's reader cache ---------------------------------------------------------------------------------

def reader_cache_off(readers):
    """Neither look into nor store into Pelican's reader cache for this Readers instance."""
    readers._cache_data_policy = False
    readers._cache = {}


def generator_cache_off(generator):
    """When Pelican's generator-level cache is off, make looking into it and storing into it free."""
    if not generator._cache_data_policy:
        generator.get_cached_data = lambda filename, default=None: default
        generator.cache_data = lambda filename, data: None


# 3. The writer's bookkeeping (Writer._open_w, Pelican 4.12) ------------------------------------------------

def claim(writer, filename, override):
    """_open_w's checks and records without opening the file: the path to write, or os.devnull to skip."""
    if filename in writer._overridden_files:
        if override:
            raise FileOverwriteFailedError(f'Failed to overwrite "{filename}" a second time (was previously overwritten)')
        return os.devnull
    if filename in writer._written_files and not override:
        raise FileOverwriteFailedError(
            f'Failed to overwrite "{filename}" as Pelican has already written to it previously '
            "(set `override=True` if intended)")
    if override:
        writer._overridden_files.add(filename)
    writer._written_files.add(filename)
    return filename


# 6. The WITH_FUTURE_DATES rule (Article.__init__, Pelican 4.12) ---------------------------------------------

def is_future(content) -> bool:
    """True if Pelican would find the object dated in the future now: Article.__init__'s comparison, on the
    clock Pelican's contents module reads."""
    date = getattr(content, "date", None)
    if not isinstance(date, datetime.datetime):
        return False
    clock = pelican.contents.datetime.datetime
    now = clock.now() if date.tzinfo is None else clock.now(datetime.UTC)
    return date > now
