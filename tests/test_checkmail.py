"""make check-mail against a real DNS server (dnsmasq on 127.0.0.1, tests/fixtures/dns.py) and a real
SMTP relay (aiosmtpd): the domain that is right passes, each broken one is told apart, with the record
to publish."""
import ssl
import subprocess
import sys

import pytest

from newsletter import checkmail
from newsletter.config import Config
from tests.fixtures.mail.support import Controller, Sink, free_port
from tests.test_newsletter_mailer import certificate, client_tls, server_tls  # noqa: F401 (fixtures)
from tests.fixtures.dns import SELECTOR
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def relay():
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


def environ(tmp_path, dns_server, domain, smtp_url, dkim=True):
    settings = tmp_path / f"{domain}.py"
    settings.write_text(f"SITENAME = 'égoBlog'\nPUBLIC_URL = 'https://blog.{domain}'\n"
                        f"NEWSLETTER_FROM = 'égoBlog <lettre@{domain}>'\n")
    env = {"NEWSLETTER_SETTINGS": str(settings), "NEWSLETTER_SECRET": "s" * 32,
           "CHECK_MAIL_DNS": dns_server.address}
    if smtp_url:
        env["SMTP_URL"] = smtp_url
    if dkim:
        env.update(DKIM_SELECTOR=SELECTOR, DKIM_KEY_FILE=str(dns_server.key_file))
    return env


def run(env, capsys):
    status = checkmail.main(environ=env)
    return status, capsys.readouterr().out


def test_a_domain_set_up_right_passes(tmp_path, dns_server, relay, capsys):
    status, out = run(environ(tmp_path, dns_server, "ok.test", relay), capsys)
    assert status == 0, out
    assert "À CORRIGER" not in out and "Tout est en place" in out
    assert "autorise le relais 127.0.0.1" in out and f"{SELECTOR}._domainkey.ok.test" in out


@pytest.mark.parametrize("domain, what, says, record", [
    ("nospf.test", "SPF", "aucun enregistrement SPF", 'nospf.test TXT "v=spf1 a:127.0.0.1 ~all"'),
    ("otherspf.test", "SPF", "n’autorise pas le relais 127.0.0.1",
     'otherspf.test TXT "v=spf1 ip4:192.0.2.1 ip4:127.0.0.1 -all"'),
    ("nodkim.test", "DKIM", "aucune clé publiée à lettre2026._domainkey.nodkim.test",
     'lettre2026._domainkey.nodkim.test TXT "v=DKIM1; k=rsa; p=MII'),
    ("baddkim.test", "DKIM", "n’est pas celle de DKIM_KEY_FILE", 'lettre2026._domainkey.baddkim.test TXT "v=DKIM1'),
    ("nodmarc.test", "DMARC", "aucun enregistrement DMARC", '_dmarc.nodmarc.test TXT "v=DMARC1; p=quarantine'),
    ("weakdmarc.test", "DMARC", "p=none ne protège pas", '_dmarc.weakdmarc.test TXT "v=DMARC1; p=quarantine'),
    ("nomx.test", "MX", "aucun MX pour nomx.test", "nomx.test MX 10"),
])
def test_each_broken_record_is_named_with_the_record_to_publish(tmp_path, dns_server, relay, capsys,
                                                                 domain, what, says, record):
    status, out = run(environ(tmp_path, dns_server, domain, relay), capsys)
    assert status == 1
    wrong = [line for line in out.splitlines() if line.startswith("À CORRIGER")]
    assert len(wrong) == 1 and wrong[0].startswith(f"À CORRIGER {what} :") and says in wrong[0], out
    assert f"à publier : {record}" in out
    if what == "DKIM":
        assert dns_server.key.public_key_b64() in out  # the key in use, ready to paste


def test_no_dkim_key_and_no_relay_are_problems(tmp_path, dns_server, capsys):
    status, out = run(environ(tmp_path, dns_server, "ok.test", None, dkim=False), capsys)
    assert status == 1
    assert "À CORRIGER DKIM : pas de signature DKIM" in out and "À CORRIGER SMTP : SMTP_URL n’est pas défini" in out


def test_unreachable_relay(tmp_path, dns_server, capsys):
    status, out = run(environ(tmp_path, dns_server, "ok.test", f"smtp://127.0.0.1:{free_port()}"), capsys)
    assert status == 1 and "À CORRIGER SMTP : 127.0.0.1:" in out and "injoignable" in out


def config_for(tmp_path, dns_server, smtp_url) -> Config:
    return Config.from_env(environ=environ(tmp_path, dns_server, "ok.test", smtp_url))


def test_starttls_relay_with_a_valid_certificate(tmp_path, dns_server, server_tls, client_tls):
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port(), tls_context=server_tls,
                            require_starttls=True)
    controller.start()
    try:
        report = checkmail.check(config_for(tmp_path, dns_server, f"smtp://127.0.0.1:{controller.port}?starttls=1"),
                                 dns_server.resolver(), client_tls)
    finally:
        controller.stop()
    assert report.problems == 0, report.lines
    assert any("STARTTLS (TLSv1." in line for line in report.lines)


def test_implicit_tls_relay_with_an_untrusted_certificate_fails(tmp_path, dns_server, server_tls):
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port(), ssl_context=server_tls)
    controller.start()
    try:
        report = checkmail.check(config_for(tmp_path, dns_server, f"smtps://127.0.0.1:{controller.port}"),
                                 dns_server.resolver(), ssl.create_default_context())
    finally:
        controller.stop()
    assert report.problems == 1
    assert any(line.startswith("À CORRIGER SMTP") and "SMTP_URL" in line for line in report.lines)


def test_the_command_exits_1_on_a_broken_domain(tmp_path, dns_server, relay):
    env = environ(tmp_path, dns_server, "nodmarc.test", relay)
    done = subprocess.run([sys.executable, "-m", "newsletter.checkmail"], cwd=ROOT, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "À CORRIGER DMARC" in done.stdout, done.stderr
