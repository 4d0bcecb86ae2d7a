"""Slow or hostile clients cannot exhaust the service: the production server (python -m newsletter.server)
under an open-file limit, held by connections that never finish their request."""
import logging
import os
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from newsletter import quietlog
from newsletter.signing import Signer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "garde-" + "g" * 32
FILE_LIMIT = 512


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, request_timeout: float):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "server.log"
        env = {**os.environ, "NEWSLETTER_DB": str(tmp / "abonnes.sqlite3"), "NEWSLETTER_OUTBOX": str(tmp / "outbox"),
               "NEWSLETTER_SECRET": SECRET, "NEWSLETTER_REQUEST_TIMEOUT": str(request_timeout)}
        env.pop("SMTP_URL", None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "newsletter.server", "--port", str(self.port)], cwd=ROOT, env=env,
                stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT)))
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.base + "/", timeout=1)
                break
            except httpx.HTTPError:
                assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.05)
        self.page = "/newsletter/desinscription/" + Signer([SECRET]).unsubscribe_token("lecteur@exemple.fr")

    def normal_request(self, source: str = "127.0.0.1") -> int:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport, timeout=5) as client:
            return client.get(self.base + self.page).status_code

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture
def server(tmp_path, request):
    s = Server(tmp_path, getattr(request, "param", 60.0))
    yield s
    s.stop()


def slow_connection(port: int, source: str) -> socket.socket:
    """A client that starts a request and never finishes it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: egoblog.example\r\nX-Lent: ")
    return sock


def accept_queue(port: int) -> int:
    """Connections the kernel completed for the server's listening socket and the server has not accepted
    yet (Linux: /proc/net/tcp's rx_queue of a socket in state 0A, LISTEN)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _, state, queues = line.split()[1:5]
        if state == "0A" and local.endswith(f":{port:04X}"):
            return int(queues.split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


def wait_for_accepts(port: int) -> None:
    """Wait until the server has taken all but a few of the connections queued for it. Its listen queue
    holds 16 (newsletter.guard.BACKLOG): a client opening connections faster than the server accepts them
    gets its SYN dropped and resent by the kernel a second later, and 700 connections took 25 s of such
    waits instead of 2."""
    deadline = time.monotonic() + 30
    while accept_queue(port) > 4:
        assert time.monotonic() < deadline, "the server stopped accepting connections"
        time.sleep(0.002)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    ready, _, _ = select.select([sock], [], [], within)
    if not ready:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_normal_requests_get_through_when_slow_clients_fill_the_file_limit(server):
    """700 stalled connections from 100 addresses against a 512-file process: every normal request
    is answered, the stalled connections that had waited longest were closed, and the log stays short."""
    held = []
    try:
        for n in range(700):
            if n % 8 == 0:
                wait_for_accepts(server.port)
            held.append(slow_connection(server.port, f"127.0.{1 + n % 100}.{1 + n // 100}"))
        answers = [server.normal_request() for _ in range(30)]
        assert answers == [200] * 30
        closed = [n for n, sock in enumerate(held) if closed_by_server(sock, 0.5 if n < 200 else 0)]
        assert len(closed) >= 700 - FILE_LIMIT
        assert min(closed) < 50  # the oldest go first
        assert server.normal_request() == 200
    finally:
        for sock in held:
            sock.close()
    lines = server.log.read_text().splitlines()
    assert len(lines) < 30, "\n".join(lines[-30:])
    assert not any("127.0." in line for line in lines if "Uvicorn running" not in line)  # no client named


def test_one_client_keeps_at_most_32_connections_and_can_still_be_served(server):
    held = []
    for n in range(40):
        if n % 8 == 0:
            wait_for_accepts(server.port)
        held.append(slow_connection(server.port, "127.0.0.7"))
    try:
        assert server.normal_request("127.0.0.7") == 200  # its newest connection pushes its oldest out
        closed = [n for n, sock in enumerate(held) if closed_by_server(sock, 2 if n < 9 else 0)]
        assert closed == list(range(9))
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("server", [1.0], indirect=True)
def test_a_request_that_does_not_arrive_in_time_is_dropped(server):
    sock = slow_connection(server.port, "127.0.0.9")
    started = time.monotonic()
    try:
        assert closed_by_server(sock, 10)
        assert time.monotonic() - started >= 0.9
    finally:
        sock.close()
    assert server.normal_request() == 200


def test_the_log_throttle_counts_what_it_drops():
    clock = [0.0]
    throttle = quietlog.Throttle(clock=lambda: clock[0])

    def record(msg="socket.accept() out of system resource"):
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, None, None)

    passed = [throttle.filter(record()) for _ in range(1000)]
    assert passed.count(True) == quietlog.BURST
    assert throttle.filter(record("another message"))
    clock[0] += quietlog.WINDOW
    later = record()
    assert throttle.filter(later)
    assert f"{1000 - quietlog.BURST} more like this" in later.getMessage()
