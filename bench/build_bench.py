#!/usr/bin/env python3
"""Build-speed benchmark: this project against stock Pelican, on the same posts, in one run.

    python bench/build_bench.py [--count 1000] [--seed 1] [--rounds 5] [--corpus DIR] [--growth]

Makes a synthetic corpus (bench/make_corpus.py) in a temporary folder,
or copies the Markdown files of --corpus, then times side by side, alternating:

- ours cold:  `python -m sitebuild --content CONTENT`, exactly `make build`
  (staged beside the output folder), into a fresh output folder with an empty
  content cache;
- stock:      the same Pelican, default settings and theme (notmyidea), site and
  category Atom feeds, same TIMEZONE, no plugins;
- ours warm:  our build again after editing one post, over the output folder
  and the cache the cold build left (what `make build` and `make serve` do on
  save); the benchmark checks that the post's page shows the edit.

Each build runs in its own wrapper process, so wall time and peak memory belong
to that build alone: `max RSS` is getrusage(RUSAGE_CHILDREN).ru_maxrss of the
wrapper (the largest single process), `peak PSS` samples the proportional set
size of all the build's processes every 20 ms (counts forked workers, shares
copy-on-write pages fairly; the wrapper itself is left out). Goals (issue 12): cold ours/stock <= 0.8,
warm/cold <= 0.25, memory ours/stock <= 1.5.

--growth builds ours cold (once each) on 100, 1,000 and 5,000 posts.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tasks import compile_sources  # noqa: E402
MAKE_CORPUS = ROOT / "bench" / "make_corpus.py"
PYTHON = sys.executable

STOCK_SETTINGS = """\
# Stock Pelican: default theme and settings, site and category Atom feeds, our timezone.
TIMEZONE = {timezone!r}
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = "feeds/{{slug}}.atom.xml"
"""

# Runs one build and reports its wall time and the peak RSS of its processes.
# A fresh wrapper per build, because RUSAGE_CHILDREN's maxrss is the max over every child so far.
WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
result = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime,
                  "rc": result.returncode, "stderr": result.stderr[-4000:]}))
"""


def tree_pss_kb(root_pid: int) -> int:
    """Proportional set size (kB) of all the descendants of a process (not the process), read from /proc."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    family, changed = {root_pid}, True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                changed = True
    total = 0
    for pid in family - {root_pid}:  # the wrapper's own memory is not the build's
        try:
            with open(f"/proc/{pid}/smaps_rollup") as smaps:
                for line in smaps:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def measure(command: list[str], cwd: Path) -> dict:
    """Run one build in a fresh wrapper process: wall time (s), max RSS and sampled peak tree PSS (MB)."""
    wrapper = subprocess.Popen([PYTHON, "-c", WRAPPER, *command], cwd=cwd, stdout=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        while wrapper.poll() is None:
            peak[0] = max(peak[0], tree_pss_kb(wrapper.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = wrapper.communicate()
    sampler.join()
    result = json.loads(out)
    if result["rc"] != 0:
        raise SystemExit(f"build failed ({' '.join(command)}):\n{result['stderr']}")
    return {"wall": result["wall"], "cpu": result["cpu"], "rss": result["maxrss_kb"] / 1024,
            "pss": peak[0] / 1024}


def html_count(output: Path) -> int:
    return sum(1 for _ in output.rglob("*.html"))


class Bench:
    """Builds of one corpus, laid out for both projects, in a work folder."""

    def __init__(self, work: Path, corpus: Path):
        self.work = work
        self.content = work / "content"          # ours: content/posts/*.md, as in the project
        self.posts = self.content / "posts"       # stock reads the same files, as its whole PATH
        shutil.copytree(corpus, self.posts, ignore=shutil.ignore_patterns(".*"))
        self.stock_settings = work / "stockconf.py"
        self.stock_settings.write_text(STOCK_SETTINGS.format(timezone=project_timezone()), encoding="utf-8")
        self.runs = 0

    def _fresh(self, name: str) -> Path:
        self.runs += 1
        return self.work / f"{name}-{self.runs}"

    def ours(self, cache: Path | None = None, output: Path | None = None) -> tuple[dict, Path, Path]:
        """Our cold build (new output, new empty cache) or a warm one over the output and cache of the last."""
        output = output or self._fresh("ours-out")
        cache = cache or self._fresh("ours-cache")
        command = [PYTHON, "-m", "sitebuild", "--content", str(self.content), "--output", str(output),
                   "-e", f"CACHE_PATH={json.dumps(str(cache))}",
                   f"MAIL_POSTS_PATH={json.dumps(str(self.work / 'mail-posts'))}"]
        return measure(command, ROOT), output, cache

    def stock(self) -> tuple[dict, Path]:
        output = self._fresh("stock-out")
        command = [PYTHON, "-m", "pelican", str(self.posts), "-s", str(self.stock_settings), "-o", str(output)]
        return measure(command, self.work), output

    def edit_one_post(self, round_number: int) -> Path:
        """Append a sentence to one post, as an author saving a change."""
        post = sorted(self.posts.rglob("*.md"))[len(list(self.posts.rglob("*.md"))) // 2]
        with post.open("a", encoding="utf-8") as handle:
            handle.write(f"\nUne précision ajoutée, version {round_number}.\n")
        return post


def project_timezone() -> str:
    text = (ROOT / "pelicanconf.py").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("TIMEZONE"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "UTC"


def make_corpus(count: int, out: Path, seed: int, categories: int, tags: int) -> Path:
    subprocess.run([PYTHON, str(MAKE_CORPUS), str(count), str(out), "--seed", str(seed),
                    "--categories", str(categories), "--tags", str(tags)], check=True)
    return out


def median(rows: list[dict], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def side_by_side(bench: Bench, rounds: int) -> dict:
    """Rounds of ours cold / stock (order alternating each round), then ours warm after one edit.

    No build's folders are deleted before the run is over: a tree deleted just before a build slows that
    build's folder creation on ext4 (its allocator steps over recently freed inodes), and our build makes
    a folder per post where stock Pelican writes files side by side."""
    cold, stock, warm = [], [], []
    pages = {}
    for number in range(1, rounds + 1):
        order = ("ours", "stock") if number % 2 else ("stock", "ours")
        for who in order:
            if who == "ours":
                figures, ours_output, cache = bench.ours()
                cold.append(figures)
                pages["ours"] = html_count(ours_output)
            else:
                figures, output = bench.stock()
                stock.append(figures)
                pages["stock"] = html_count(output)
            print(f"  round {number}: {who:5} cold {figures['wall']:6.2f} s  "
                  f"max RSS {figures['rss']:6.1f} MB  peak PSS {figures['pss']:6.1f} MB", flush=True)
        post = bench.edit_one_post(number)
        figures, output, _ = bench.ours(cache=cache, output=ours_output)
        warm.append(figures)
        print(f"  round {number}: ours  warm {figures['wall']:6.2f} s  (one post edited)", flush=True)
        check_edit_published(output, post, number)
    return {"cold": cold, "stock": stock, "warm": warm, "pages": pages}


def check_edit_published(output: Path, post: Path, number: int):
    """The warm build must have updated the edited post's page: a fast build that shows stale pages is worthless."""
    slug = next(line.split(":", 1)[1].strip() for line in post.read_text(encoding="utf-8").splitlines()
                if line.startswith("Slug:"))
    pages = [page for page in output.rglob("index.html") if page.parent.name == slug]
    if not pages or f"version {number}." not in pages[0].read_text(encoding="utf-8"):
        raise SystemExit(f"warm build did not publish the edit of {post.name}")


def report(results: dict, posts: int) -> str:
    cold, stock, warm, pages = results["cold"], results["stock"], results["warm"], results["pages"]

    def goal(value, limit):
        return "ok" if value <= limit else "MISSED"

    t_ours, t_stock, t_warm = median(cold, "wall"), median(stock, "wall"), median(warm, "wall")
    rss_ours, rss_stock = max(r["rss"] for r in cold), max(r["rss"] for r in stock)
    pss_ours, pss_stock = max(r["pss"] for r in cold), max(r["pss"] for r in stock)
    lines = [
        f"Build benchmark: {posts} posts, {len(cold)} rounds, medians (wall clock)",
        "",
        f"{'':24}{'ours':>12}{'stock':>12}{'ratio':>9}  goal",
        f"{'cold build (s)':24}{t_ours:12.2f}{t_stock:12.2f}{t_ours / t_stock:9.2f}  <= 0.8: "
        f"{goal(t_ours / t_stock, 0.8)}",
        f"{'  cpu time (s)':24}{median(cold, 'cpu'):12.2f}{median(stock, 'cpu'):12.2f}"
        f"{median(cold, 'cpu') / median(stock, 'cpu'):9.2f}",
        f"{'warm rebuild (s)':24}{t_warm:12.2f}{'':12}{t_warm / t_ours:9.2f}  <= 0.25 of our cold: "
        f"{goal(t_warm / t_ours, 0.25)}",
        f"{'peak max RSS (MB)':24}{rss_ours:12.1f}{rss_stock:12.1f}{rss_ours / rss_stock:9.2f}  <= 1.5: "
        f"{goal(rss_ours / rss_stock, 1.5)}",
        f"{'peak tree PSS (MB)':24}{pss_ours:12.1f}{pss_stock:12.1f}{pss_ours / pss_stock:9.2f}  <= 1.5: "
        f"{goal(pss_ours / pss_stock, 1.5)}",
        f"{'HTML pages':24}{pages['ours']:12d}{pages['stock']:12d}",
        "",
        "cold: fresh output, empty cache; warm: one post edited, output and cache of the cold build.",
        "max RSS: largest single process (getrusage); tree PSS: all processes of the build, sampled.",
    ]
    return "\n".join(lines)


def growth(work: Path, args) -> str:
    lines = ["Growth: our cold build, once per size", "", f"{'posts':>8}{'time (s)':>10}{'ms/post':>9}"
             f"{'pages':>8}{'max RSS (MB)':>14}"]
    for count in (100, 1000, 5000):
        folder = work / f"growth-{count}"
        corpus = make_corpus(count, folder / "corpus", args.seed, args.categories, args.tags)
        bench = Bench(folder, corpus)
        figures, output, cache = bench.ours()
        lines.append(f"{count:8d}{figures['wall']:10.2f}{1000 * figures['wall'] / count:9.1f}"
                     f"{html_count(output):8d}{figures['rss']:14.1f}")
        shutil.rmtree(folder, ignore_errors=True)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="posts in the synthetic corpus (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--categories", type=int, default=8)
    parser.add_argument("--tags", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5: this machine is noisy)")
    parser.add_argument("--corpus", type=Path, help="use this folder of Markdown posts instead of a synthetic one")
    parser.add_argument("--growth", action="store_true", help="also time our build on 100, 1,000 and 5,000 posts")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    compile_sources()  # as `make build` does before each build
    work = Path(tempfile.mkdtemp(prefix="build-bench-"))
    try:
        if args.corpus:
            corpus = args.corpus.resolve()
        else:
            corpus = make_corpus(args.count, work / "corpus", args.seed, args.categories, args.tags)
        posts = sum(1 for _ in corpus.rglob("*.md"))
        print(f"corpus: {posts} posts from {corpus}; work folder {work}", flush=True)
        results = side_by_side(Bench(work / "side-by-side", corpus), args.rounds)
        print()
        print(report(results, posts))
        if args.growth:
            print()
            print(growth(work, args))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
