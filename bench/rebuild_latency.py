#!/usr/bin/env python3
"""Save-to-page latency of `make serve` on a 1,000-post site.

    python bench/rebuild_latency.py [--count 1000] [--edits 3] [--seed 1]

Reproduces newsletter/devserver.py's loop on a synthetic site in a temporary
folder: watchfiles on the content, and on a change the devserver's exact rebuild
(`python -m pelican CONTENT -s pelicanconf.py -o output --fatal errors`, which
stages beside output/ and moves in what changed). After a first build (which fills the content
cache) it appends a sentence to one post, and times from the save until the
post's page in output/ holds the new sentence (the devserver serves output/ as
files, so on disk is served). Each edit is timed with the content cache as
pelicanconf.py sets it, and, alternating, with the cache ignored (--ignore-cache).
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
        """newsletter.devserver.rebuild (tasks.build_site), synchronously: Pelican builds over output/,
        staging beside it and moving in only the files that changed."""
        started = time.perf_counter()
        command = [sys.executable, "-m", "pelican", str(self.content), "-s", str(ROOT / "pelicanconf.py"),
                   "-o", str(self.output), "--fatal", "errors", "--cache-path", str(self.cache),
                   "-e", f'MAIL_POSTS_PATH="{self.mail}"'] + (["--ignore-cache"] if self.ignore_cache else [])
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"build failed:\n{result.stdout}\n{result.stderr}")
        self.builds.append((started, time.perf_counter()))

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
            time.sleep(0.5)
        loop.stop.set()

        print(f"\nSave-to-page latency, {args.count} posts, median of {args.edits} edits each:")
        for ignore, label in ((False, "content cache on (pelicanconf.py)"), (True, "cache ignored (--ignore-cache)")):
            rows = timings[ignore]
            print(f"  {label:36} {statistics.median(r[0] for r in rows):5.2f} s  "
                  f"(detection {statistics.median(r[1] for r in rows):4.2f} s, "
                  f"rebuild {statistics.median(r[2] for r in rows):4.2f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
