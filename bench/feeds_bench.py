#!/usr/bin/env python3
"""What JSON Feeds and « Suivre ce fil » pages cost a cold build, beside the same build without them.

    python bench/feeds_bench.py [--count 1000] [--categories 8] [--rounds 3]

Makes a synthetic corpus (bench/make_corpus.py), then builds it cold (`python -m pelican`, the
project's settings, a fresh output folder and cache each time), alternating:

- anchor: FEEDS_JSON_SAVE_AS, FEEDS_CATEGORY_JSON_SAVE_AS, FEEDS_PAGE_SAVE_AS and
  FEEDS_CATEGORY_PAGE_SAVE_AS set to "" (the site as it was before them);
- with:   the defaults (a feed.json and a follow page for the blog and each category).

Prints the median wall time of each, their ratio, and the bytes of the site's feed.json beside its
atom.xml.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFF = {"FEEDS_JSON_SAVE_AS": "", "FEEDS_CATEGORY_JSON_SAVE_AS": "", "FEEDS_PAGE_SAVE_AS": "",
       "FEEDS_CATEGORY_PAGE_SAVE_AS": ""}


def build(content: Path, work: Path, name: str, extra: dict) -> float:
    conf = work / f"{name}conf.py"
    conf.write_text("from pelicanconf import *\n" + "".join(f"{k} = {v!r}\n" for k, v in extra.items())
                    + f"PLUGIN_PATHS = [{str(ROOT / 'plugins')!r}]\nTHEME = {str(ROOT / 'theme')!r}\n", encoding="utf-8")
    out, cache = work / name, work / f"{name}-cache"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pelican", str(content), "-s", str(conf), "-o", str(out),
                    "--cache-path", str(cache), "-q"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT), "PUBLIC_URL": "https://blog.example.fr"})
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--categories", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        content = work / "content"
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_corpus.py"), str(args.count),
                        str(content / "posts"), "--categories", str(args.categories)], check=True)
        times = {"anchor": [], "with": []}
        for _ in range(args.rounds):
            times["anchor"].append(build(content, work, "anchor", OFF))
            times["with"].append(build(content, work, "with", {}))
        anchor, with_ = statistics.median(times["anchor"]), statistics.median(times["with"])
        print(f"{args.count} posts, {args.categories} categories, {args.rounds} rounds, cold builds")
        print(f"  anchor (no JSON Feed, no follow page): median {anchor:.2f} s  {sorted(round(t, 2) for t in times['anchor'])}")
        print(f"  with JSON Feeds and follow pages:      median {with_:.2f} s  {sorted(round(t, 2) for t in times['with'])}")
        print(f"  ratio with/anchor: {with_ / anchor:.3f}")
        out = work / "with"
        print(f"  site feed.json {(out / 'feed.json').stat().st_size} bytes, atom.xml {(out / 'atom.xml').stat().st_size}"
              f" bytes; follow pages: {len(list(out.rglob('suivre/index.html')))}")


if __name__ == "__main__":
    main()
