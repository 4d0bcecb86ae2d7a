"""The lists a reader can join: the whole blog, and one per rubrique of the last build.

The build writes the rubriques of its published posts into the post records (blogcore.records);
the service reads them here, again whenever the records file changes, so a new rubrique can be
joined as soon as the page that offers it is built. A list is named by its key: the store's
WHOLE_BLOG ('') for the whole blog, a category slug otherwise. The signup form says « tout » for
the whole blog (mail_posts gives no list to a rubrique of that slug).
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable

from blogcore.records import RECORDS_FILE, RecordsError, read_rubriques, records_folder

from .config import Config
from .store import WHOLE_BLOG

logger = logging.getLogger(__name__)

FORM_WHOLE_BLOG = "tout"
WHOLE_BLOG_NAME = "tout le blog"


class UnknownList(ValueError):
    """A list asked for that the build does not know; the message names it, in French."""


class Catalogue:
    """The rubriques of the last build, read from its records (a stat per call; read again on change)."""

    def __init__(self, config: Config):
        try:
            self.path = records_folder(config.settings) / RECORDS_FILE
        except RecordsError as error:
            logger.warning("no rubrique lists: %s", error)
            self.path = None
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._rubriques: dict[str, str] = {}

    def rubriques(self) -> dict[str, str]:
        """slug: name; empty before the first build."""
        try:
            stat = os.stat(self.path) if self.path else None
        except OSError:
            stat = None
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino) if stat else None
        with self._lock:
            if seen != self._seen:
                try:
                    self._rubriques = (read_rubriques(self.path.parent) or {}) if stat else {}
                except RecordsError as error:  # records of another version: only the whole blog until make build
                    logger.warning("no rubrique lists: %s", error)
                    self._rubriques = {}
                self._seen = seen
            return self._rubriques

    def name(self, key: str) -> str:
        """What a reader reads for a list: « tout le blog », or « la rubrique « X » »."""
        if key == WHOLE_BLOG:
            return WHOLE_BLOG_NAME
        return f"la rubrique « {self.rubriques().get(key, key)} »"

    def choose(self, values: Iterable[str]) -> list[str]:
        """The list keys a signup asked for (form values: « tout » or slugs), sorted, each once;
        UnknownList naming the first value that is no list. An empty choice is the caller's to refuse."""
        known = self.rubriques()
        keys = set()
        for value in values:
            value = value.strip()
            if not value:
                continue  # the form's marker field
            if value == FORM_WHOLE_BLOG:
                keys.add(WHOLE_BLOG)
            elif value in known:
                keys.add(value)
            else:
                shown = value if len(value) <= 60 else value[:60] + "…"
                raise UnknownList(f"La rubrique « {shown} » n’existe pas sur ce blog : choisissez « tout le blog » "
                                  "ou une des rubriques proposées par le formulaire.")
        return sorted(keys)

    def form_lists(self) -> list[tuple[str, str]]:
        """(slug, name) for the signup form the service shows again (same as NEWSLETTER_RUBRIQUES in the build)."""
        return sorted(self.rubriques().items())
