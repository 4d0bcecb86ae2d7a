#!/usr/bin/env python3
"""Share cards' build cost (plugins/share_cards) on a 1,000-post corpus, beside the same build without them.

    python bench/cards_bench.py [--count 1000] [--rounds 3] [--seed 1]

Makes a corpus with bench/make_corpus.py, then for --rounds rounds, in alternating order, builds it as
`make build` does (python -m sitebuild, pelicanconf.py's PLUGINS) with share_cards and without it (the
anchor: the same build, same run, same machine load), each cold (empty cache and output) then warm (again
over that output and cache, nothing edited). The cards' cost is the difference of the medians; it prints
wall and CPU seconds (CPU counts the forked helpers that read posts and draw cards) and the ratios.
"""
import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def declared_plugins() -> list:
    namespace = {"__file__": str(ROOT / "pelicanconf.py")}
    exec(compile((ROOT / "pelicanconf.py").read_text(encoding="utf-8"), "pelicanconf.py", "exec"), namespace)
    return list(namespace["PLUGINS"])


def timed_build(content: Path, work: Path, plugins: list) -> tuple[float, float]:
    """(wall s, CPU s of the build and its helpers) of one `make build` into work/output with work/cache."""
    command = [PYTHON, "-m", "sitebuild", "--content", str(content), "--output", str(work / "output"),
               "-e", f'CACHE_PATH="{work / "cache"}"', f'MAIL_POSTS_PATH="{work / "mail"}"',
               f"PLUGINS={json.dumps(plugins)}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"build failed:\n{result.stderr[-3000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    plugins = declared_plugins()
    assert "share_cards" in plugins, "pelicanconf.py does not enable share_cards"
    variants = {"with cards": plugins, "without (anchor)": [p for p in plugins if p != "share_cards"]}
    times = {(name, phase): [] for name in variants for phase in ("cold", "warm")}
    with tempfile.TemporaryDirectory(prefix="cards-bench-") as folder:
        root = Path(folder)
        content = root / "content"
        shutil.copytree(ROOT / "content" / "pages", content / "pages")
        subprocess.run([PYTHON, str(ROOT / "bench" / "make_corpus.py"), str(args.count), str(content / "posts"),
                        "--seed", str(args.seed)], check=True)
        for number in range(args.rounds):
            order = list(variants) if number % 2 == 0 else list(reversed(variants))
            for name in order:
                work = root / f"{number}-{name.split()[0]}"
                for phase in ("cold", "warm"):
                    times[name, phase].append(timed_build(content, work, variants[name]))
                cards = len(list((work / "output" / "cartes").glob("*.png"))) if name == "with cards" else 0
                if name == "with cards" and cards != args.count:
                    raise SystemExit(f"{cards} cards written for {args.count} posts")
                shutil.rmtree(work)
    print(f"{args.count} posts, {args.rounds} rounds alternating, medians (wall s / CPU s):")
    median = {key: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
              for key, runs in times.items()}
    for phase in ("cold", "warm"):
        with_, without = median["with cards", phase], median["without (anchor)", phase]
        print(f"  {phase}: without cards {without[0]:6.2f} / {without[1]:6.2f}   with cards {with_[0]:6.2f} / "
              f"{with_[1]:6.2f}   cards cost {with_[0] - without[0]:+6.2f} s wall ({with_[0] / without[0]:.2f}x), "
              f"{with_[1] - without[1]:+6.2f} s CPU ({(with_[1] - without[1]) / args.count * 1000:.1f} ms per post)")


if __name__ == "__main__":
    main()
