"""`make send` with lists: a real build's records, a real SQLite store, a real aiosmtpd server.
A post goes to the whole blog's list and its rubrique's, each address once; a digest to the union of its
posts' rubriques and the whole blog; a send killed midway resumes and reaches every reader of its lists once."""
import io
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from newsletter.config import Config
from newsletter.sender import send
from newsletter.store import WHOLE_BLOG, open_store
from tests.conftest import ROOT
from tests.fixtures.mail.support import Recorder, beside, build_site, environ, start_server
from tests.test_sender import HoldAt

# lettre-test is in « Humeurs Marketing », autre-billet in « éthique.biz » (tests/fixtures/mail/content).
READERS = {
    "tout@exemple.fr": [WHOLE_BLOG],
    "ethique-seulement@exemple.fr": ["ethiquebiz"],
    "humeurs-seulement@exemple.fr": ["humeurs-marketing"],
    "tout-et-ethique@exemple.fr": [WHOLE_BLOG, "ethiquebiz"],
    "deux-rubriques@exemple.fr": ["ethiquebiz", "humeurs-marketing"],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("lists-site"))


@pytest.fixture
def folder(built, tmp_path):
    beside(built, tmp_path)
    with open_store(tmp_path / "subscribers.sqlite3") as store:
        for address, lists in READERS.items():
            store.add(address, lists)
    return tmp_path


@pytest.fixture
def smtp():
    server = start_server(Recorder())
    yield server
    server.stop()


def run(folder, slugs, server):
    config = Config.from_env(environ=environ(folder, f"smtp://127.0.0.1:{server.port}"))
    out, err = io.StringIO(), io.StringIO()
    return send(slugs, config, out=out, err=err), out.getvalue(), err.getvalue()


def test_the_rubriques_slugs_are_those_of_the_build(built):
    from blogcore.records import read_rubriques
    assert read_rubriques(built / "posts") == {"ethiquebiz": "éthique.biz", "humeurs-marketing": "Humeurs Marketing"}


def test_a_rubrique_post_reaches_its_list_and_the_whole_blog_each_address_once(folder, smtp):
    status, out, _ = run(folder, ["autre-billet"], smtp)
    assert status == 0 and "to 4 subscribers (lists: the whole blog, rubrique ethiquebiz)" in out
    assert Counter(smtp.handler.recipients) == Counter(["tout@exemple.fr", "ethique-seulement@exemple.fr",
                                                       "tout-et-ethique@exemple.fr", "deux-rubriques@exemple.fr"])
    status, out, _ = run(folder, ["lettre-test"], smtp)
    assert status == 0
    humeurs = smtp.handler.recipients[4:]
    assert Counter(humeurs) == Counter(["tout@exemple.fr", "humeurs-seulement@exemple.fr",
                                        "tout-et-ethique@exemple.fr", "deux-rubriques@exemple.fr"])
    assert "ethique-seulement@exemple.fr" not in humeurs  # the other rubrique's post: not for this reader


def test_a_digest_goes_to_the_union_of_its_rubriques_and_the_whole_blog_once_each(folder, smtp):
    with open_store(folder / "subscribers.sqlite3") as store:
        store.add("ailleurs@exemple.fr", ["une-autre-rubrique"])
    assert run(folder, ["lettre-test", "autre-billet"], smtp)[0] == 0
    assert Counter(smtp.handler.recipients) == Counter(list(READERS))  # each once; ailleurs@ not at all


def test_a_reader_who_leaves_the_rubrique_during_the_send_is_not_mailed(folder, smtp):
    with open_store(folder / "subscribers.sqlite3") as store:
        store.leave("ethique-seulement@exemple.fr", ["ethiquebiz"])
        store.leave("tout-et-ethique@exemple.fr", ["ethiquebiz"])  # still on the whole blog: still mailed
    assert run(folder, ["autre-billet"], smtp)[0] == 0
    assert Counter(smtp.handler.recipients) == Counter(["tout@exemple.fr", "tout-et-ethique@exemple.fr",
                                                       "deux-rubriques@exemple.fr"])


def test_killed_midway_the_send_to_a_rubrique_resumes_and_reaches_its_readers_once(folder):
    """300 more readers spread over the lists; the sender is killed while message 61 is in flight."""
    lists = [[WHOLE_BLOG], ["ethiquebiz"], ["humeurs-marketing"], [WHOLE_BLOG, "ethiquebiz"]]
    with open_store(folder / "subscribers.sqlite3") as store:
        for n in range(300):
            store.add(f"l{n:03d}@exemple.fr", lists[n % 4])
        expected = [e for _, e in store.subscribers_after(0, 1000, lists=[WHOLE_BLOG, "ethiquebiz"])]
    assert len(expected) == 4 + 225
    handler = HoldAt(61)
    server = start_server(handler)
    env = {**os.environ, **environ(folder, f"smtp://127.0.0.1:{server.port}")}
    command = [sys.executable, "-m", "newsletter.sender", "autre-billet"]
    try:
        sender = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert handler.held.wait(60), "the sender never reached message 61"
            sender.send_signal(signal.SIGKILL)
            sender.communicate(timeout=30)
        finally:
            handler.release.set()
        in_flight = handler.recipients[-1]
        again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert f"{len(expected) - 60} to go" in again.stdout
    finally:
        handler.release.set()
        server.stop()
    assert in_flight == expected[60]
    assert Counter(handler.recipients) == Counter(expected + [in_flight])
    assert not any(r.startswith("humeurs") or r in {f"l{n:03d}@exemple.fr" for n in range(2, 300, 4)}
                   for r in handler.recipients)
