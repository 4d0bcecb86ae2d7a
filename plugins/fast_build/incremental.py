"""Which pages of output/ a build may keep, and the staging folder it writes the others into.

The pages manifest, kept in the site cache, maps each page of output/ to the
fingerprint it was rendered from (fingerprints) and the identity of its file
(inode, size, modification time): a page is kept, neither rendered nor written,
only if both still hold. Everything else goes through the staging folder.
"""
import logging
import os
import pickle

from .fingerprints import Fingerprints
from .staging import Staging

logger = logging.getLogger(__name__)

PAGES_MANIFEST = "FastBuild-pages"


class Build:
    """One run of Pelican: the staging folder it writes into, and the pages it may keep from the last run."""

    def __init__(self, pelican_object, cache_folder=None):
        """cache_folder: where the pages manifest is read and written; None: every page is rendered."""
        settings = pelican_object.settings
        self.settings = settings
        self.staging = Staging(settings["OUTPUT_PATH"], settings.get("DELETE_OUTPUT_DIRECTORY", False),
                               settings.get("OUTPUT_RETENTION", ()))
        incremental = cache_folder is not None
        self.fingerprints = Fingerprints(settings) if incremental else None
        self.manifest = os.path.join(cache_folder, PAGES_MANIFEST) if incremental else None
        self.previous, self.fresh = {}, {}  # relative path: (fingerprint, inode, size, mtime_ns)
        self.files = None  # every file output/ held after the last build, if known
        self.rendering = {}  # relative path: fingerprint of a page rendered this build
        self.deferred = set()  # relative paths of pages fingerprinted where they are rendered
        self.rendered_count = 0
        if incremental and settings.get("LOAD_CONTENT_CACHE"):
            try:
                with open(self.manifest, "rb") as file:
                    saved = pickle.load(file)
                if saved.get("output") == self.staging.output:
                    self.previous, self.files = saved["pages"], saved["files"]
                self.fingerprints.analysed = saved["templates"]
            except (OSError, EOFError, pickle.PickleError, ValueError, TypeError, AttributeError, KeyError):
                self.previous = {}
        pelican_object.output_path = settings["OUTPUT_PATH"] = self.staging.path

    def keep(self, relative, template, extras, context) -> bool:
        """True if the page need not be rendered: output/ has it as it would be now.

        A page the last build did not write cannot be kept: its fingerprint (for the
        next build) is left to the process that renders it, off the main process.
        """
        if self.fingerprints is None:
            return False
        entry = self.previous.get(relative)
        if entry is None:
            self.fingerprints.template_names(template.environment, template.name)  # once per template, here
            self.deferred.add(relative)
            return False
        fingerprint = self.fingerprints.page(template, extras, context)
        if fingerprint is None:
            return False
        if entry[0] == fingerprint:
            try:
                info = os.stat(os.path.join(self.staging.output, relative), follow_symlinks=False)
            except OSError:
                info = None
            if info is not None and entry[1:] == (info.st_ino, info.st_size, info.st_mtime_ns):
                self.staging.keep(relative)
                self.fresh[relative] = entry
                return True
        self.rendering[relative] = fingerprint
        return False

    def publish(self, pelican_object):
        """Move the staged files into output/, and keep the manifest of the pages it now holds."""
        moved = self.staging.publish(self.files)
        pelican_object.output_path = self.settings["OUTPUT_PATH"] = self.staging.output
        if self.fingerprints is None:
            return
        for relative, fingerprint in self.rendering.items():
            info = moved.get(relative)
            if info is not None:
                self.fresh[relative] = (fingerprint, info.st_ino, info.st_size, info.st_mtime_ns)
        with open(self.manifest, "wb") as file:
            pickle.dump({"output": self.staging.output, "pages": self.fresh, "files": set(moved) | self.staging.kept,
                         "templates": self.fingerprints.analysed}, file, pickle.HIGHEST_PROTOCOL)
        logger.info("fast_build: %d pages rendered, %d kept from the last build", self.rendered_count,
                    len(self.staging.kept))
