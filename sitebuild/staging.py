"""Write the build beside output/, and move it in only once the build has succeeded.

Pelican writes into OUTPUT_PATH as it goes, so a build that stops halfway would
leave a half-built site. Here Pelican writes into a private staging folder next
to output/ (on the same disk). Pages the accelerator did not render again
(plugins/fast_build, told by FAST_BUILD_LIVE_OUTPUT where the live site is) are
not staged: they are `kept`, and the build names them (sitebuild.build hears
them through Pelican's content_written signal). When the build has succeeded,
each staged file replaces its counterpart in output/ (one rename each), and,
with DELETE_OUTPUT_DIRECTORY, files the build neither staged nor kept are
removed (OUTPUT_RETENTION's are left alone). A build that fails leaves output/
as it was, and its staging folder is removed.
"""
import atexit
import os
import shutil
import tempfile
import time

PREFIX = ".building-"
STALE_SECONDS = 3600


class Staging:
    """The staging folder of one build and the real output folder it goes to."""

    def __init__(self, output: str, delete_others: bool = True, retention=()):
        self.output = os.path.realpath(output)  # a link to another disk: stage on that disk, renames stay renames
        self.delete_others = delete_others  # Pelican's DELETE_OUTPUT_DIRECTORY
        self.retention = set(retention)     # Pelican's OUTPUT_RETENTION: top-level names never removed
        parent = os.path.dirname(self.output)
        os.makedirs(parent, exist_ok=True)
        remove_stale(parent, os.path.basename(self.output))
        self.path = tempfile.mkdtemp(prefix=PREFIX + os.path.basename(self.output) + "-", dir=parent)
        atexit.register(self.discard)

    def discard(self):
        """The build did not finish: drop what it staged, output/ is untouched."""
        shutil.rmtree(self.path, ignore_errors=True)
        atexit.unregister(self.discard)

    def publish(self, kept=frozenset()) -> list[str]:
        """Move the staged files into output/ and remove the ones this build did not produce.

        kept: paths, relative to output/, of the files the build produced by leaving them as they are.
        Returns the paths, relative to output/, of the files that changed. A staged file with the size and
        modification time of output/'s is left out: its copy in output/ keeps its inode and its time.
        """
        umask = os.umask(0)
        os.umask(umask)
        staged = files_under(self.path)
        if not os.path.isdir(self.output):
            os.chmod(self.path, 0o777 & ~umask)  # mkdtemp makes it 0700: a web server could not read it
            shutil.rmtree(self.output, ignore_errors=True)  # a file, or a broken link, in its place
            os.rename(self.path, self.output)
            atexit.unregister(self.discard)
            return sorted(staged)
        changed = []
        made = set()
        for relative in sorted(staged):
            if same_file(staged[relative], os.path.join(self.output, relative)):
                continue  # a static file copied again, as it was (Pelican's copies keep the modification time)
            folder = os.path.dirname(relative)
            if folder not in made:
                target = os.path.join(self.output, folder)
                if not os.path.isdir(target):
                    if os.path.lexists(target):
                        os.unlink(target)
                    os.makedirs(target, 0o777 & ~umask)
                made.add(folder)
            target = os.path.join(self.output, relative)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            os.replace(os.path.join(self.path, relative), target)
            changed.append(relative)
        if self.delete_others:
            remove_files(self.output, {path for path in files_under(self.output, self.retention).keys()
                                       - staged.keys() - set(kept)})
        self.discard()
        return changed


def same_file(staged: os.stat_result, live: str) -> bool:
    """The live file has the staged one's size and modification time (rsync's test): it need not be replaced."""
    try:
        info = os.stat(live, follow_symlinks=False)
    except OSError:
        return False
    return (info.st_size, info.st_mtime_ns) == (staged.st_size, staged.st_mtime_ns) and not os.path.isdir(live)


def files_under(root: str, skipped=frozenset()) -> dict:
    """{relative path: stat} of every file (and link) under root, but under the top-level names skipped."""
    found = {}
    stack = [""]
    while stack:
        relative = stack.pop()
        with os.scandir(os.path.join(root, relative)) as entries:
            for entry in entries:
                if not relative and entry.name in skipped:
                    continue
                path = os.path.join(relative, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                else:
                    found[path] = entry.stat(follow_symlinks=False)
    return found


def remove_files(root: str, unwanted: set):
    """Delete these files under root, and the folders they leave empty."""
    folders = set()
    for relative in unwanted:
        try:
            os.unlink(os.path.join(root, relative))
        except FileNotFoundError:
            pass
        folders.add(os.path.dirname(relative))
    for folder in sorted(folders, key=len, reverse=True):
        while folder:
            try:
                os.rmdir(os.path.join(root, folder))
            except OSError:  # not empty, or gone
                break
            folder = os.path.dirname(folder)


def remove_stale(parent: str, name: str):
    """Staging folders of builds that were killed (older than an hour: not a build running now)."""
    limit = time.time() - STALE_SECONDS
    for entry in os.scandir(parent):
        if entry.name.startswith(PREFIX + name + "-") and entry.is_dir(follow_symlinks=False):
            try:
                if entry.stat().st_mtime < limit:
                    shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                pass
