"""The service near its ceiling: each request against a hello-world app under the same server, then a
signup burst whose confirmation mails are timed against a bare smtplib loop into the same SMTP sink.

    .venv/bin/python bench/service_bench.py [--seconds 8] [--rounds 3] [--burst 5000] [--clients 500] [--backlog 1024]

Both apps run under the production server (`python -m newsletter.server`, uvicorn, 1 worker, with its
connection guard; ours with its mail process, newsletter/mailproc.py), each in its own process, behind --proxy-headers from 127.0.0.1 as behind nginx. The
load is wrk (C, not Python: it measures the servers, not itself) with bench/service_bench.lua: 50
connections, fixed duration, rounds alternating ours / hello world. Every request comes from a new
client address (X-Forwarded-For), so the per-client limits run and never refuse; every signup is a new
address; GET confirm asks for signed links of the service's own Signer and secret, POST confirm
confirms a new reader each time (stored, welcome mail queued). Production rate limits are on.

The burst: BURST signups from CLIENTS addresses (10 each: the per-client limit lets exactly that
through), over as many connections. Each answer waits for the relay's 250 for its mail, so the time of
the last mail in the sink is the end of the burst. Then the anchor: the same number of mails (the
service's confirmation mail, built once) sent by a bare smtplib loop, one thread per connection, as
many connections as the service's mail workers, into the same sink. The sink is a minimal asyncio SMTP
server in its own processes; its own ceiling (smtplib from one process per connection) is printed too.

The table also gives the CPU time each request cost, the server's and its children's (ours: the mail
process), user and system: on a shared machine it moves less than the rates.

No DKIM key: signing is pure-Python RSA, ~25 ms a mail, and would be the ceiling of both sides.
Needs wrk (Debian package wrk).
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import Config  # noqa: E402
from newsletter.confirmation import ConfirmationMail  # noqa: E402
from newsletter.mailer import envelope, wire_bytes  # noqa: E402
from newsletter.outgoing import WORKERS  # noqa: E402
from newsletter.pages import mail_environment  # noqa: E402
from newsletter.signing import Signer  # noqa: E402

SECRET = "banc-" + "c" * 32
LUA = ROOT / "bench" / "service_bench.lua"
CONNECTIONS = 50
REQUESTS = {"GET confirm page": "get_confirm", "POST signup": "signup", "POST confirm": "post_confirm"}
SERVED = {"ours": "newsletter.asgi:app", "hello world": "bench.hello_app:app"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the SMTP sink -----------------------------------------------------------------------------

class SinkProtocol(asyncio.Protocol):
    """Just enough SMTP to take mails as fast as they come, and count them. It offers what Postfix offers
    a client to save round trips, PIPELINING and CHUNKING (BDAT): the service uses both, smtplib neither."""

    def __init__(self, counter):
        self.counter = counter
        self.buffer = bytearray()
        self.in_data = False
        self.chunk = None  # bytes of a BDAT chunk still to come, and whether it is the LAST

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data):
        self.buffer += data
        out = []
        while True:
            if self.chunk is not None:
                size, last = self.chunk
                if len(self.buffer) < size:
                    break
                del self.buffer[:size]
                self.chunk = None
                if last:
                    with self.counter.get_lock():
                        self.counter.value += 1
                out.append(b"250 2.0.0 OK\r\n")
                continue
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                del self.buffer[:end + 5]
                self.in_data = False
                with self.counter.get_lock():
                    self.counter.value += 1
                out.append(b"250 2.0.0 OK\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            verb = bytes(self.buffer[:4]).upper()
            line = bytes(self.buffer[:end])
            del self.buffer[:end + 2]
            if verb in (b"EHLO", b"HELO"):
                out.append(b"250-sink\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"BDAT":
                words = line.split()
                self.chunk = (int(words[1]), len(words) > 2 and words[2].upper() == b"LAST")
            elif verb == b"DATA":
                self.in_data = True
                self.buffer[:0] = b"\r\n"  # the terminator's first CRLF may be the DATA line's own
                out.append(b"354 go on\r\n")
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:
                out.append(b"250 OK\r\n")
        if out:
            self.transport.write(b"".join(out))


def _sink_process(sock: socket.socket, counter) -> None:
    async def main():
        server = await asyncio.get_running_loop().create_server(lambda: SinkProtocol(counter), sock=sock)
        await server.serve_forever()
    asyncio.run(main())


@contextmanager
def sink(processes: int):
    """An SMTP sink on a free port: yields (port, counter of mails taken)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("q", 0)
    procs = [ctx.Process(target=_sink_process, args=(sock, counter), daemon=True) for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        yield sock.getsockname()[1], counter
    finally:
        for proc in procs:
            proc.kill()
            proc.join()
        sock.close()


# -- the servers ---------------------------------------------------------------------------------

@contextmanager
def server(app: str, env: dict, log: Path, mail_process: str = "auto", backlog: int = 1024):
    port = free_port()
    command = [sys.executable, "-m", "newsletter.server", "--app", app, "--port", str(port),
               "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--backlog", str(backlog),  # as deploy/'s unit
               "--mail-process", mail_process]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
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
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(port: int, mode: str, seconds: float, connections: int, finished=None, **env) -> dict:
    """One wrk run; its req/s, p99 (ms), non-2xx/3xx count, socket errors and statuses (burst only).
    With `finished` (polled), the run ends (SIGINT) as soon as it says so: wrk itself runs for -d."""
    variables = {**os.environ, "BENCH_MODE": mode, "BENCH_THREADS": "2", **{k: str(v) for k, v in env.items()}}
    started = time.perf_counter()
    proc = subprocess.Popen(["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s",
                             "--latency", "-s", str(LUA), f"http://127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=variables)
    if finished is not None:
        while proc.poll() is None and not finished():
            time.sleep(0.01)  # the harness takes little CPU from the servers; 10 ms in 3 s or more
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"wrk failed: {err}")
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
            "p99": float(p99[1]) * {"us": 0.001, "ms": 1, "s": 1000}[p99[2]] if p99 else float("nan"),
            "non2xx": int(non2xx[1]) if non2xx else 0, "errors": sum(map(int, errors.groups())) if errors else 0,
            "error_kinds": errors.group(0) if errors else "",
            "requests": int(re.search(r"(\d+) requests in", out)[1]), "elapsed": elapsed,
            "statuses": {int(c): int(n) for c, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}}


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and of its children alive now (ours: its mail process)."""
    def own(p) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return own(pid) + sum(own(c) for c in children if Path(f"/proc/{c}").exists())


def confirm_paths(config: Config, signer: Signer, prefix: str, count: int, folder: Path) -> Path:
    """A file of `count` signed confirmation paths, one new reader each."""
    path = folder / f"{prefix}.paths"
    base = config.newsletter_path
    path.write_text("".join(f"{base}/confirmer/{signer.confirm_token(f'{prefix}{n}@exemple.fr')}\n"
                            for n in range(count)))
    return path


# -- the mail anchor ----------------------------------------------------------------------------

def bare_loop(port: int, data: bytes, sender: str, recipients: list[str], count: int, connections: int) -> float:
    """Seconds for `count` mails over `connections` smtplib connections, one thread each."""
    def one(n):
        smtp = smtplib.SMTP("127.0.0.1", port)
        for _ in range(n):
            smtp.sendmail(sender, recipients, data)
        smtp.quit()

    shares = [count // connections + (i < count % connections) for i in range(connections)]
    threads = [threading.Thread(target=one, args=(n,)) for n in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _bare_process(args):
    return bare_loop(*args)


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (TcpExt: ListenOverflows):
    each such client waits for its SYN to be sent again, a second later."""
    head, values = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()[:2]]
    return int(dict(zip(head, values)).get("ListenOverflows", 0))


def settle(counter) -> int:
    """Wait until the sink's count stops moving (mails of earlier requests still leaving)."""
    last = -1
    while counter.value != last:
        last = counter.value
        time.sleep(0.5)
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--sink-processes", type=int, default=2)
    parser.add_argument("--only", choices=["table", "burst"], help="one part only")
    parser.add_argument("--backlog", type=int, default=1024, help="both servers' listen queue (deploy/'s unit: 1024)")
    parser.add_argument("--mail-process", choices=["auto", "yes", "no"], default="auto",
                        help="ours: its mails in a child process or not (python -m newsletter.server's option)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="service-bench-"))
    with sink(args.sink_processes) as (smtp_port, counter):
        env = {"NEWSLETTER_DB": str(folder / "abonnes.sqlite3"), "NEWSLETTER_OUTBOX": str(folder / "outbox"),
               "NEWSLETTER_SECRET": SECRET, "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}"}
        os.environ.update({k: v for k, v in env.items() if k != "NEWSLETTER_SECRET"})
        config = Config.from_env(environ={**os.environ, **env})
        signer = Signer(config.secrets)
        with server(SERVED["ours"], env, folder / "ours.log", args.mail_process, args.backlog) as ours, \
                server(SERVED["hello world"], env, folder / "hello.log", backlog=args.backlog) as hello:
            ports = {"ours": ours, "hello world": hello}  # (port, pid) each
            if args.only != "burst":
                table(args, config, signer, ports, folder)
            if args.only != "table":
                burst(args, config, ours[0], smtp_port, counter, folder)
    return 0


def table(args, config, signer, ports, folder) -> None:
    # Enough readers that no POST confirm of a round confirms one twice (a hello world: 20,000 req/s at most).
    per_round = int(20_000 * args.seconds)
    gets = confirm_paths(config, signer, "page", 1000, folder)
    results: dict[tuple[str, str], list[dict]] = {}
    for request, mode in REQUESTS.items():
        for run in range(args.rounds):
            order = list(SERVED) if run % 2 == 0 else list(reversed(SERVED))
            paths = gets
            if mode == "post_confirm":
                paths = confirm_paths(config, signer, f"c{run}r", per_round, folder)
            for name in order:
                port, pid = ports[name]
                before = cpu_seconds(pid)
                result = wrk(port, mode, args.seconds, CONNECTIONS, BENCH_RUN=f"{run}{name[0]}",
                             BENCH_PATHS=paths)
                result["cpu"] = (cpu_seconds(pid) - before) * 1000 / max(1, result["requests"])
                results.setdefault((request, name), []).append(result)
                print(f"  {request:<17} round {run + 1} {name:<12} {result['rps']:>8.0f} req/s  "
                      f"p99 {result['p99']:>6.1f} ms  CPU {result['cpu']:.2f} ms/req  "
                      f"non-2xx/3xx {result['non2xx']}  errors {result['errors']}",
                      file=sys.stderr, flush=True)
    print(f"\n{CONNECTIONS} connections, {args.seconds:g} s a run, medians of {args.rounds} rounds (wrk)\n")
    print("| request | ours req/s, p99 | hello world req/s, p99 | ratio | CPU ms/request, ours / hello world |")
    print("|---|---|---|---|---|")
    for request in REQUESTS:
        mine, anchor = results[(request, "ours")], results[(request, "hello world")]
        rps, p99 = statistics.median(r["rps"] for r in mine), statistics.median(r["p99"] for r in mine)
        arps, ap99 = statistics.median(r["rps"] for r in anchor), statistics.median(r["p99"] for r in anchor)
        bad = sum(r["non2xx"] + r["errors"] for r in mine)
        note = f", **{bad} non-2xx/3xx or socket errors**" if bad else ""
        cpu, acpu = statistics.median(r["cpu"] for r in mine), statistics.median(r["cpu"] for r in anchor)
        print(f"| {request} | {rps:,.0f} req/s, p99 {p99:.0f} ms{note} | {arps:,.0f} req/s, p99 {ap99:.0f} ms | "
              f"{rps / arps:.2f} | {cpu:.2f} / {acpu:.2f} |")


def burst(args, config, port, smtp_port, counter, folder) -> None:
    per_client = args.burst // args.clients
    before = settle(counter)
    done = folder / "burst-done-"
    progress = {"count": before, "at": time.perf_counter()}

    def finished() -> bool:
        """Both wrk threads had their answers, or nothing moved for 20 s. Not as soon as every mail is in:
        the last answers are still on their way back (the relay's 250, the mail process, HTTP)."""
        now, count = time.perf_counter(), counter.value
        if count != progress["count"]:
            progress.update(count=count, at=now)
        return all(Path(f"{done}{n}").exists() for n in range(2)) or now - progress["at"] > 20

    overflows = listen_overflows()
    started = time.perf_counter()
    result = wrk(port, "signup", 600, args.clients, finished=finished, BENCH_DONE=done, BENCH_CLIENTS=args.clients,
                 BENCH_QUOTA=args.burst // 2, BENCH_NET="172", BENCH_RUN=16)
    statuses = result["statuses"]
    accepted = sum(n for code, n in statuses.items() if 200 <= code < 400)
    unanswered = args.burst - sum(n for code, n in statuses.items() if code != 404)
    while counter.value < before + accepted and time.perf_counter() - progress["at"] < 20:
        finished()  # keeps progress["at"]: the time the sink last took a mail
        time.sleep(0.01)
    finished()
    last_mail = progress["at"]
    overflows = listen_overflows() - overflows
    mailed = counter.value - before
    ours = mailed / (last_mail - started)

    msg, _ = ConfirmationMail(config, Signer(config.secrets), mail_environment(config)).message("lecteur@exemple.fr")
    data = wire_bytes(msg)
    sender, recipients = envelope(msg)
    settle(counter)
    bare = args.burst / bare_loop(smtp_port, data, sender, recipients, args.burst, WORKERS)
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        begun = time.perf_counter()
        pool.map(_bare_process, [(smtp_port, data, sender, recipients, args.burst // WORKERS, 1)] * WORKERS)
        sink_rate = args.burst // WORKERS * WORKERS / (time.perf_counter() - begun)

    others = {code: n for code, n in statuses.items() if code >= 400 and code not in (404, 503)}
    print(f"\nBurst: {args.burst} signups from {args.clients} clients ({per_client} each), "
          f"{args.clients} connections")
    print(f"  answers: {accepted} accepted, {statuses.get(503, 0)} × 503, other non-2xx/3xx {others or 0}, "
          f"unanswered {unanswered} (wrk socket errors {result['errors']}: {result['error_kinds']})")
    print(f"  connections dropped by a full listen queue (the kernel's ListenOverflows): {overflows}")
    print(f"  last mail in the sink {last_mail - started:.2f} s after the first signup: {mailed} mails, "
          f"{ours:,.0f} mails/s")
    print(f"  bare smtplib loop, {WORKERS} connections (threads of one process): {bare:,.0f} mails/s; "
          f"ratio {ours / bare:.2f}")
    print(f"  the sink's own ceiling ({WORKERS} processes, one connection each): {sink_rate:,.0f} mails/s")


if __name__ == "__main__":
    sys.exit(main())
