"""`make send` over several SMTP connections (NEWSLETTER_SMTP_CONNECTIONS) and relays (SMTP_URL, space-separated):
real aiosmtpd relays on 127.0.0.1, a real SQLite store, the sender in-process or as `make send` does it."""
import asyncio
import io
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import Config, ConfigError
from newsletter.parallel_send import Pacer, cut
from newsletter.sender import send
from newsletter.store import open_store
from tests.conftest import ROOT
from tests.fixtures.mail.support import Recorder, beside, environ, start_server
from tests.test_sender import READERS, LosesAnswers, built, folder  # noqa: F401 - fixtures

COMMAND = [sys.executable, "-m", "newsletter.sender", "lettre-test"]


class Relay(Recorder):
    """A Recorder that also notes which connection (client port) brought each message."""

    def __init__(self, refuse=()):
        super().__init__(refuse=refuse)
        self.peers = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def relays():
    """Two relays of one pool."""
    servers = [start_server(Relay()), start_server(Relay())]
    yield servers
    for server in servers:
        server.stop()


def pool(servers) -> str:
    return " ".join(f"smtp://127.0.0.1:{server.port}" for server in servers)


def run(folder, servers, connections, rate=None):
    """The sender in-process over the pool; returns (exit status, stdout, stderr)."""
    config = Config.from_env(environ=environ(folder, pool(servers), NEWSLETTER_SMTP_CONNECTIONS=str(connections)))
    out, err = io.StringIO(), io.StringIO()
    status = send(["lettre-test"], config, out=out, err=err, rate=rate)
    return status, out.getvalue(), err.getvalue()


def received(servers) -> Counter:
    return Counter(r for server in servers for r in server.handler.recipients)


def test_four_connections_over_two_relays_mail_everyone_exactly_once(folder, relays):
    status, out, err = run(folder, relays, 4)
    assert status == 0, err
    assert received(relays) == Counter(READERS)
    # Both relays used, two connections each (round-robin).
    assert [len(set(server.handler.peers)) for server in relays] == [2, 2]
    with open_store(folder / "subscribers.sqlite3") as store:
        assert store.is_sent("lettre-test") and store.send_ranges("lettre-test") == []


def test_the_split_is_stored_all_at_once_in_ranges_of_about_equal_count(folder, relays):
    with open_store(folder / "subscribers.sqlite3") as store:
        bounds = cut(store, 0, 4)
        assert bounds == [(0, 75), (75, 150), (150, 225), (225, None)]  # ids 1..300; the last is open-ended
        assert store.start_ranges("lettre-test", bounds) == [(lo, hi, lo) for lo, hi in bounds]
        # A second start (a resumed send) keeps the stored ranges, whatever it would cut now.
        assert store.start_ranges("lettre-test", [(0, None)]) == [(lo, hi, lo) for lo, hi in bounds]
        assert store.send_position("lettre-test") == 0


class HoldFrom(Relay):
    """Keeps every message after the first `after` of the whole pool (`gate` is shared between the relays),
    but answers none of them until released: each connection is then stuck with one message in flight."""

    def __init__(self, gate):
        super().__init__()
        self.gate = gate

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        if self.gate.arrived():
            await asyncio.get_running_loop().run_in_executor(None, self.gate.release.wait, 60)
        return "250 Message accepted"


class Gate:
    def __init__(self, after: int, connections: int):
        self.after, self.connections, self.count, self.held = after, connections, 0, []
        self.lock, self.all_held, self.release = threading.Lock(), threading.Event(), threading.Event()

    def arrived(self) -> bool:
        """Count a message; True if it is to be held (and the event set once every connection is held)."""
        with self.lock:
            self.count += 1
            if self.count <= self.after:
                return False
            self.held.append(self.count)
            if len(self.held) == self.connections:
                self.all_held.set()
            return True


def test_kill_9_during_a_four_connection_send_then_resume_costs_at_most_one_copy_per_connection(folder):
    gate = Gate(after=20, connections=4)  # 20 messages in, each connection's next one stays unanswered
    servers = [start_server(HoldFrom(gate)), start_server(HoldFrom(gate))]
    env = {**os.environ, **environ(folder, pool(servers), NEWSLETTER_SMTP_CONNECTIONS="4")}
    try:
        sender = subprocess.Popen(COMMAND, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert gate.all_held.wait(60), f"only {len(gate.held)} connections reached the hold"
            sender.send_signal(signal.SIGKILL)
            sender.communicate(timeout=30)
        finally:
            gate.release.set()
        assert sender.returncode == -signal.SIGKILL
        assert sum(received(servers).values()) == 24  # 20 answered, 4 in flight (kept by the relays)

        # Resumed with 2 connections: the four stored ranges are walked, each from its own checkpoint.
        again = subprocess.run(COMMAND, cwd=ROOT, env={**env, "NEWSLETTER_SMTP_CONNECTIONS": "2"},
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        resumed = again.stdout.split("Resuming lettre-test after subscriber positions ")[1].split(":")[0]
        assert len(resumed.split(", ")) == 4, again.stdout
    finally:
        gate.release.set()
        for server in servers:
            server.stop()
    copies = received(servers)
    assert set(copies) == set(READERS)  # nobody missed
    twice = [reader for reader, n in copies.items() if n > 1]
    assert len(twice) <= 4 and all(copies[reader] == 2 for reader in twice)  # one in flight per connection, at most
    assert len(twice) == 4  # here exactly: all four were held unanswered at the kill
    with open_store(folder / "subscribers.sqlite3") as store:
        assert store.is_sent("lettre-test")


def test_a_reader_who_confirms_during_the_send_gets_the_post(folder):
    gate = Gate(after=10, connections=4)
    servers = [start_server(HoldFrom(gate)), start_server(HoldFrom(gate))]
    env = {**os.environ, **environ(folder, pool(servers), NEWSLETTER_SMTP_CONNECTIONS="4")}
    newcomer = "nouvelle.lectrice@example.org"
    try:
        sender = subprocess.Popen(COMMAND, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            assert gate.all_held.wait(60)
            with open_store(folder / "subscribers.sqlite3") as store:
                assert store.add(newcomer)  # confirmed while every connection waits on the relay
        finally:
            gate.release.set()
        _, err = sender.communicate(timeout=120)
    finally:
        gate.release.set()
        for server in servers:
            server.stop()
    assert sender.returncode == 0, err
    assert received(servers) == Counter(READERS + [newcomer])


def test_a_send_stopped_before_ranges_existed_resumes_from_its_position(folder, relays):
    with open_store(folder / "subscribers.sqlite3") as store:
        store.save_send_position("lettre-test", 120)  # a single-connection send, killed after reader 120
    status, out, err = run(folder, relays, 4)
    assert status == 0, err
    assert "Resuming lettre-test after subscriber positions 120, 165, 210, 255: 180 to go" in out
    assert received(relays) == Counter(READERS[120:])


def test_a_recipient_refused_for_good_does_not_stop_its_range(folder):
    refused = {READERS[10], READERS[100], READERS[299]}  # in the first, second and last ranges
    servers = [start_server(Relay(refuse=refused)), start_server(Relay(refuse=refused))]
    try:
        status, _, err = run(folder, servers, 4)
    finally:
        for server in servers:
            server.stop()
    assert status == 1
    assert received(servers) == Counter(r for r in READERS if r not in refused)
    assert "3 address(es) refused" in err and all(address in err for address in refused)
    listed = [line.split()[1].rstrip(":") for line in err.splitlines() if line.startswith("  #")]
    assert listed == sorted(refused)  # in subscriber order, whichever connection met them first
    with open_store(folder / "subscribers.sqlite3") as store:
        assert store.is_sent("lettre-test")


def test_lost_answers_are_reported_per_message_and_not_resent(folder):
    lost = {READERS[3], READERS[120], READERS[260]}
    servers = [start_server(LosesAnswers(lost)), start_server(LosesAnswers(lost))]
    try:
        status, _, err = run(folder, servers, 4)
    finally:
        for server in servers:
            server.stop()
    assert status == 0, err
    assert received(servers) == Counter(READERS)  # one copy each, the three included
    assert "3 message(s) went out whole" in err and all(address in err for address in lost)


def test_a_dead_relay_in_the_pool_stops_every_connection_and_the_send_resumes_without_a_copy_too_many(folder):
    good = start_server(Relay())
    try:
        config = Config.from_env(environ=environ(folder, f"smtp://127.0.0.1:{good.port} smtp://127.0.0.1:9",
                                                 NEWSLETTER_SMTP_CONNECTIONS="4"))
        err = io.StringIO()
        assert send(["lettre-test"], config, out=io.StringIO(), err=err) == 3
        assert "injoignable" in err.getvalue() and "127.0.0.1:9" in err.getvalue()
        assert "run the same command again" in err.getvalue()
        status, out, err = run(folder, [good], 4)  # the relay pool fixed
    finally:
        good.stop()
    assert status == 0, err
    assert "Resuming lettre-test after subscriber position" in out
    # The connections to the good relay stopped after their message's answer: nothing was in flight.
    assert received([good]) == Counter(READERS)


def test_the_rate_limit_holds_for_the_whole_send_not_per_connection(tmp_path, built, relays):  # noqa: F811
    beside(built, tmp_path)
    readers = READERS[:21]
    with open_store(tmp_path / "subscribers.sqlite3") as store:
        store.add_many(readers)
    started = time.monotonic()
    status, _, err = run(tmp_path, relays, 4, rate=5.0)
    elapsed = time.monotonic() - started
    assert status == 0, err
    assert received(relays) == Counter(readers)
    # 21 messages at 5 per second: 4 s at least from the first to the last. Four buckets of 5/s (one per
    # connection) take about 1 s, plus the start (settings, rendering): well under 4 s.
    assert elapsed >= 20 / 5


def test_the_pacer_spaces_every_message_of_every_thread_by_the_interval():
    clock = FakeClock()
    pacer = Pacer(100.0, clock=clock.now, sleep=clock.sleep)
    sent = []
    lock = threading.Lock()

    def worker():
        for _ in range(25):
            pacer.wait()
            with lock:
                sent.append(clock.mine())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = sorted(sent)
    assert len(slots) == 100
    assert all(later - earlier >= 0.01 - 1e-9 for earlier, later in zip(slots, slots[1:]))
    assert slots[-1] == pytest.approx(0.99)  # 100 messages at 100/s: 0.99 s from the first to the last


class FakeClock:
    """A clock each thread sees on its own: sleep moves the calling thread's time forward, as a real sleep would."""

    def __init__(self):
        self.local = threading.local()

    def now(self) -> float:
        return getattr(self.local, "t", 0.0)

    def sleep(self, seconds: float) -> None:
        self.local.t = self.now() + seconds

    def mine(self) -> float:
        return self.now()


@pytest.mark.parametrize("value", ["0", "-3", "quatre", "2.5", "65"])
def test_a_bad_number_of_connections_is_a_clear_error(tmp_path, value):
    with pytest.raises(ConfigError, match=r"NEWSLETTER_SMTP_CONNECTIONS.*de 1 à 64"):
        Config.from_env(environ=environ(tmp_path, NEWSLETTER_SMTP_CONNECTIONS=value,
                                        NEWSLETTER_SETTINGS=str(ROOT / "pelicanconf.py")))


def test_make_send_names_the_bad_variable_and_sends_nothing(folder, relays):
    env = {**os.environ, **environ(folder, pool(relays), NEWSLETTER_SMTP_CONNECTIONS="zéro")}
    result = subprocess.run(COMMAND, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "NEWSLETTER_SMTP_CONNECTIONS" in result.stderr and "'zéro'" in result.stderr
    assert "Traceback" not in result.stderr and received(relays) == Counter()


def test_each_relay_of_the_pool_is_checked_and_named_without_its_password(tmp_path):
    env = environ(tmp_path, "smtp://u:s3cret@relais-a.exemple.fr:25 smtp://u:s3cret@relais-b.exemple.fr:99999",
                  NEWSLETTER_SETTINGS=str(ROOT / "pelicanconf.py"))
    with pytest.raises(ConfigError) as error:
        Config.from_env(environ=env)
    assert "relais n° 2" in str(error.value) and "relais-b.exemple.fr" in str(error.value)
    assert "s3cret" not in str(error.value)
    config = Config.from_env(environ={**env, "SMTP_URL": "smtp://relais-a.exemple.fr  smtps://relais-b.exemple.fr"})
    assert config.smtp_urls == ("smtp://relais-a.exemple.fr", "smtps://relais-b.exemple.fr")
    assert config.smtp_url == "smtp://relais-a.exemple.fr" and config.smtp_connections == 1


@settings(max_examples=40, deadline=None)
@given(ids=st.sets(st.integers(1, 400), max_size=120), start=st.integers(0, 400), n=st.integers(1, 9))
def test_the_ranges_cover_every_id_after_the_start_once_in_near_equal_shares(ids, start, n):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.sqlite3"
        with open_store(path) as store:
            store.add_many(f"l{i}@example.org" for i in range(1, 401))
        with sqlite3.connect(path) as db:  # the readers who left, in one go (remove() would VACUUM each time)
            db.executemany("DELETE FROM subscribers WHERE id = ?", [(i,) for i in set(range(1, 401)) - ids])
        db.close()
        with open_store(path) as store:
            bounds = cut(store, start, n)
    wanted = sorted(i for i in ids if i > start)
    assert bounds[0][0] == start and bounds[-1][1] is None
    assert all(hi == next_lo for (_, hi), (next_lo, _) in zip(bounds, bounds[1:]))  # contiguous
    shares = [[i for i in wanted if lo < i and (hi is None or i <= hi)] for lo, hi in bounds]
    assert sorted(i for share in shares for i in share) == wanted  # each id in exactly one range
    assert len(bounds) == max(1, min(n, len(wanted)))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
