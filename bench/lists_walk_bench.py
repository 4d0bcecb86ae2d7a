"""What lists cost the sender's walk: the recipients of a post (whole blog + its rubrique, one keyset walk
with EXISTS, pages of 500) against the walk over every subscriber (the anchor: what a send read before
lists), on stores of 10,000 / 100,000 addresses, half on the whole blog, the rest spread over 8 rubriques.
Medians of 5, alternating.

    .venv/bin/python bench/lists_walk_bench.py [--sizes 10000 100000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.store import WHOLE_BLOG, open_store  # noqa: E402

ROUNDS = 5
BATCH = 500  # the sender's page
RUBRIQUES = [f"rubrique-{k}" for k in range(8)]


def walk(store, lists) -> int:
    position, count = 0, 0
    while page := store.subscribers_after(position, BATCH, lists=lists):
        count += len(page)
        position = page[-1][0]
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print(f"{'addresses':>10}{'recipients':>11}{'all ms':>9}{'lists ms':>10}{'ratio':>7}")
    for size in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="lists-bench-"))
        with open_store(folder / "abonnes.sqlite3") as store:
            for k, lists in enumerate([[WHOLE_BLOG]] + [[r] for r in RUBRIQUES]):
                share = range(k, size, 2) if k == 0 else range(2 * k - 1, size, 2 * len(RUBRIQUES))
                store.add_many([f"lecteur.{n:06d}@exemple.fr" for n in share], lists)
            post = [WHOLE_BLOG, RUBRIQUES[3]]
            anchor, lists_times = [], []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                walk(store, None)
                anchor.append(time.perf_counter() - started)
                started = time.perf_counter()
                recipients = walk(store, post)
                lists_times.append(time.perf_counter() - started)
            a, b = statistics.median(anchor) * 1000, statistics.median(lists_times) * 1000
            print(f"{size:>10}{recipients:>11}{a:>9.1f}{b:>10.1f}{b / a:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
