"""Which pages of the last build a run may keep instead of rendering them again.

The pages manifest, kept in the site cache, maps each page of the live site to
the fingerprint it was rendered from (fingerprints) and the identity of its
file (inode, size, modification time): a page is kept, neither rendered nor
written, only if both still hold. A kept page is left where it is, in the live
site, which is OUTPUT_PATH itself or, when the run writes into a staging folder
that will be moved into it, FAST_BUILD_LIVE_OUTPUT (set by sitebuild); the
writer announces it with Pelican's content_written signal, under its live path.
"""
import logging
import os
import pickle

from .fingerprints import Fingerprints

logger = logging.getLogger(__name__)

PAGES_MANIFEST = "FastBuild-pages"


class Pages:
    """The pages of one run: those it may keep from the last build, and the manifest it leaves for the next."""

    def __init__(self, settings, cache):
        self.output = os.path.realpath(settings["OUTPUT_PATH"])
        self.live = os.path.realpath(settings.get("FAST_BUILD_LIVE_OUTPUT") or settings["OUTPUT_PATH"])
        self.prefix = os.path.join(self.output, "")
        self.cache = cache
        self.fingerprints = Fingerprints(settings)
        self.previous, self.fresh = {}, {}  # relative path: (fingerprint, inode, size, mtime_ns)
        self.rendered = {}  # relative path: fingerprint of a page rendered this run
        self.kept = 0
        saved = cache.load(PAGES_MANIFEST, None)
        if isinstance(saved, dict) and saved.get("live") == self.live:
            self.previous = saved.get("pages", {})
            self.fingerprints.analysed = saved.get("templates", {})

    def relative(self, path) -> str | None:
        """The path relative to the output folder, or None for a path outside it (os.devnull)."""
        if path.startswith(self.prefix):
            return path[len(self.prefix):]
        return None

    def keep(self, relative, template, extras, context) -> bool:
        """True if the page need not be rendered: the live site has it as it would be now. Else its fingerprint
        is noted for the manifest."""
        fingerprint = self.fingerprints.page(template, extras, context)
        if fingerprint is None:
            return False
        entry = self.previous.get(relative)
        if entry is not None and entry[0] == fingerprint and self.still_there(relative, entry):
            self.fresh[relative] = entry
            self.kept += 1
            return True
        self.rendered[relative] = fingerprint
        return False

    def still_there(self, relative, entry) -> bool:
        """The live site's file is the one the last build wrote."""
        try:
            info = os.stat(os.path.join(self.live, relative), follow_symlinks=False)
        except OSError:
            return False
        return entry[1:] == (info.st_ino, info.st_size, info.st_mtime_ns)

    def live_path(self, relative) -> str:
        return os.path.join(self.live, relative)

    def finish(self):
        """Write the manifest of the pages this run leaves (into the run's private cache folder)."""
        for relative, fingerprint in self.rendered.items():
            try:
                info = os.stat(os.path.join(self.output, relative), follow_symlinks=False)
            except OSError:
                continue  # not written after all (skipped, or written elsewhere)
            self.fresh[relative] = (fingerprint, info.st_ino, info.st_size, info.st_mtime_ns)
        self.cache.save(PAGES_MANIFEST,
                        {"live": self.live, "pages": self.fresh, "templates": self.fingerprints.analysed})
        logger.info("fast_build: %d pages rendered, %d kept from the last build", len(self.rendered), self.kept)
