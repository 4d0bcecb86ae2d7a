"""The service's mails in a child process (newsletter/mailproc.py), as `python -m newsletter.server` runs
them: mails leave from the child, a killed child costs only the mails it held (their readers are told
to retry) and is replaced, and the child does not outlive the service. Real uvicorn, aiosmtpd, processes."""
import asyncio
import concurrent.futures
import dataclasses
import email
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest

from newsletter.app import create_app
from newsletter.links import confirm_url
from newsletter.mailproc import MailProcess
from newsletter.ratelimit import NO_LIMITS
from newsletter.serving import serve_in_thread
from newsletter.signing import Signer
from tests.fixtures.loops import run_async
from tests.fixtures.instances import mail_children
from tests.fixtures.mail.support import Controller, Sink, environ, free_port, start_server, write_settings
from tests.test_newsletter_app import SECRET, make_config

ROOT = Path(__file__).resolve().parent.parent


def pid_of(envelope) -> int:
    """The pid that email.utils.make_msgid put in the Message-ID: the process that built the mail."""
    message_id = email.message_from_bytes(envelope.content, policy=default_policy)["Message-ID"]
    return int(re.match(r"<\d+\.(\d+)\.", message_id).group(1))


def until(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, "not before the deadline"
        time.sleep(0.02)
    return value


class Holding(Sink):
    """Takes every mail, holding those for `only` (all, if None) until `release` is set."""

    def __init__(self, release: threading.Event, only: str | None = None):
        super().__init__()
        self.release, self.only, self.held = release, only, False

    async def handle_DATA(self, server, session, envelope):
        if self.only is None or envelope.rcpt_tos == [self.only]:
            self.held = True
            while not self.release.is_set():
                await server.loop.run_in_executor(None, self.release.wait, 0.05)
        return await super().handle_DATA(server, session, envelope)


def answers(url: str) -> bool:
    try:
        httpx.get(url)
        return True
    except httpx.TransportError:
        return False


def test_signup_and_welcome_mails_leave_from_the_child(tmp_path):
    sink = Sink()
    relay = start_server(sink)
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{relay.port}")
    try:
        with serve_in_thread(create_app(config, limits=NO_LIMITS, mail_process=True)) as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            (child,) = mail_children(os.getpid())
            assert http.post("/newsletter/inscription", data={"email": "lecteur@exemple.fr"}).status_code == 303
            (confirmation,) = sink.wait_for(1)
            link = re.search(rb"/newsletter/confirmer/[\w.-]+", confirmation.content.replace(b"=\r\n", b"")).group(0)
            assert http.post(link.decode()).status_code == 303
            welcome = sink.wait_for(2)[1]
    finally:
        relay.stop()
    assert pid_of(confirmation) == pid_of(welcome) == child != os.getpid()
    assert "Bienvenue" in email.message_from_bytes(welcome.content, policy=default_policy)["Subject"]
    until(lambda: not mail_children(os.getpid()))  # the service stopped: so did its child


def test_a_killed_child_fails_only_the_mails_it_held_and_is_replaced(tmp_path):
    release = threading.Event()
    sink = Holding(release, only="attente@exemple.fr")
    relay = start_server(sink)
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{relay.port}")
    try:
        with serve_in_thread(create_app(config, limits=NO_LIMITS, mail_process=True, mail_deadline=60)) as url, \
                httpx.Client(base_url=url, timeout=60) as http, concurrent.futures.ThreadPoolExecutor(1) as pool:
            (child,) = mail_children(os.getpid())
            waiting = pool.submit(http.post, "/newsletter/inscription", json={"email": "attente@exemple.fr"},
                                  headers={"Accept": "application/json"})
            until(lambda: sink.held)
            os.kill(child, signal.SIGKILL)
            answer = waiting.result(30)
            assert answer.status_code == 503 and "n’a pas pu partir" in answer.json()["erreur"]
            assert answer.headers["retry-after"] == "300"
            # A new child is started at once; until it is ready, signups are told to retry, none is lost.
            until(lambda: http.post("/newsletter/inscription", data={"email": "apres@exemple.fr"}).status_code == 303)
            (new,) = mail_children(os.getpid())
            after = until(lambda: [e for e in sink.envelopes if e.rcpt_tos == ["apres@exemple.fr"]])
            assert new != child and [pid_of(e) for e in after] == [new]
    finally:
        release.set()
        relay.stop()


def subscribers(db: str) -> list[str]:
    with sqlite3.connect(db) as reader:
        return [email for (email,) in reader.execute("SELECT email FROM subscribers")]


def welcomes(envelopes: list) -> list:
    return [e for e in envelopes
            if email.message_from_bytes(e.content, policy=default_policy)["Subject"].startswith("Bienvenue")]


def reader_confirming(tmp_path):
    """A relay and its sink, the service's configuration, and the path of lecteur@exemple.fr's link."""
    sink = Sink()
    relay = start_server(sink)
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{relay.port}")
    path = confirm_url(config, Signer(config.secrets), "lecteur@exemple.fr").removeprefix("http://127.0.0.1:8000")
    return sink, relay, config, path


def test_a_killed_child_fails_the_confirmations_it_held_and_confirming_again_stores_once(tmp_path):
    """The child stores confirmations: killed with one in its commit, the reader is told to retry, nothing
    is half stored, and the same link then confirms through the new child, with one welcome mail."""
    sink, relay, config, path = reader_confirming(tmp_path)
    try:
        with serve_in_thread(create_app(config, limits=NO_LIMITS, mail_process=True)) as url, \
                httpx.Client(base_url=url, timeout=30, headers={"Accept": "application/json"}) as http, \
                concurrent.futures.ThreadPoolExecutor(1) as pool:
            (child,) = mail_children(os.getpid())
            writer = sqlite3.connect(config.db, isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")  # the store's write lock, held: the child's commit waits for it
            waiting = pool.submit(http.post, path)
            until(lambda: "nanosleep" in Path(f"/proc/{child}/wchan").read_text())  # SQLite's busy wait
            os.kill(child, signal.SIGKILL)
            answer = waiting.result(30)
            writer.rollback()
            writer.close()
            assert answer.status_code == 503 and answer.headers["retry-after"] == "60"
            assert "n’a pas pu être enregistrée" in answer.json()["erreur"]
            assert subscribers(config.db) == []
            until(lambda: http.post(path).status_code == 200)  # once the new child is ready
            (new,) = mail_children(os.getpid())
            assert new != child and subscribers(config.db) == ["lecteur@exemple.fr"]
            (welcome,) = sink.wait_until(welcomes)
            assert welcome.rcpt_tos == ["lecteur@exemple.fr"] and pid_of(welcome) == new
    finally:
        relay.stop()


@pytest.mark.parametrize("mail_process", [True, False], ids=["child", "service"])
def test_a_confirmation_the_store_cannot_take_is_refused_with_a_retry_and_no_welcome(tmp_path, mail_process, caplog):
    """Whichever process commits: a failed commit answers 503 « réessayez », and no mail is sent."""
    sink, relay, config, path = reader_confirming(tmp_path)
    try:
        with serve_in_thread(create_app(config, limits=NO_LIMITS, mail_process=mail_process)) as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            with sqlite3.connect(config.db) as breaker:  # every confirmation's transaction fails now
                breaker.execute("CREATE TRIGGER refuse AFTER INSERT ON memberships "
                                "BEGIN SELECT RAISE(ABORT, 'refusé'); END")
            answer = http.post(path)
            assert answer.status_code == 503 and "n’a pas pu être enregistrée" in answer.text
            assert subscribers(config.db) == []  # all or nothing: not the address without its list
            assert http.post("/newsletter/inscription", data={"email": "autre@exemple.fr"}).status_code == 303
            assert [e.rcpt_tos for e in sink.wait_for(1)] == [["autre@exemple.fr"]]  # and no welcome before it
    finally:
        relay.stop()
    if not mail_process:
        assert "confirmation not stored: ConstraintError" in caplog.text


def test_a_store_the_child_cannot_open_fails_confirmations_not_signups(tmp_path):
    """The child opens the store at its first confirmation: a new child that cannot reach it still sends
    confirmation mails (signups store nothing), answers confirmations « réessayez », and stores them once
    the store is back."""
    sink, relay, config, path = reader_confirming(tmp_path)
    folder = tmp_path / "base"
    config = dataclasses.replace(config, db=str(folder / "abonnes.sqlite3"))
    try:
        with serve_in_thread(create_app(config, limits=NO_LIMITS, mail_process=True)) as url, \
                httpx.Client(base_url=url, timeout=30, headers={"Accept": "application/json"}) as http:
            (child,) = mail_children(os.getpid())
            folder.rename(tmp_path / "ailleurs")  # the service keeps its open file; a new opener fails
            folder.write_text("pas un dossier")
            os.kill(child, signal.SIGKILL)
            until(lambda: http.post("/newsletter/inscription", data={"email": "autre@exemple.fr"}).status_code == 202)
            assert [e.rcpt_tos for e in sink.wait_for(1)] == [["autre@exemple.fr"]]
            answer = http.post(path)
            assert answer.status_code == 503 and "n’a pas pu être enregistrée" in answer.json()["erreur"]
            folder.unlink()
            (tmp_path / "ailleurs").rename(folder)
            assert http.post(path).status_code == 200
            assert subscribers(config.db) == ["lecteur@exemple.fr"]
    finally:
        relay.stop()


def test_the_child_does_not_outlive_a_killed_service(tmp_path):
    sink = Sink()
    relay = start_server(sink)
    write_settings(tmp_path)
    port = free_port()
    env = {**os.environ, **environ(tmp_path, f"smtp://127.0.0.1:{relay.port}")}
    server = subprocess.Popen([sys.executable, "-m", "newsletter.server", "--port", str(port), "--mail-process", "yes"],
                              cwd=ROOT, env=env)
    try:
        (child,) = until(lambda: mail_children(server.pid))
        until(lambda: answers(f"http://127.0.0.1:{port}/"))
        answer = httpx.post(f"http://127.0.0.1:{port}/newsletter/inscription", data={"email": "lecteur@exemple.fr"})
        assert answer.status_code == 303 and "server" not in answer.headers  # no software named to clients
        assert pid_of(sink.wait_for(1)[0]) == child
        server.kill()  # kill -9: nothing of the service runs any more
        server.wait(10)
        until(lambda: not Path(f"/proc/{child}").exists() or b"newsletter.mailproc" not in
              Path(f"/proc/{child}/cmdline").read_bytes())
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        relay.stop()


def test_a_full_queue_refuses_at_once_and_stopping_hands_off_what_the_child_holds(tmp_path):
    """Past `maxsize` mails waiting, a signup is refused at once (the service answers 503); stopping the
    service lets the child hand off the mails it holds before it exits."""
    release = threading.Event()
    sink = Holding(release)
    relay = start_server(sink)
    config = make_config(tmp_path, smtp_url=f"smtp://127.0.0.1:{relay.port}")

    async def scenario():
        mails = MailProcess(config, maxsize=2, deadline=30)
        await mails.start()
        held = [mails.submit("un@exemple.fr"), mails.submit("deux@exemple.fr")]
        refused = mails.submit("trois@exemple.fr")
        asyncio.get_running_loop().call_later(0.2, release.set)  # the relay wakes up while the service stops
        await mails.stop()
        return [future.result() for future in held], refused

    try:
        outcomes, refused = run_async(scenario())
    finally:
        release.set()
        relay.stop()
    assert refused is None and outcomes == [True, True]
    assert sorted(e.rcpt_tos[0] for e in sink.envelopes) == ["deux@exemple.fr", "un@exemple.fr"]


def test_stopped_as_systemd_stops_it_the_service_still_hands_off_the_mail_of_a_signup_it_finishes(tmp_path):
    """systemd's stop signals every process of the unit: the child must not die before the service."""
    release = threading.Event()
    sink = Holding(release)
    relay = start_server(sink)
    write_settings(tmp_path)
    port = free_port()
    env = {**os.environ, **environ(tmp_path, f"smtp://127.0.0.1:{relay.port}")}
    server = subprocess.Popen([sys.executable, "-m", "newsletter.server", "--port", str(port), "--mail-process", "yes"],
                              cwd=ROOT, env=env, start_new_session=True)  # a group of its own, as a unit's cgroup
    try:
        (child,) = until(lambda: mail_children(server.pid))
        until(lambda: answers(f"http://127.0.0.1:{port}/"))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(httpx.post, f"http://127.0.0.1:{port}/newsletter/inscription",
                                  data={"email": "lecteur@exemple.fr"}, timeout=30)
            until(lambda: sink.held)
            os.killpg(server.pid, signal.SIGTERM)  # both processes at once
            assert server.poll() is None and Path(f"/proc/{child}").exists()
            release.set()
            assert waiting.result(30).status_code == 303
        assert [e.rcpt_tos for e in sink.envelopes] == [["lecteur@exemple.fr"]]
        assert server.wait(30) in (0, -signal.SIGTERM)  # uvicorn ends by the signal it caught
        until(lambda: not Path(f"/proc/{child}").exists() or b"newsletter.mailproc" not in
              Path(f"/proc/{child}/cmdline").read_bytes())
    finally:
        release.set()
        if server.poll() is None:
            server.kill()
            server.wait()
        relay.stop()


@pytest.mark.parametrize("how", ["--mail-process no", "auto, on one CPU"])
def test_without_a_second_cpu_or_when_told_so_the_service_mails_itself(tmp_path, how):
    sink = Sink()
    relay = start_server(sink)
    write_settings(tmp_path)
    port = free_port()
    env = {**os.environ, **environ(tmp_path, f"smtp://127.0.0.1:{relay.port}")}
    command = [sys.executable, "-m", "newsletter.server", "--port", str(port)]
    one_cpu = None
    if how.startswith("--"):
        command += how.split()
    else:
        cpu = min(os.sched_getaffinity(0))
        one_cpu = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731
    server = subprocess.Popen(command, cwd=ROOT, env=env, preexec_fn=one_cpu)
    try:
        until(lambda: answers(f"http://127.0.0.1:{port}/"))
        assert mail_children(server.pid) == []
        assert httpx.post(f"http://127.0.0.1:{port}/newsletter/inscription",
                          data={"email": "lecteur@exemple.fr"}).status_code == 303
        assert pid_of(sink.wait_for(1)[0]) == server.pid
    finally:
        server.kill()
        server.wait()
        relay.stop()
