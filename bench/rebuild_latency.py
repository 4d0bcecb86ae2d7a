#!/usr/bin/env python3
"""Save-to-page latency of `make serve` on a 1,000-post site.

    python bench/rebuild_latency.py [--count 1000] [--edits 3] [--seed 1]

Reproduces sitebuild/devserver.py's loop on a synthetic site in a temporary
folder: watchfiles on the content, and on a change the devserver's exact rebuild
(sitebuild.build.build_site, in this long-lived process: staged beside output/,
moved in on success). After a first build (which fills the content cache) it
appends a sentence to one post, and times from the save until the post's page
in output/ holds the new sentence (the devserver serves output/ as files, so on
disk is served). Each edit is timed with the content cache as pelicanconf.py
sets it, and, alternating, with the cache ignored (LOAD_CONTENT_CACHE = False).
The anchor, in the same run: stock Pelican rebuilding the same site after the
same edit in a new process (`python -m pelican`, FAST_BUILD = False), which is
what `pelican --autoreload` users wait for.
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from watchfiles import watch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sitebuild.build import build_site  # noqa: E402
from tasks import compile_sources  # noqa: E402

MAKE_CORPUS = ROOT / "bench" / "make_corpus.py"


class DevLoop:
    """The devserver's watch-and-rebuild loop, on another content folder."""

    def __init__(self, content: Path, output: Path, cache: Path, mail: Path):
        self.content, self.output, self.cache, self.mail = content, output, cache, mail
        self.ignore_cache = False
        self.builds = []  # (started, finished) of each rebuild
        self.stop = threading.Event()

    def rebuild(self) -> None:
        """sitebuild.devserver.rebuild, synchronously: build_site in this process."""
        started = time.perf_counter()
        build_site("pelicanconf.py", self.output, self.content,
                   {"CACHE_PATH": str(self.cache), "MAIL_POSTS_PATH": str(self.mail),
                    "LOAD_CONTENT_CACHE": not self.ignore_cache})
        self.builds.append((started, time.perf_counter()))

    def stock(self, output: Path) -> float:
        """The anchor: stock Pelican's rebuild of the same content in a new process, in seconds."""
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pelican", str(self.content), "-s", str(ROOT / "pelicanconf.py"),
                        "-o", str(output), "-e", "FAST_BUILD=false", "CACHE_CONTENT=false",
                        f'MAIL_POSTS_PATH="{self.mail}-stock"'], cwd=ROOT, capture_output=True, check=True)
        return time.perf_counter() - started

    def run(self) -> None:
        for _ in watch(self.content, stop_event=self.stop):
            self.rebuild()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--edits", type=int, default=3, help="edits timed in each mode (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    compile_sources()  # as the devserver's rebuild (tasks.build_site) does
    work = Path(tempfile.mkdtemp(prefix="rebuild-latency-"))
    try:
        posts = work / "content" / "posts"
        subprocess.run([sys.executable, str(MAKE_CORPUS), str(args.count), str(posts), "--seed", str(args.seed),
                        "--categories", "8", "--tags", "25"], check=True)
        loop = DevLoop(work / "content", work / "output", work / "cache", work / "mail-posts")
        loop.rebuild()  # what `make serve` does first; fills the cache
        post = sorted(posts.glob("*.md"))[args.count // 2]
        slug = next(line.split(":", 1)[1].strip() for line in post.read_text(encoding="utf-8").splitlines()
                    if line.startswith("Slug:"))
        page = next(p for p in (work / "output").rglob("index.html") if p.parent.name == slug)
        page = page.relative_to(work / "output")
        watcher = threading.Thread(target=loop.run, daemon=True)
        watcher.start()
        time.sleep(1.0)  # let the watcher start

        timings = {False: [], True: []}
        anchors = []
        for number in range(2 * args.edits):
            loop.ignore_cache = bool(number % 2)
            marker = f"Correctif{number}x{args.seed}"  # one word: typography leaves it as it is
            builds_before = len(loop.builds)
            saved = time.perf_counter()
            with post.open("a", encoding="utf-8") as handle:
                handle.write(f"\n{marker}\n")
            target = work / "output" / page
            while True:
                try:
                    if marker in target.read_text(encoding="utf-8"):
                        break
                except OSError:
                    pass
                time.sleep(0.005)
            served = time.perf_counter()
            while len(loop.builds) <= builds_before:  # the page is in; the loop is noting its times
                time.sleep(0.005)
            started, finished = loop.builds[builds_before]
            timings[loop.ignore_cache].append((served - saved, started - saved, finished - started))
            mode = "cache ignored" if loop.ignore_cache else "cache on     "
            print(f"  edit {number + 1}: {mode} save -> page {served - saved:5.2f} s "
                  f"(change seen after {started - saved:4.2f} s, rebuild {finished - started:4.2f} s)", flush=True)
            if number % 2:
                anchors.append(loop.stock(work / "output-stock"))
                print(f"  stock Pelican, new process: {anchors[-1]:5.2f} s", flush=True)
            time.sleep(0.5)
        loop.stop.set()

        print(f"\nSave-to-page latency, {args.count} posts, median of {args.edits} edits each:")
        for ignore, label in ((False, "content cache on (pelicanconf.py)"), (True, "cache ignored (--ignore-cache)")):
            rows = timings[ignore]
            print(f"  {label:36} {statistics.median(r[0] for r in rows):5.2f} s  "
                  f"(detection {statistics.median(r[1] for r in rows):4.2f} s, "
                  f"rebuild {statistics.median(r[2] for r in rows):4.2f} s)")
        print(f"  {'anchor: stock Pelican (new process)':36} {statistics.median(anchors):5.2f} s  (rebuild only)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
