"""What a complete erasure costs: `Store.remove` (DELETE, VACUUM, WAL truncated) against the old
DELETE + checkpoint alone, on stores of 1,000 / 10,000 / 100,000 addresses. Medians of 7.

    .venv/bin/python bench/erasure_bench.py [--sizes 1000 10000 100000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.store import open_store  # noqa: E402

ROUNDS = 7


def address(n: int) -> str:
    return f"lecteur.{n:06d}@exemple-{n % 97}.fr"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    args = parser.parse_args()
    print(f"{'addresses':>10}{'file KB':>9}{'DELETE+ckpt ms':>16}{'remove() ms':>13}{'ratio':>7}")
    for size in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="erasure-bench-"))
        store = open_store(folder / "abonnes.sqlite3")
        store.add_many(address(n) for n in range(size))
        bare, full = [], []
        for k in range(ROUNDS):
            with store._lock:  # the anchor: what an unsubscribe did before (leaves copies in free space)
                started = time.perf_counter()
                store._db.execute("DELETE FROM subscribers WHERE email = ?", (address(2 * k),))
                store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.remove(address(2 * k + 1))
            full.append(time.perf_counter() - started)
        kb = (folder / "abonnes.sqlite3").stat().st_size / 1024
        b, f = statistics.median(bare) * 1000, statistics.median(full) * 1000
        print(f"{size:>10}{kb:>9.0f}{b:>16.1f}{f:>13.1f}{f / b:>7.1f}")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
