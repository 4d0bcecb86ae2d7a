#!/usr/bin/env python3
"""Search benchmark: Pagefind's index of a large site, beside the build that made the site, in one run.

    python bench/search_bench.py [--count 5000] [--rounds 5] [--seed 1]

Makes a synthetic corpus (bench/make_corpus.py) plus the project's pages, then:

- anchor: the site built as `make build` does (python -m sitebuild), without the index
  (SEARCH_INDEX=false): once cold, then warm (nothing changed) each round;
- indexing: sitebuild.search.index_site on that site, forced each round (the record of its
  sources removed), alternating with the warm builds; and the check a warm build makes
  when no page changed (the digest of the HTML files, no indexing);
- size: the bytes of output/pagefind/, all of it and the part a reader's browser can fetch
  (pagefind.js, the French WebAssembly, the metadata, index chunks and fragments: not the
  unused UI files Pagefind also writes);
- in Chromium (tests/fixtures/browser.py's), the site served as `make serve` serves it, a fresh
  context each round (cold cache): the time from the first key typed to the first result on
  the page, and from the whole word put in the field to its results, with the bytes fetched
  from /pagefind/ for that query; anchored by the time the search page itself takes to load.

Medians over the rounds.
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sitebuild.search import BUNDLE, SOURCES, index_site, pagefind_binary, sources_digest  # noqa: E402

PYTHON = sys.executable
WORD = "fidélité"
# Written by Pagefind for its own ready-made interfaces, which this site does not load.
UNUSED_UI = ("pagefind-ui.", "pagefind-component-ui.", "pagefind-modular-ui.", "pagefind-highlight.", "pagefind-worker.")
# Marks the first key typed and the first result shown, in the page's clock (an init script is not subject to CSP).
PROBE = """window.__firstKey = null; window.__firstResult = null;
document.addEventListener('keydown', () => { if (window.__firstKey === null) window.__firstKey = performance.now(); }, true);
new MutationObserver(() => {
  if (window.__firstResult === null && document.querySelector('#search-results li')) window.__firstResult = performance.now();
}).observe(document, {childList: true, subtree: true});"""


def build(content: Path, output: Path, work: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([PYTHON, "-m", "sitebuild", "--content", str(content), "--output", str(output),
                             "-e", f'CACHE_PATH="{work / "cache"}"', f'MAIL_POSTS_PATH="{work / "mail"}"',
                             "SEARCH_INDEX=false"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"build failed:\n{result.stderr}")
    return time.perf_counter() - started


def size(folder: Path, skip=()) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.name.startswith(skip))


def browser_rounds(site: Path, rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    from newsletter.app import create_app
    from newsletter.config import Config
    from newsletter.ratelimit import NO_LIMITS
    from newsletter.serving import serve_in_thread
    from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS

    var = Path(tempfile.mkdtemp(prefix="search-bench-var-"))
    config = Config.from_env(environ={"NEWSLETTER_DB": str(var / "s.sqlite3"), "NEWSLETTER_OUTBOX": str(var / "out"),
                                      "NEWSLETTER_SECRET": "search-bench-secret-0123456789"})
    figures = {"load": [], "first_key": [], "whole_word": [], "bytes": [], "foreign": 0}
    with serve_in_thread(create_app(config, limits=NO_LIMITS, static_dir=site)) as base, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for mode in ["first_key", "whole_word"] * rounds:
            context = chromium.new_context()
            page = context.new_page()
            page.add_init_script(PROBE)
            fetched = []
            page.on("requestfinished", lambda request: fetched.append(request))
            page.goto(base + "/recherche/")
            field = page.get_by_label("Chercher dans les billets")
            field.wait_for(state="visible")
            figures["load"].append(page.evaluate("() => performance.getEntriesByType('navigation')[0].duration"))
            if mode == "first_key":
                field.press_sequentially(WORD)
                page.wait_for_function("() => window.__firstResult !== null")
                figures[mode].append(page.evaluate("() => window.__firstResult - window.__firstKey"))
            else:
                started = page.evaluate("() => performance.now()")
                field.fill(WORD)
                page.wait_for_function("w => document.getElementById('search-status').textContent.includes(w)", arg=WORD)
                figures[mode].append(page.evaluate("() => performance.now()") - started)
                figures["bytes"].append(sum(r.sizes()["responseBodySize"] for r in fetched if "/pagefind/" in r.url))
            figures["foreign"] += sum(1 for r in fetched if not r.url.startswith(base))
            context.close()
        chromium.close()
    shutil.rmtree(var, ignore_errors=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        content, output = work / "content", work / "output"
        shutil.copytree(ROOT / "content" / "pages", content / "pages")
        subprocess.run([PYTHON, str(ROOT / "bench" / "make_corpus.py"), str(args.count), str(content / "posts"),
                        "--seed", str(args.seed)], check=True)
        cold = build(content, output, work)
        version = subprocess.run([pagefind_binary(), "--version"], capture_output=True, text=True).stdout.strip()
        warm, indexing, check = [], [], []
        for _ in range(args.rounds):
            warm.append(build(content, output, work))
            (output / BUNDLE / SOURCES).unlink(missing_ok=True)
            started = time.perf_counter()
            assert index_site(str(output))
            indexing.append(time.perf_counter() - started)
            started = time.perf_counter()
            sources_digest(str(output), version)
            check.append(time.perf_counter() - started)
        bundle = output / BUNDLE
        pages = sum(1 for _ in output.rglob("*.html"))
        figures = browser_rounds(output, args.rounds)
        med = statistics.median
        print(f"Search benchmark: {args.count} posts ({pages} HTML files), {version}, {args.rounds} rounds, medians")
        print(f"  build (make build, no index)   cold {cold:6.2f} s   warm, nothing changed {med(warm):6.2f} s   (anchor)")
        print(f"  indexing (Pagefind, whole site)     {med(indexing):6.2f} s   = {med(indexing) / cold:.2f} x the cold build, "
              f"{med(indexing) / med(warm):.2f} x the warm one")
        print(f"  warm build's check, nothing changed {med(check):6.2f} s   (digest of the HTML files: no indexing)")
        print(f"  output/pagefind/: {size(bundle) / 1e6:.2f} MB in all, {size(bundle, UNUSED_UI) / 1e6:.2f} MB a browser "
              f"can fetch, {sum(1 for _ in (bundle / 'fragment').iterdir())} fragments")
        print(f"  one query « {WORD} », cold cache: {med(figures['bytes']) / 1e3:.0f} kB fetched from /pagefind/")
        print(f"  Chromium: first key to first result {med(figures['first_key']):5.0f} ms; whole word to its results "
              f"{med(figures['whole_word']):5.0f} ms; search page load {med(figures['load']):5.0f} ms (anchor)")
        print(f"  requests to another origin: {figures['foreign']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
