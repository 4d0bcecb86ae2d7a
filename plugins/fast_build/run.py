"""One Pelican run, as the accelerator sees it: everything it knows from the start of a run to its end.

Pelican sends get_generators at the start of every run() and finalized at the
end of a good one; a Run is made at the first and closed at the second, so two
and more runs in one process (`pelican --autoreload`, the dev server) start
from nothing but the files of the site cache. A run that failed is discarded
when the next one starts, or when the process exits.

The accelerator steps aside (Pelican builds alone, with one warning) when it
is off (FAST_BUILD = False), when this Pelican is not one it was tested with
(pelican_internals), and when a plugin it does not know is enabled: such a
plugin may attach data to posts, or read the clock, in ways no fingerprint
sees, or keep state that forked readers would not share.
"""
import atexit
import hashlib
import logging
import marshal
import os
import pickle
import re
import shutil
import tempfile
import time

import markdown
import pelican
from blinker import ANY
from pelican import signals

from . import pelican_internals
from .incremental import Pages

logger = logging.getLogger(__name__)

DEFAULTS = {"FAST_BUILD": True, "FAST_BUILD_WORKERS": 0, "FAST_BUILD_MIN_BATCH": 16,
            "FAST_BUILD_TRUSTED_PLUGINS": [], "FAST_BUILD_LIVE_OUTPUT": None}
# Plugins run with the accelerator and tested with it: this project's (tests/test_fast_build.py) and those of
# pelican-plugins that pass tests/test_accelerator_equivalence.py with it on, cold and warm. Left out, so the
# accelerator steps aside for them: pelican-statistics (tests type(post) is Article, which frozen_urls' subclass
# is not), pelican-i18n-subsites (runs Pelican again for each language from a signal), pelican-sitemap and
# pelican-image-process (they listen to content_written, see step_aside_reason), pelican-similar-posts (not
# tested: it needs gensim).
KNOWN_PLUGINS = frozenset({"fast_build", "content_checks", "french_typography", "theme_extras", "sitemap", "feeds",
                           "mail_posts", "publication", "redirects", "share_cards"} | {f"pelican.plugins.{name}" for name in (
                               "series", "related_posts", "neighbors", "readtime", "simple_footnotes", "tag_cloud",
                               "share_post", "jinja2content", "more_categories")})
# Modules whose content_written receivers know that a kept page is announced under its live path.
OWN_RECEIVERS = ("fast_build", "sitebuild")
# Settings that change on every build without changing what is read (PUBLICATION_NOW: a clock, as the real one
# that is in no key; what it changes, which posts are listed, reaches the page fingerprints).
VOLATILE_SETTINGS = {"OUTPUT_PATH", "CACHE_PATH", "CACHE_CONTENT", "LOAD_CONTENT_CACHE", "PORT", "MAIL_POSTS_PATH",
                     "FAST_BUILD_LIVE_OUTPUT", "PLUGINS", "PUBLICATION_NOW"}
STALE_TEMP_SECONDS = 3600
UNUSED_DAYS = 7

# id(settings): the run under way with those settings (Pelican hands plugins the settings, not the run).
_runs = {}
# Warnings already given in this process (a dev server rebuilds many times).
_warned = set()


def run_of(settings):
    """The run under way with these settings, or None."""
    return _runs.get(id(settings))


def config(settings) -> dict:
    """FAST_BUILD_* merged over the defaults; a bad value is reported once and replaced by its default."""
    merged = {**DEFAULTS, **{k: v for k, v in settings.items() if k.startswith("FAST_BUILD")}}
    for key in ("FAST_BUILD_WORKERS", "FAST_BUILD_MIN_BATCH"):
        if not isinstance(merged[key], int) or isinstance(merged[key], bool) or merged[key] < 0:
            warn_once(f"fast_build: {key} must be a whole number >= 0, not {merged[key]!r}", logging.ERROR)
            merged[key] = DEFAULTS[key]
    return merged


def warn_once(message, level=logging.WARNING):
    if message not in _warned:
        _warned.add(message)
        logger.log(level, "%s", message)


def step_aside_reason(settings, conf) -> str | None:
    """Why Pelican must build alone this time, or None."""
    if not conf["FAST_BUILD"]:
        return "FAST_BUILD is False"
    problems = pelican_internals.problems()
    if problems:
        return "; ".join(problems)
    trusted = KNOWN_PLUGINS | set(conf["FAST_BUILD_TRUSTED_PLUGINS"])
    unknown = sorted({name for name in map(plugin_name, settings.get("PLUGINS") or ()) if name not in trusted})
    if unknown:
        return (f"plugin(s) {', '.join(unknown)} not known to work with it (list them in "
                "FAST_BUILD_TRUSTED_PLUGINS once you have checked that they do)")
    # A page kept from the last build is announced by content_written under its live path, and not written
    # again: a plugin that post-processes each written file (pelican-image-process) or lists them
    # (pelican-sitemap) would process it twice, or list it wrongly.
    listeners = sorted({getattr(receiver, "__module__", "?") for receiver in signals.content_written.receivers_for(ANY)
                        if not getattr(receiver, "__module__", "").startswith(OWN_RECEIVERS)})
    if listeners:
        return f"{', '.join(listeners)} listen(s) to content_written, which kept pages do not go through"
    return None


def plugin_name(plugin) -> str:
    """The name PLUGINS gives a plugin (a module or a string): a namespace plugin keeps its `pelican.plugins.`
    (pelican-sitemap is not this project's sitemap)."""
    return plugin if isinstance(plugin, str) else getattr(plugin, "__name__", str(plugin))


class Run:
    """One run of Pelican with the accelerator: its settings, site cache, pages and readers."""

    def __init__(self, pelican_object):
        settings = self.settings = pelican_object.settings
        conf = config(settings)
        reason = step_aside_reason(settings, conf)
        if reason is not None and conf["FAST_BUILD"]:
            warn_once(f"fast_build: building without the accelerator: {reason}")
        self.enabled = reason is None
        self.workers = (conf["FAST_BUILD_WORKERS"] or len(os.sched_getaffinity(0))) if self.enabled else 1
        self.min_batch = conf["FAST_BUILD_MIN_BATCH"]
        caching = self.enabled and bool(settings.get("CACHE_CONTENT"))
        self.cache = SiteCache(settings) if caching else None
        self.pages = Pages(settings, self.cache) if caching else None
        self.reads = []  # the PrefetchingReads of this run's generators

    def finish(self):
        """The run went through: save what the next one may reuse, and publish it atomically."""
        for reads in self.reads:
            reads.save()  # (done already at its generator's end, unless that failed to come)
        if self.pages is not None:
            self.pages.finish()
        if self.cache is not None:
            self.cache.publish()

    def discard(self):
        if self.cache is not None:
            self.cache.discard()


def start(pelican_object) -> Run:
    """A run starts: the previous one with these settings, if it failed, is discarded."""
    previous = _runs.pop(id(pelican_object.settings), None)
    if previous is not None:
        previous.discard()
    run = _runs[id(pelican_object.settings)] = Run(pelican_object)
    return run


def finish(pelican_object):
    run = _runs.pop(id(pelican_object.settings), None)
    if run is not None:
        run.finish()


# The site cache ----------------------------------------------------------------------------------------------

def stable(value) -> str:
    """A repr that is the same in every process: sets sorted, object addresses dropped."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{stable(k)}: {stable(v)}" for k, v in sorted(value.items(), key=lambda i: str(i[0]))) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(stable(v) for v in value) + "]"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(stable(v) for v in value)) + "}"
    code = getattr(value, "__code__", None)  # a function in the settings (JINJA_FILTERS...): its code counts
    if code is not None:
        return f"<function {getattr(value, '__qualname__', '')} {hashlib.sha256(marshal.dumps(code)).hexdigest()}>"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def site_cache_key(settings) -> str:
    """What cached objects and pages depend on: the content folder, the settings, the plugins' code, Pelican
    and Markdown."""
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


class SiteCache:
    """One folder per site and settings under CACHE_PATH. A run reads the files there and writes new ones
    into a private folder inside it; at the end of a good run each replaces its old self in one rename, so
    two builds at once never read a half-written cache and a settings change never reuses stale objects."""

    def __init__(self, settings):
        self.shared = os.path.join(settings["CACHE_PATH"], site_cache_key(settings))
        self.loading = bool(settings.get("LOAD_CONTENT_CACHE"))
        self.source = os.path.abspath(settings["PATH"])
        os.makedirs(self.shared, exist_ok=True)
        for entry in os.scandir(self.shared):  # private folders left by builds that crashed
            if entry.name.startswith(".build-") and entry.stat().st_mtime < time.time() - STALE_TEMP_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)
        self.private = tempfile.mkdtemp(prefix=".build-", dir=self.shared)
        atexit.register(self.discard)

    def load(self, name, default):
        """What the last good run saved under this name; default if nothing, or if LOAD_CONTENT_CACHE is off."""
        if not self.loading:
            return default
        try:
            with open(os.path.join(self.shared, name), "rb") as file:
                return pickle.load(file)
        except (OSError, EOFError, pickle.PickleError, ValueError, TypeError, AttributeError, ImportError):
            return default

    def save(self, name, value):
        with open(os.path.join(self.private, name), "wb") as file:
            pickle.dump(value, file, pickle.HIGHEST_PROTOCOL)

    def jinja_folder(self) -> str:
        folder = os.path.join(self.shared, "jinja")
        os.makedirs(folder, exist_ok=True)
        return folder

    def publish(self):
        os.makedirs(self.shared, exist_ok=True)  # pruned meanwhile by another build: the cache is only an accelerator
        for entry in os.scandir(self.private):
            if entry.is_file():
                os.replace(entry.path, os.path.join(self.shared, entry.name))
        with open(os.path.join(self.shared, "SOURCE"), "w", encoding="utf-8") as file:
            file.write(self.source)
        self.discard()
        prune(os.path.dirname(self.shared))

    def discard(self):
        shutil.rmtree(self.private, ignore_errors=True)
        atexit.unregister(self.discard)


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
