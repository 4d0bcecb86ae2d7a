"""What an erasure costs on PostgreSQL: `PostgresStore.remove` (DELETE, VACUUM, VACUUM FULL of the
partitions that held the reader) against a bare DELETE of the reader and its memberships, and against
the SQLite store's `remove` on as many addresses, in one run, on a throw-away cluster with the default
durability (fsync on). Medians of 7, alternating.

    .venv/bin/python bench/pg_erasure_bench.py [--sizes 1000 10000 100000 1000000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from newsletter.pgstore import KEY_OF  # noqa: E402
from newsletter.store import open_store  # noqa: E402
from tests.fixtures.postgres import running_cluster  # noqa: E402

ROUNDS = 7


def address(n: int) -> str:
    return f"lecteur.{n:06d}@exemple-{n % 97}.fr"


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    args = parser.parse_args()
    print(f"{'addresses':>10}{'PG DELETE ms':>14}{'PG remove() ms':>16}{'SQLite remove() ms':>20}"
          f"{'PG/DELETE':>11}{'PG/SQLite':>11}")
    with running_cluster(durable=True) as server:
        for size in args.sizes:
            url = server.new_database()
            pg, lite = open_store(url), open_store(Path(tempfile.mkdtemp(prefix="pg-bench-")) / "a.sqlite3")
            everyone = [address(n) for n in range(size)]
            pg.add_many(everyone)
            lite.add_many(everyone)
            bare, full, anchor = [], [], []
            with psycopg.connect(url, autocommit=True) as conn:
                for k in range(ROUNDS):
                    email = address(3 * k)
                    bare.append(timed(lambda: conn.execute(  # the anchor: off the lists, bytes left on disk
                        f"WITH gone AS (DELETE FROM subscribers WHERE key = {KEY_OF} RETURNING id) "
                        "DELETE FROM memberships WHERE subscriber_id IN (SELECT id FROM gone)", (email,))))
                    conn.execute("SELECT pg_stat_force_next_flush()")  # counted before remove()'s VACUUM reads
                    full.append(timed(lambda: pg.remove(address(3 * k + 1))))
                    anchor.append(timed(lambda: lite.remove(address(3 * k + 2))))
            b, f, a = (statistics.median(x) for x in (bare, full, anchor))
            print(f"{size:>10}{b:>14.1f}{f:>16.1f}{a:>20.1f}{f / b:>11.1f}{f / a:>11.2f}")
            pg.close()
            lite.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
