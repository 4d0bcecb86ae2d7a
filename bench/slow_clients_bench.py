"""Normal requests while 1,000 slow clients hold connections, the service at a 1,024-file limit.

    .venv/bin/python bench/slow_clients_bench.py [--slow 1000] [--seconds 10]

Side by side, same machine, same run: the production server (python -m newsletter.server, with the
connection guard) and stock uvicorn (`uvicorn newsletter.asgi:app`), each idle and under attack.
The attackers come from 1,000 loopback addresses (127.1.x.y), start a request, add one header line a
second and reconnect when closed; the normal load is wrk (C, not Python: it measures the server, not
itself), 10 connections from 127.0.0.1 asking for a missing page (the app's French 404; the link
pages are rate-limited per client, which would measure the limiter). Needs `wrk` (Debian package wrk).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


SECRET = "banc-" + "b" * 32
LIMIT = 1024
SERVERS = {
    "guarded": [sys.executable, "-m", "newsletter.server", "--port", "{port}"],
    "stock uvicorn": [sys.executable, "-m", "uvicorn", "newsletter.asgi:app", "--port", "{port}", "--no-access-log"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], folder: Path):
    port = free_port()
    log = folder / f"server-{port}.log"
    env = {**os.environ, "NEWSLETTER_DB": str(folder / "abonnes.sqlite3"), "NEWSLETTER_OUTBOX": str(folder / "outbox"),
           "NEWSLETTER_SECRET": SECRET}
    with open(log, "wb") as out:
        proc = subprocess.Popen([part.format(port=port) for part in command], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT,
                                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT)))
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text())
            time.sleep(0.05)
    try:
        yield port, log
    finally:
        proc.kill()
        proc.wait()


class Attack:
    """`count` slow clients in a thread of their own."""

    def __init__(self, port: int, count: int):
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.closed_by_server = 0
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def client(self, n: int):
        source = (f"127.1.{n // 250}.{1 + n % 250}", 0)
        while not self.stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port, local_addr=source)
            except OSError:
                await asyncio.sleep(1)
                continue
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: egoblog.example\r\n")
                while not self.stop.is_set():
                    try:
                        await asyncio.wait_for(reader.read(1), 1)  # data or EOF: the server gave up on us
                        self.closed_by_server += 1
                        break
                    except asyncio.TimeoutError:
                        writer.write(b"X-Lent: encore\r\n")
            except OSError:
                self.closed_by_server += 1
            finally:
                writer.close()

    async def run(self):
        tasks = [asyncio.create_task(self.client(n)) for n in range(self.count)]
        while not self.stop.is_set():
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self):
        self.thread.start()
        time.sleep(3)  # let the attackers connect and settle
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def wrk(port: int, seconds: int) -> dict:
    path = "/newsletter/page-inconnue"  # the French 404 page, rendered by the app; links are rate-limited
    out = subprocess.run(["wrk", "-t2", "-c10", f"-d{seconds}s", "--timeout", "5s", "--latency",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout

    def ms(label):
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        return float(match[1]) * {"us": 0.001, "ms": 1, "s": 1000}[match[2]]

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]), "p50": ms("50%"), "p99": ms("99%"),
            "errors": sum(map(int, errors.groups())) if errors else 0, "non2xx": int(non2xx[1]) if non2xx else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, nargs="+", default=[1000, 1100])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attackers need their own files
    folder = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    print(f"{'server':<15}{'attack':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'non-2xx':>9}"
          f"{'closed':>8}{'log KB':>8}")
    for name, command in SERVERS.items():
        for slow in (0, *args.slow):
            with server(command, folder) as (port, log):
                closed = 0
                if slow:
                    with Attack(port, slow) as attack:
                        result = wrk(port, args.seconds)
                        closed = attack.closed_by_server
                else:
                    result = wrk(port, args.seconds)
                print(f"{name:<15}{slow:>8}{result['rps']:>9.0f}{result['p50']:>9.1f}{result['p99']:>9.1f}"
                      f"{result['errors']:>8}{result['non2xx']:>9}{closed:>8}{log.stat().st_size / 1024:>8.0f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
