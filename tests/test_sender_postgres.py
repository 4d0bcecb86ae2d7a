"""`make send` on a PostgreSQL store: exactly once across a kill -9, one sender at a time across
processes (the session advisory lock), a real aiosmtpd server on 127.0.0.1."""
import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest

from newsletter.store import open_store
from tests.conftest import ROOT
from tests.fixtures.mail.support import Recorder, beside, build_site, environ, start_server

READERS = [f"lecteur{n:03d}@example.org" for n in range(300)]


class HoldAt(Recorder):
    """Keeps message number `at` but does not answer its DATA until released: the sender is then
    known to wait, mid-send, for the server's answer to that message."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.held, self.release = at, threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        if len(self.envelopes) == self.at:
            self.held.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return "250 Message accepted"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("sender-pg-site"))


@pytest.fixture
def folder(built, tmp_path, postgres_server):
    """The built site's settings and records, and a fresh PostgreSQL store of READERS: (folder, url)."""
    beside(built, tmp_path)
    url = postgres_server.new_database()
    with open_store(url) as store:
        store.add_many(READERS)
    return tmp_path, url


def sender(folder, url, server):
    env = {**os.environ, **environ(folder, f"smtp://127.0.0.1:{server.port}", NEWSLETTER_DB=url)}
    return subprocess.Popen([sys.executable, "-m", "newsletter.sender", "lettre-test"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_midway_then_resume_reaches_everyone_once(folder):
    path, url = folder
    handler = HoldAt(121)
    server = start_server(handler)
    try:
        first = sender(path, url, server)
        try:
            assert handler.held.wait(60), "the sender never reached message 121"
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
        finally:
            handler.release.set()
        assert len(handler.envelopes) == 121
        in_flight = handler.recipients[-1]
        out, err = sender(path, url, server).communicate(timeout=120)  # the lock went with the killed one
        assert "Resuming lettre-test after subscriber position" in out and "180 to go" in out, err
    finally:
        handler.release.set()
        server.stop()
    assert in_flight == READERS[120]
    assert Counter(handler.recipients) == Counter(READERS + [in_flight])
    with open_store(url) as store:
        assert store.is_sent("lettre-test")


def test_a_second_sender_on_another_process_sends_nothing_and_says_why(folder):
    path, url = folder
    handler, other = HoldAt(10), HoldAt(0)
    server, other_server = start_server(handler), start_server(other)
    try:
        first = sender(path, url, server)
        assert handler.held.wait(60)
        second = sender(path, url, other_server)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 4 and "another make send is running" in err, err
        assert other.envelopes == []
    finally:
        handler.release.set()
        first.communicate(timeout=120)
        server.stop()
        other_server.stop()
    assert first.returncode == 0
    assert Counter(handler.recipients) == Counter(READERS)
