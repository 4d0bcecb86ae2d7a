"""The mails score clean with Debian's SpamAssassin, run offline (-L: no network test) with Bayes off and a
throw-away home: a newsletter built from the fixture posts, a confirmation mail and a welcome mail, each
DKIM-signed and flattened exactly as the mailer sends them. The rules hit are printed (pytest -s, or -rA)
and recorded.
"""
import dataclasses
import os
import re
import subprocess

import pytest

from newsletter.config import Config
from newsletter.confirmation import ConfirmationMail
from newsletter.links import unsubscribe_mailto, unsubscribe_url
from newsletter.mail_message import build_mail, load_posts
from newsletter.mailer import wire_bytes
from newsletter.pages import mail_environment
from newsletter.signing import Signer
from newsletter.welcome import WelcomeMail
from tests.conftest import build, require_command
from tests.fixtures.mail.support import CONTENT, environ, write_settings

READER = "lectrice@exemple.fr"
MAX_SCORE = 1.0
RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.M)


@pytest.fixture(scope="module")
def mails(tmp_path_factory, dkim_keys):
    """kind → the signed bytes the relay would get."""
    folder = tmp_path_factory.mktemp("spamassassin")
    settings = write_settings(folder)
    settings.write_text(settings.read_text() + "NEWSLETTER_FROM = 'égoBlog <lettre@blog.exemple.fr>'\n")
    build(CONTENT, folder / "output", settings=str(settings))
    config = dataclasses.replace(Config.from_env(environ=environ(folder)), dkim=dkim_keys[0])
    signer = Signer(config.secrets)
    newsletter = build_mail(config, load_posts(config, ["lettre-test"])).message(
        READER, unsubscribe_url(config, signer, READER), unsubscribe_mailto(config, signer, READER))
    confirmation, _ = ConfirmationMail(config, signer, mail_environment(config)).message(READER)
    welcome, _ = WelcomeMail(config, signer, mail_environment(config)).message(READER)
    spam = (b"From: lettre@blog.exemple.fr\r\nTo: " + READER.encode() + b"\r\nSubject: Test\r\n\r\n"
            b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n")
    return {"newsletter": wire_bytes(newsletter, config.dkim), "confirmation": wire_bytes(confirmation, config.dkim),
            "welcome": wire_bytes(welcome, config.dkim), "gtube": spam}  # the standard spam test string: proves the scores are read


@pytest.fixture(scope="module")
def scores(mails, tmp_path_factory):
    """kind → (score, {rule: points}); the runs in parallel, each with its own empty home."""
    command = require_command("spamassassin", "apt-get install spamassassin")
    runs = {}
    for kind, data in mails.items():
        home = tmp_path_factory.mktemp(f"sa-{kind}")
        args = [command, "-L", "-t", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0", "--cf=use_auto_whitelist 0",
                "-p", str(home / "user_prefs")]
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={"HOME": str(home), "PATH": os.environ["PATH"], "LANG": "C.UTF-8"})
        runs[kind] = process, data
    found = {}
    for kind, (process, data) in runs.items():
        out, err = process.communicate(data, timeout=120)
        report = out.decode("utf-8", "replace").partition("Content analysis details:")[2]
        total = re.match(r"\s*\((-?\d+\.\d+) points", report)
        assert total, f"no SpamAssassin report for the {kind}: {err.decode(errors='replace')[-500:]}"
        found[kind] = float(total.group(1)), {rule: float(points) for points, rule in RULE.findall(report)}
    return found


@pytest.mark.parametrize("kind", ["newsletter", "confirmation", "welcome"])
def test_signed_mail_scores_clean(scores, kind, record_property):
    score, rules = scores[kind]
    hit = ", ".join(f"{rule} {points:+.1f}" for rule, points in sorted(rules.items())) or "none"
    print(f"\nSpamAssassin, {kind}: {score:.1f} points; rules hit: {hit}")
    record_property(f"spamassassin_{kind}", f"{score} ({hit})")
    assert score <= MAX_SCORE, f"the {kind} scores {score}: {hit}"
    assert {rule for rule in rules if rule.startswith(("MISSING_", "INVALID_", "FORGED_", "HEADER_FROM_DIFFERENT"))} \
        == set(), hit


def test_the_check_can_fail(scores):
    score, rules = scores["gtube"]
    assert score > 100 and "GTUBE" in rules


def test_the_mails_sent_are_the_ones_scored(mails):
    """What SpamAssassin read carries the DKIM signature and the unsubscribe headers."""
    assert mails["newsletter"].startswith(b"DKIM-Signature:") and b"List-Unsubscribe-Post:" in mails["newsletter"]
    assert mails["confirmation"].startswith(b"DKIM-Signature:")
    assert mails["welcome"].startswith(b"DKIM-Signature:") and b"List-Unsubscribe-Post:" in mails["welcome"]
