"""Where the cards are made and kept between builds: one folder per content folder under CACHE_PATH."""
import atexit
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time

CACHE_FOLDER = "ShareCards"
MANIFEST = "last-used.json"
UNUSED_DAYS = 7


class Store:
    """The folder the cards are made in: kept under CACHE_PATH for the next builds, or a temporary one.

    A kept card no build has used for UNUSED_DAYS is removed (a manifest notes the day each was last used:
    not the files' times, which their hard links in the output share). Not at once: a build of the same
    content with other settings (make build, then make publish) may use it again tomorrow.
    """

    def __init__(self, settings):
        self.kept = bool(settings.get("CACHE_CONTENT"))
        self.reuse = self.kept and bool(settings.get("LOAD_CONTENT_CACHE", True))
        if self.kept:
            site = hashlib.sha256(os.path.abspath(settings["PATH"]).encode()).hexdigest()[:12]
            self.path = os.path.join(settings["CACHE_PATH"], CACHE_FOLDER, site)
            os.makedirs(self.path, exist_ok=True)
        else:
            self.path = tempfile.mkdtemp(prefix="share-cards-")
            atexit.register(shutil.rmtree, self.path, True)  # also when the build fails

    def has(self, entry: str) -> bool:
        return self.reuse and os.path.isfile(os.path.join(self.path, entry))

    def finish(self, used: set):
        """Note the cards this build used; remove those unused for UNUSED_DAYS (or the temporary folder)."""
        if not self.kept:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        manifest = os.path.join(self.path, MANIFEST)
        try:
            with open(manifest, encoding="utf-8") as file:
                last_used = json.load(file)
        except (OSError, ValueError):
            last_used = {}
        today = int(time.time() // 86400)
        last_used = {entry: day for entry, day in last_used.items() if isinstance(day, int)}
        last_used.update(dict.fromkeys(used, today))
        for name in os.listdir(self.path):
            if name != MANIFEST and today - last_used.get(name, today) > UNUSED_DAYS:
                last_used.pop(name, None)
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.path, name))
            elif name != MANIFEST and name not in last_used and not name.startswith("."):
                last_used[name] = today  # made by a build that failed: counted from now
        temporary = f"{manifest}.{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(dict(sorted(last_used.items())), file)
        os.replace(temporary, manifest)
