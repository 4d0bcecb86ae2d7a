"""500 concurrent signups, then 500 concurrent confirmations of distinct addresses,
against the real app on uvicorn (in its own process) over loopback. Asserts every address is stored
exactly once and no 5xx; prints requests per second.

    .venv/bin/python bench/signup_bench.py [--count 500] [--concurrency 500]

Rate limits are off (every request comes from 127.0.0.1); mail goes to a temporary
outbox, and the confirmation links are read back from it, as a reader would.
"""
from __future__ import annotations

import argparse
import asyncio
import email
import multiprocessing
import re
import socket
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from email.policy import default as default_policy
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.app import create_app  # noqa: E402
from newsletter.config import Config  # noqa: E402
from newsletter.ratelimit import NO_LIMITS  # noqa: E402

LINK = re.compile(r"https?://\S+?(/newsletter/confirmer/[\w.\-]+)")
TIME_LIMIT = 300  # seconds, for the whole run


async def burst(base: str, requests: list[tuple[str, dict]], concurrency: int) -> tuple[list[int], float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        async def one(path, data):
            async with sem:
                r = await client.post(path, data=data, headers={"Accept": "application/json"})
                return r.status_code

        start = time.perf_counter()
        codes = await asyncio.gather(*(one(p, d) for p, d in requests))
        return codes, time.perf_counter() - start


def wait_for_outbox(outbox: Path, count: int, deadline: float) -> list[Path]:
    while True:
        files = list(outbox.glob("*.eml")) if outbox.exists() else []
        if len(files) >= count or time.monotonic() > deadline:
            return files
        time.sleep(0.05)


def serve(config: Config, port: int) -> None:
    """The server, in its own process: the client's work does not share its interpreter."""
    import uvicorn

    from newsletter.guard import GuardedH11Protocol
    # The production protocol, as behind a proxy on 127.0.0.1 (every client is one address here).
    uvicorn.run(create_app(config, limits=NO_LIMITS), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, backlog=4096, http=GuardedH11Protocol, proxy_headers=True)


@contextmanager
def server_process(config: Config):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(config, port), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        proc.terminate()  # uvicorn shuts down on SIGTERM, running the lifespan's cleanup
        proc.join(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=500)
    args = parser.parse_args()
    deadline = time.monotonic() + TIME_LIMIT
    folder = Path(tempfile.mkdtemp(prefix="signup-bench-"))
    config = Config(public_url="http://127.0.0.1:8000", newsletter_url="http://127.0.0.1:8000/newsletter",
                    mail_from="égoBlog <lettre@egoblog.example>", reply_to="francois@egoblog.example",
                    site_name="égoBlog", db=str(folder / "abonnes.sqlite3"), outbox=folder / "outbox",
                    secrets=["bench-secret-" + "b" * 24])
    addresses = [f"lecteur{n:04d}+bench@exemple.fr" for n in range(args.count)]
    with server_process(config) as base:
        started = time.perf_counter()
        codes, signup_time = asyncio.run(burst(
            base, [("/newsletter/inscription", {"email": a}) for a in addresses], args.concurrency))
        files = wait_for_outbox(config.outbox, args.count, deadline)
        mailed_time = time.perf_counter() - started  # until the last confirmation mail is written
        paths = []
        for f in files:
            msg = email.message_from_bytes(f.read_bytes(), policy=default_policy)
            paths.append(LINK.search(msg.get_body(("plain",)).get_content()).group(1))
        confirm_codes, confirm_time = asyncio.run(burst(base, [(p, {}) for p in paths], args.concurrency))

    db = sqlite3.connect(config.db)
    stored = [r[0] for r in db.execute("SELECT email FROM subscribers")]
    db.close()
    total = len(codes) + len(confirm_codes)
    print(f"signups:       {len(codes)} in {signup_time:.2f} s = {len(codes) / signup_time:.0f} req/s "
          f"(status {sorted(set(codes))})")
    print(f"mails written: {len(files)}, the last {mailed_time:.2f} s after the first signup = "
          f"{len(files) / mailed_time:.0f} signups with their mail a second")
    print(f"confirmations: {len(confirm_codes)} in {confirm_time:.2f} s = {len(confirm_codes) / confirm_time:.0f} req/s "
          f"(status {sorted(set(confirm_codes))})")
    print(f"overall:       {total} requests in {signup_time + confirm_time:.2f} s = "
          f"{total / (signup_time + confirm_time):.0f} req/s, concurrency {args.concurrency}")
    assert not [c for c in codes + confirm_codes if c >= 500], "5xx answers"
    assert all(c == 202 for c in codes), "every signup accepted"
    assert all(c == 200 for c in confirm_codes), "every confirmation accepted"
    assert len(files) == args.count, f"{len(files)} mails for {args.count} signups"
    assert sorted(stored) == sorted(addresses), "every address stored exactly once"
    print(f"OK: {len(stored)} addresses stored exactly once, no 5xx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
