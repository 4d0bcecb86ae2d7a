"""Benchmark of `make send` over 1, 4 and 8 SMTP connections against as many bare smtplib loops, same sink.

    .venv/bin/python bench/parallel_send_bench.py [--subscribers 100000] [--rounds 1] [--connections 1,4,8]
    .venv/bin/python bench/parallel_send_bench.py --subscribers 100000 --kill-check   # exactly-once after kill -9
    .venv/bin/python bench/parallel_send_bench.py --subscribers 100000 --memory   # peak RSS only, 10k vs 100k
    .venv/bin/python bench/parallel_send_bench.py --checkpoints       # the store's checkpoint, from 1, 4, 8 threads

The sink: `--relays` (default 2) processes, one per relay URL of SMTP_URL, each a minimal asyncio SMTP
server that answers every command at once and discards the data (aiosmtpd parses every line and
header in Python: it was the bottleneck of the bare loops). Each sink process reports the CPU time it
used, printed beside each run, to show it was not saturated.

For each round and each N, alternating: (a) N threads in one process, each a bare smtplib loop on its
own connection (round-robin over the relays), sending one pre-built message count/N times; (b) our
sender, `python -m newsletter.sender` in a subprocess with NEWSLETTER_SMTP_CONNECTIONS=N, to `count`
subscribers of a real SQLite store (process start, settings and rendering included), and its peak RSS
(VmHWM, read every 20 ms while it runs). Prints medians over the rounds and the ratio ours / bare loops. Peak RSS is also taken at
a tenth of the subscribers, to show it does not grow with the list.

--kill-check: the sinks count each recipient; our sender (8 connections) is killed with SIGKILL
halfway, then run again; prints the readers missed (must be 0) and mailed twice (at most one per
connection).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.send_bench import SLUG, fill_store, prepare  # noqa: E402

STEP_TIMEOUT = 1200


# -- the sink -------------------------------------------------------------------------------


class SinkProtocol(asyncio.Protocol):
    """Just enough SMTP for smtplib: 250 to everything, 354 to DATA, the data read up to <CRLF>.<CRLF>."""

    counts: Counter | None = None  # per recipient, with --record

    def connection_made(self, transport):
        self.transport, self.buffer, self.in_data = transport, b"", False
        transport.write(b"220 sink\r\n")

    def data_received(self, chunk):
        self.buffer += chunk
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    self.buffer = self.buffer[-4:]  # the end mark may straddle two chunks
                    return
                self.buffer, self.in_data = self.buffer[end + 5:], False
                self.transport.write(b"250 OK\r\n")
                continue
            newline = self.buffer.find(b"\r\n")
            if newline < 0:
                return
            line, self.buffer = self.buffer[:newline], self.buffer[newline + 2:]
            verb = line[:4].upper()
            if verb == b"DATA":
                self.in_data = True
                self.buffer = b"\r\n" + self.buffer  # so a message's first line can be found as an end mark too
                self.transport.write(b"354 go\r\n")
            elif verb == b"EHLO":
                self.transport.write(b"250-sink\r\n250 8BITMIME\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                if verb == b"RCPT" and self.counts is not None:
                    self.counts[line[8:].strip(b" <>").decode()] += 1
                self.transport.write(b"250 OK\r\n")


def sink(port_file: str, record: str | None) -> None:
    """One sink process; with `record`, writes its recipient counts there on SIGUSR1."""
    if record:
        SinkProtocol.counts = Counter()

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(SinkProtocol, "127.0.0.1", 0, backlog=256)
        Path(port_file + ".tmp").write_text(str(server.sockets[0].getsockname()[1]))
        os.replace(port_file + ".tmp", port_file)
        if record:
            loop.add_signal_handler(signal.SIGUSR1, lambda: dump(record))
        await asyncio.Event().wait()

    asyncio.run(serve())


def dump(record: str) -> None:
    """The counts, written whole under another name then renamed: the reader never sees half a file."""
    Path(record + ".tmp").write_text(json.dumps(SinkProtocol.counts))
    os.replace(record + ".tmp", record)


class Sinks:
    """The sink processes, one per relay; `cpu()` is their CPU seconds so far."""

    def __init__(self, folder: Path, relays: int, record: bool = False):
        self.procs, self.ports, self.records = [], [], []
        for n in range(relays):
            port_file = folder / f"sink{n}.port"
            record_file = folder / f"sink{n}.json" if record else None
            command = [sys.executable, __file__, "--sink", str(port_file)] + (["--record", str(record_file)] if record
                                                                              else [])
            self.procs.append(subprocess.Popen(command, cwd=ROOT))
            self.records.append(record_file)
            deadline = time.monotonic() + 30
            while not port_file.exists():
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit("a sink did not start")
                time.sleep(0.02)
            self.ports.append(int(port_file.read_text()))

    @property
    def url(self) -> str:
        return " ".join(f"smtp://127.0.0.1:{port}" for port in self.ports)

    def cpu(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for proc in self.procs:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def counts(self) -> Counter:
        total = Counter()
        for proc, record in zip(self.procs, self.records):
            record.unlink(missing_ok=True)
            proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 30
            while not record.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            total.update(json.loads(record.read_text()))
        return total

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=10)


# -- the two contenders ------------------------------------------------------------------------


def bare_loops(ports: list[int], raw: bytes, count: int, connections: int) -> float:
    """Seconds for `connections` threads, one smtplib connection each, to send `count` messages in all."""
    shares = [count // connections + (k < count % connections) for k in range(connections)]
    ready = threading.Barrier(connections + 1)

    def loop(port: int, share: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo()
            ready.wait()
            for _ in range(share):
                smtp.sendmail("lettre@egoblog.example", ["lecteur@example.org"], raw)

    threads = [threading.Thread(target=loop, args=(ports[k % len(ports)], shares[k])) for k in range(connections)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def reset(db: Path) -> None:
    """Forget every send: the same store serves the next run."""
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM sends")
        conn.execute("DELETE FROM send_ranges")


def sender(env: dict, db: Path, url: str, connections: int, kill_at: int | None = None) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit status) of one `make send`-equivalent run; `kill_at`: SIGKILL once the
    ranges' checkpoints have passed that many subscribers."""
    run_env = {**os.environ, **env, "NEWSLETTER_DB": str(db), "SMTP_URL": url,
               "NEWSLETTER_SMTP_CONNECTIONS": str(connections)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "newsletter.sender", SLUG], cwd=ROOT, env=run_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, peak = started + STEP_TIMEOUT, 0
    while True:
        peak = max(peak, high_water(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            raise SystemExit(f"the sender took more than {STEP_TIMEOUT} s")
        if kill_at is not None and progress(db) >= kill_at:
            proc.send_signal(signal.SIGKILL)
            kill_at = None
        time.sleep(0.02)
    return time.perf_counter() - started, peak, os.waitstatus_to_exitcode(status)


def high_water(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM, KiB). Not ru_maxrss: a child's ru_maxrss starts
    at its parent's size at fork (Linux keeps the larger across exec), so it measured this bench process."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def progress(db: Path) -> int:
    """Subscribers passed by the ranges' checkpoints (ids are 1..count, none deleted)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT sum(position - lo) FROM send_ranges").fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] or 0


def message(env: dict) -> bytes:
    from newsletter.config import Config
    from newsletter.mail_message import build_mail, load_posts
    config = Config.from_env(environ=env)
    mail = build_mail(config, load_posts(config, [SLUG]))
    return mail.message("lecteur@example.org", "https://x.example/u", "mailto:x@example.org").as_bytes()


# -- runs ------------------------------------------------------------------------------------------------


def compare(env, folder, count, rounds, connections, relays) -> None:
    sinks = Sinks(folder, relays)
    try:
        raw = message(env)
        db, small = folder / "big.sqlite3", folder / "small.sqlite3"
        fill_store(db, count)
        fill_store(small, max(1, count // 10))
        print(f"sink: {relays} minimal asyncio SMTP sink process(es) (one per relay URL); message {len(raw)} bytes; "
              f"{count} subscribers; {rounds} round(s); load average {os.getloadavg()[0]:.1f} at start "
              f"(2 cores, shared with other work)")
        bare, ours, rss, sink_load = {}, {}, {}, {}
        for round_ in range(rounds):
            for n in connections:
                before = sinks.cpu()
                seconds = bare_loops(sinks.ports, raw, count, n)
                bare.setdefault(n, []).append(count / seconds)
                sink_load.setdefault(("bare", n), []).append((sinks.cpu() - before) / seconds)
                reset(db)
                before = sinks.cpu()
                seconds, peak, status = sender(env, db, sinks.url, n)
                if status != 0:
                    raise SystemExit(f"the sender failed (exit {status})")
                ours.setdefault(n, []).append(count / seconds)
                sink_load.setdefault(("ours", n), []).append((sinks.cpu() - before) / seconds)
                rss.setdefault(n, []).append(peak)
                print(f"  round {round_ + 1}, {n} connection(s): bare {bare[n][-1]:7.0f} msg/s, "
                      f"ours {ours[n][-1]:7.0f} msg/s, peak RSS {peak / 1024:.1f} MiB", flush=True)
        reset(small)
        _, small_peak, _ = sender(env, small, sinks.url, max(connections))
        print()
        print(f"| connections | bare smtplib loops msg/s | ours msg/s | ours / bare | sink CPU (cores) bare, ours "
              f"| ours peak RSS |")
        print("|---|---|---|---|---|---|")
        for n in connections:
            b, o = statistics.median(bare[n]), statistics.median(ours[n])
            print(f"| {n} | {b:,.0f} | {o:,.0f} | {o / b:.2f} | {statistics.median(sink_load[('bare', n)]):.2f}, "
                  f"{statistics.median(sink_load[('ours', n)]):.2f} | {statistics.median(rss[n]) / 1024:.1f} MiB |")
        print(f"\npeak RSS of the sender, {max(connections)} connections: {small_peak / 1024:.1f} MiB at "
              f"{max(1, count // 10)} subscribers, {rss[max(connections)][-1] / 1024:.1f} MiB at {count}")
        print(f"(this bench process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    finally:
        sinks.stop()


def memory(env, folder, count, connections, relays) -> None:
    """Only our sender's peak RSS, at a tenth of `count` subscribers and at `count`."""
    sinks = Sinks(folder, relays)
    try:
        for size in (max(1, count // 10), count):
            db = folder / f"memory-{size}.sqlite3"
            fill_store(db, size)
            seconds, peak, status = sender(env, db, sinks.url, connections)
            print(f"{connections} connections, {size:>7} subscribers: peak RSS {peak / 1024:.1f} MiB "
                  f"({size / seconds:.0f} msg/s, exit {status})", flush=True)
    finally:
        sinks.stop()


def kill_check(env, folder, count, connections, relays) -> None:
    sinks = Sinks(folder, relays, record=True)
    try:
        db = folder / "kill.sqlite3"
        fill_store(db, count)
        seconds, _, status = sender(env, db, sinks.url, connections, kill_at=count // 2)
        print(f"first run: exit {status} after {seconds:.1f} s (SIGKILL at about {count // 2} subscribers)")
        seconds, _, status = sender(env, db, sinks.url, connections)
        print(f"resumed run: exit {status} after {seconds:.1f} s")
        counts = sinks.counts()
        readers = {f"lecteur{n:06d}@example.org" for n in range(count)}
        missed = readers - set(counts)
        twice = {reader: n for reader, n in counts.items() if n > 1}
        print(f"{count} subscribers, {connections} connections: {len(missed)} missed, {len(twice)} mailed twice "
              f"(at most {connections} allowed), {sum(1 for n in twice.values() if n > 2)} more than twice, "
              f"{len(set(counts) - readers)} unknown")
        if missed or len(twice) > connections or any(n > 2 for n in twice.values()) or status != 0:
            raise SystemExit("FAILED: the exactly-once guarantee did not hold")
    finally:
        sinks.stop()


def checkpoints(folder: Path, threads: list[int], per_thread: int = 2000) -> None:
    """Cost of the per-message checkpoint on the SQLite store (one connection behind a lock) from 1..N threads."""
    from newsletter.store import open_store
    with open_store(folder / "checkpoints.sqlite3") as store:
        store.add_many(f"lecteur{n:06d}@example.org" for n in range(max(threads)))
        for n in threads:
            ranges = store.start_ranges(f"post-{n}", [(k, k + 1) for k in range(n - 1)] + [(n - 1, None)])

            def walk(lo: int) -> None:
                for position in range(per_thread):
                    store.save_range_position(f"post-{n}", lo, position)

            with store.fast_checkpoints():
                workers = [threading.Thread(target=walk, args=(lo,)) for lo, _, _ in ranges]
                started = time.perf_counter()
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                elapsed = time.perf_counter() - started
            print(f"checkpoints from {n} thread(s): {n * per_thread / elapsed:8.0f} per second in all "
                  f"({elapsed / (n * per_thread) * 1e6:.0f} µs each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", default="1,4,8")
    parser.add_argument("--relays", type=int, default=2)
    parser.add_argument("--kill-check", action="store_true")
    parser.add_argument("--checkpoints", action="store_true", help="only the cost of the per-message checkpoint")
    parser.add_argument("--memory", action="store_true", help="only our sender's peak RSS at count/10 and count")
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        return sink(args.sink, args.record)
    connections = [int(n) for n in args.connections.split(",")]
    with tempfile.TemporaryDirectory(prefix="parallel-send-bench-") as name:
        folder = Path(name)
        env = {} if args.checkpoints else prepare(folder, args.subscribers)
        if args.checkpoints:
            checkpoints(folder, connections)
        elif args.memory:
            memory(env, folder, args.subscribers, max(connections), args.relays)
        elif args.kill_check:
            kill_check(env, folder, args.subscribers, max(connections), args.relays)
        else:
            compare(env, folder, args.subscribers, args.rounds, connections, args.relays)


if __name__ == "__main__":
    main()
