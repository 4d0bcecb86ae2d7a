"""Benchmark of `make send`: our sender against the limit of the same local SMTP sink.

    .venv/bin/python bench/send_bench.py [--subscribers 10000]

1. Builds the site's posts into a temporary folder (records for the sender).
2. Starts an aiosmtpd sink in its own process (it must not share our GIL).
3. (a) The sink's limit: a bare smtplib loop sending one pre-built message
   N times over one connection.
   (b) Our sender (`python -m newsletter.sender`, a subprocess) to N subscribers
   in a temporary SQLite store, and its peak RSS at 1,000 / 5,000 / N subscribers.
Prints messages per second for both and the ratio (goal: at least 0.5).
Every step has a timeout, so the whole run is bounded.
"""
from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "le-cr-aime"
STEP_TIMEOUT = 600


def sink(port_file: str) -> None:
    """The SMTP sink: accepts everything, keeps nothing."""
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=0 or _free_port())
    controller.start()
    Path(port_file).write_text(str(controller.port))
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(folder: Path) -> tuple[subprocess.Popen, int]:
    port_file = folder / "sink.port"
    proc = subprocess.Popen([sys.executable, __file__, "--sink", str(port_file)], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the SMTP sink did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def prepare(folder: Path, subscribers: int) -> dict:
    """Built post records and an environment for the sender."""
    from tests.conftest import build
    from tests.fixtures.mail.support import environ, write_settings
    write_settings(folder, content=ROOT / "content")
    build(ROOT / "content", folder / "output", settings=str(folder / "settings.py"))
    return environ(folder)


def fill_store(path: Path, count: int) -> None:
    from newsletter.store import open_store
    with open_store(path) as store:
        store.add_many(f"lecteur{n:06d}@example.org" for n in range(count))


def bare_loop(port: int, env: dict, count: int) -> float:
    """Messages per second of smtplib sending one pre-built message `count` times over one connection."""
    from newsletter.config import Config
    from newsletter.mail_message import build_mail, load_posts
    config = Config.from_env(environ=env)
    mail = build_mail(config, load_posts(config, [SLUG]))
    raw = mail.message("lecteur@example.org", "https://x.example/u", "mailto:x@example.org").as_bytes()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        started = time.perf_counter()
        for _ in range(count):
            smtp.sendmail("lettre@egoblog.example", ["lecteur@example.org"], raw)
        elapsed = time.perf_counter() - started
    print(f"  message size: {len(raw)} bytes")
    return count / elapsed


def run_sender(env: dict, folder: Path, count: int, port: int) -> tuple[float, float, int]:
    """(messages per second, seconds, peak RSS in KiB) of one sender run to `count` subscribers."""
    db = folder / f"subscribers-{count}.sqlite3"
    fill_store(db, count)
    run_env = {**os.environ, **env, "NEWSLETTER_DB": str(db), "SMTP_URL": f"smtp://127.0.0.1:{port}"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "newsletter.sender", SLUG], cwd=ROOT, env=run_env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = started + STEP_TIMEOUT
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            raise SystemExit(f"the sender took more than {STEP_TIMEOUT} s for {count} subscribers")
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    out = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the sender failed:\n{out}")
    return count / elapsed, elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        return sink(args.sink)

    folder = Path(tempfile.mkdtemp(prefix="send-bench-"))
    proc = None
    try:
        env = prepare(folder, args.subscribers)
        proc, port = start_sink(folder)
        n = args.subscribers
        print(f"SMTP sink: aiosmtpd on 127.0.0.1:{port} (own process); post: {SLUG}")
        limit = bare_loop(port, env, n)
        print(f"(a) bare smtplib loop, {n} messages, one connection: {limit:8.0f} msg/s")
        sizes = sorted({min(1000, n), min(5000, n), n})
        results = {size: run_sender(env, folder, size, port) for size in sizes}
        rate, elapsed, _ = results[n]
        print(f"(b) newsletter.sender, {n} subscribers: {rate:8.0f} msg/s ({elapsed:.1f} s, process start included)")
        print(f"    ratio sender / sink limit: {rate / limit:.2f} (goal >= 0.5)")
        for size, (r, e, rss) in results.items():
            print(f"    peak RSS at {size:>6} subscribers: {rss / 1024:6.1f} MiB  ({r:.0f} msg/s)")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
