"""`make send`: a real aiosmtpd server on 127.0.0.1, a real SQLite store of a few hundred readers."""
import asyncio
import email
import email.policy
import io
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest

from newsletter.config import Config
from newsletter.sender import Progress, send
from newsletter.store import Erasure, open_store
from tests.conftest import ROOT
from tests.fixtures.mail.support import Recorder, beside, build_site, environ, refuse_everyone, start_server

READERS = [f"lecteur{n:03d}@example.org" for n in range(300)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("sender-site"))


@pytest.fixture
def folder(built, tmp_path):
    """A fresh store of READERS next to the built site's records."""
    beside(built, tmp_path)
    with open_store(tmp_path / "subscribers.sqlite3") as store:
        for address in READERS:
            store.add(address)
    return tmp_path


def run(folder, slugs, server=None, **env):
    """The sender in-process; returns (exit status, stdout, stderr)."""
    url = f"smtp://127.0.0.1:{server.port}" if server else None
    config = Config.from_env(environ=environ(folder, url, **env))
    out, err = io.StringIO(), io.StringIO()
    status = send(slugs, config, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def smtp():
    handler = Recorder()
    server = start_server(handler)
    yield server
    server.stop()


def test_each_reader_gets_exactly_one_well_formed_message(folder, smtp):
    status, out, _ = run(folder, ["lettre-test"], smtp)
    assert status == 0, out
    handler = smtp.handler
    assert Counter(handler.recipients) == Counter(READERS)
    for mail_from, rcpts, raw in handler.envelopes[:5] + handler.envelopes[-5:]:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        # The envelope sender is the reader's signed return path (VERP, see test_bounces.py).
        assert re.fullmatch(r"lettre\+[a-z0-9-]+@egoblog\.example", mail_from) and msg["To"] == rcpts[0]
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert "😉" in msg.get_body(("plain",)).get_content()
        assert "List-Unsubscribe=One-Click" == msg["List-Unsubscribe-Post"]
        assert msg["Message-ID"] and msg["Date"] and msg["List-Id"] and msg["Reply-To"]
    assert len({email.message_from_bytes(raw)["Message-ID"] for _, _, raw in handler.envelopes}) == len(READERS)


def test_a_post_already_sent_is_not_sent_again(folder, smtp):
    assert run(folder, ["lettre-test"], smtp)[0] == 0
    before = len(smtp.handler.envelopes)
    status, out, _ = run(folder, ["lettre-test"], smtp)
    assert status == 0 and "already sent; nothing to do" in out
    assert len(smtp.handler.envelopes) == before
    with open_store(folder / "subscribers.sqlite3") as store:
        assert store.is_sent("lettre-test")


def test_an_unsubscribed_reader_gets_nothing(folder, smtp):
    with open_store(folder / "subscribers.sqlite3") as store:
        store.remove(READERS[7])
    assert run(folder, ["lettre-test"], smtp)[0] == 0
    assert READERS[7] not in smtp.handler.recipients
    assert len(smtp.handler.recipients) == len(READERS) - 1


def test_a_refused_recipient_is_reported_and_the_others_delivered(folder):
    handler = Recorder(refuse={READERS[10]})
    server = start_server(handler)
    try:
        status, out, err = run(folder, ["lettre-test"], server)
    finally:
        server.stop()
    assert status == 1
    assert Counter(handler.recipients) == Counter(r for r in READERS if r != READERS[10])
    assert "1 address(es) refused" in err and READERS[10] in err and "550" in err
    with open_store(folder / "subscribers.sqlite3") as store:
        assert store.is_sent("lettre-test")  # a permanent refusal won't change by sending again


def test_a_temporary_failure_is_retried(folder):
    handler = Recorder(defer_once={READERS[3]})
    server = start_server(handler)
    try:
        status, _, _ = run(folder, ["lettre-test"], server)
    finally:
        server.stop()
    assert status == 0
    assert handler.deferred == [READERS[3]]
    assert Counter(handler.recipients) == Counter(READERS)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_login_stops_at_once(folder):
    handler = Recorder()
    server = start_server(handler, authenticator=refuse_everyone, auth_required=True, auth_require_tls=False)
    try:
        config = Config.from_env(environ=environ(folder, f"smtp://auteur:mauvais@127.0.0.1:{server.port}"))
        err = io.StringIO()
        status = send(["lettre-test"], config, out=io.StringIO(), err=err)
    finally:
        server.stop()
    assert status == 3
    assert "identifiants refusés" in err.getvalue() and "mauvais" not in err.getvalue()
    assert handler.envelopes == []
    with open_store(folder / "subscribers.sqlite3") as store:
        assert not store.is_sent("lettre-test")


def test_an_unreachable_server_stops_with_a_clear_message(folder):
    config = Config.from_env(environ=environ(folder, "smtp://127.0.0.1:9"))
    err = io.StringIO()
    assert send(["lettre-test"], config, out=io.StringIO(), err=err) == 3
    assert "injoignable" in err.getvalue() and "run the same command again" in err.getvalue()


def test_dry_run_sends_and_records_nothing(folder, smtp):
    env = {**os.environ, **environ(folder, f"smtp://127.0.0.1:{smtp.port}"), "DRY_RUN": "1"}
    result = subprocess.run([sys.executable, "-m", "newsletter.sender", "lettre-test"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Subject: La lettre" in result.stdout and "Recipients: 300" in result.stdout
    assert "Chers lecteurs" in result.stdout
    assert smtp.handler.envelopes == []
    with open_store(folder / "subscribers.sqlite3") as store:
        assert store.send_position("lettre-test") is None and not store.is_sent("lettre-test")


def test_unknown_slug_is_a_clear_error(folder):
    env = {**os.environ, **environ(folder)}
    result = subprocess.run([sys.executable, "-m", "newsletter.sender", "lettre-tset"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "No post with slug 'lettre-tset'" in result.stderr and "lettre-test" in result.stderr
    assert "Traceback" not in result.stderr


def test_digest_sends_one_mail_and_records_each_post(folder, smtp):
    assert run(folder, ["lettre-test", "autre-billet"], smtp)[0] == 0
    assert Counter(smtp.handler.recipients) == Counter(READERS)
    status, out, _ = run(folder, ["autre-billet"], smtp)
    assert status == 0 and "already sent" in out
    assert len(smtp.handler.envelopes) == len(READERS)


class HoldAt(Recorder):
    """Keeps message number `at` (counted from 1) but does not answer its DATA until released:
    the sender is then known to wait, mid-send, for the server's answer to that message."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.held, self.release = at, threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        if len(self.envelopes) == self.at:
            self.held.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return "250 Message accepted"


def test_kill_9_midway_then_resume_reaches_everyone_once(folder):
    # Killed while message 121 is in flight: the server has it, the sender never got the answer.
    handler = HoldAt(121)
    server = start_server(handler)
    env = {**os.environ, **environ(folder, f"smtp://127.0.0.1:{server.port}")}
    command = [sys.executable, "-m", "newsletter.sender", "lettre-test"]
    try:
        sender = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert handler.held.wait(60), "the sender never reached message 121"
            sender.send_signal(signal.SIGKILL)
            sender.communicate(timeout=30)
        finally:
            handler.release.set()
        assert sender.returncode == -signal.SIGKILL
        assert len(handler.envelopes) == 121
        in_flight = handler.recipients[-1]

        again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "Resuming lettre-test after subscriber position" in again.stdout and "180 to go" in again.stdout
    finally:
        handler.release.set()
        server.stop()
    # Everyone once, except the one message in flight at the kill, which the resumed run sent again.
    assert in_flight == READERS[120]
    assert Counter(handler.recipients) == Counter(READERS + [in_flight])


def sender_held_at(folder, at: int):
    """`make send` in its own process, waiting for the server's answer to message `at`: (process, handler, server)."""
    handler = HoldAt(at)
    server = start_server(handler)
    env = {**os.environ, **environ(folder, f"smtp://127.0.0.1:{server.port}")}
    sender = subprocess.Popen([sys.executable, "-m", "newsletter.sender", "lettre-test"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not handler.held.wait(60):
        sender.kill()
        server.stop()
        raise AssertionError(f"the sender never reached message {at}: {sender.communicate()}")
    return sender, handler, server


def test_a_second_send_while_one_runs_sends_nothing_and_says_why(folder, smtp):
    sender, handler, server = sender_held_at(folder, 10)
    try:
        status, out, err = run(folder, ["lettre-test"], smtp)  # the same post, to another server
        assert status == 4 and "another make send is running" in err and "Nothing was sent" in err, err
        assert smtp.handler.envelopes == []
        status, _, err = run(folder, ["autre-billet"], smtp)  # any other post: one send at a time
        assert status == 4 and smtp.handler.envelopes == []
    finally:
        handler.release.set()
        out, err = sender.communicate(timeout=120)
        server.stop()
    assert sender.returncode == 0, err
    assert Counter(handler.recipients) == Counter(READERS)
    status, out, _ = run(folder, ["lettre-test"], smtp)  # the lock went with the first sender
    assert status == 0 and "already sent" in out


def test_a_reader_who_unsubscribes_during_the_send_gets_nothing_after(folder):
    sender, handler, server = sender_held_at(folder, 50)
    leaving = READERS[200]
    try:
        with open_store(folder / "subscribers.sqlite3") as store:
            assert store.remove(leaving) is Erasure.ERASED  # acknowledged while the sender waits on message 50
    finally:
        handler.release.set()
        _, err = sender.communicate(timeout=120)
        server.stop()
    assert sender.returncode == 0, err
    assert leaving not in handler.recipients
    assert Counter(handler.recipients) == Counter(r for r in READERS if r != leaving)


def test_progress_never_passes_100_percent_when_readers_join_during_the_send():
    stream = io.StringIO()
    progress = Progress(10, stream)
    for _ in range(13):  # three readers confirmed while the send ran
        progress.advance()
    lines = stream.getvalue().splitlines()
    assert all("%" in line and int(line.split("%")[0].split()[-1]) <= 100 for line in lines), lines
    assert lines[-1].split("]")[1].split()[0] == "13/13"


class LosesAnswers(Recorder):
    """A relay that takes the message for some readers, then drops the connection instead of answering 250,
    every time: the message is delivered, the sender never hears so."""

    def __init__(self, lose):
        super().__init__()
        self.lose = set(lose)

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        if envelope.rcpt_tos[0] in self.lose:
            server.transport.close()
        return "250 Message accepted"


def test_a_relay_that_keeps_losing_its_answer_gets_each_message_once(folder):
    lost = {READERS[3], READERS[4], READERS[200]}
    handler = LosesAnswers(lost)
    server = start_server(handler)
    try:
        status, out, err = run(folder, ["lettre-test"], server)
    finally:
        server.stop()
    assert status == 0
    assert Counter(handler.recipients) == Counter(READERS)  # one copy each, the three included
    assert "3 message(s) went out whole" in err and READERS[200] in err
    with open_store(folder / "subscribers.sqlite3") as store:
        assert store.is_sent("lettre-test")
