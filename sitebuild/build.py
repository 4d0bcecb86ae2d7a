"""Build the site into a staging folder beside output/ and move it in only if the build succeeded.

Pelican runs in this process, so a long-lived one (the dev server) rebuilds
without starting Python, Pelican and the plugins again: the plugins keep
nothing from one run to the next but their cache files (plugins/fast_build).
An error logged during the build fails it, as `pelican --fatal errors` does,
and output/ is left as it was.
"""
import logging
import os
from pathlib import Path

from .search import BUNDLE, IndexFailed, index_site
from .staging import Staging

ROOT = Path(__file__).resolve().parent.parent


class BuildFailed(Exception):
    """Pelican refused the content; output/ was left as it was. The message lists what it logged."""


class ErrorLog(logging.Handler):
    """Every error logged while it is attached, from Pelican or a plugin."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        try:
            self.messages.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a malformed log call is still an error
            self.messages.append(str(record.msg))


def build_site(settings_file="pelicanconf.py", output=None, content=None, overrides=None) -> list[str]:
    """Build into a staging folder, then move it into output/; returns the paths that changed.

    Raises BuildFailed, with output/ untouched, if Pelican raised or anything logged an error. Then, with
    SEARCH_INDEX, Pagefind indexes the published site into output/pagefind/ (sitebuild.search).
    """
    from pelican import Pelican, signals
    from pelican.settings import read_settings

    settings = read_settings(str(ROOT / settings_file), override=dict(overrides or {}))  # paths: the repository's
    live = os.path.abspath(output or settings["OUTPUT_PATH"])
    searched = settings.get("SEARCH_INDEX", False)
    retention = (*settings.get("OUTPUT_RETENTION", ()), *([BUNDLE] if searched else []))  # written after the build
    staging = Staging(live, settings.get("DELETE_OUTPUT_DIRECTORY", False), retention)
    settings.update(OUTPUT_PATH=staging.path, FAST_BUILD_LIVE_OUTPUT=live)
    if content is not None:
        settings["PATH"] = os.path.abspath(content)
    errors = ErrorLog()
    root = logging.getLogger()
    root.addHandler(errors)
    written = set()

    def note(path, context=None):
        """content_written: a page the build wrote, or, in the live site, one it kept as it was."""
        written.add(path)

    signals.content_written.connect(note)
    try:
        Pelican(settings).run()
    except (Exception, SystemExit) as error:  # a plugin may stop the build with SystemExit (content_checks)
        staging.discard()
        reason = str(error) if isinstance(error, SystemExit) else f"{type(error).__name__}: {error}"
        raise BuildFailed("\n".join([*errors.messages, reason])) from error
    finally:
        root.removeHandler(errors)
        signals.content_written.disconnect(note)
    if errors.messages:
        staging.discard()
        raise BuildFailed("\n".join(errors.messages))
    prefix = os.path.join(staging.output, "")
    changed = staging.publish({path[len(prefix):] for path in written if path.startswith(prefix)})
    if searched:
        try:
            index_site(staging.output)
        except IndexFailed as error:
            raise BuildFailed(f"{error}\nThe site was published; its search index was left as it was.") from error
    return changed
