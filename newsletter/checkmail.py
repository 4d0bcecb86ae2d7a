"""make check-mail: is the From domain set up so that mailbox providers accept the newsletter?

Looks up, for NEWSLETTER_FROM's domain, SPF (and whether it authorises the relay of SMTP_URL),
DKIM (the record at DKIM_SELECTOR, compared with the key in use), DMARC (a policy that protects)
and MX; then connects to SMTP_URL (EHLO, TLS; no mail sent). Each problem is said in plain French
with the exact record to publish. Exit status 0 when all is right, 1 otherwise.

CHECK_MAIL_DNS=host[:port] asks that DNS server instead of the system's (tests use dnsmasq).
"""
from __future__ import annotations

import ipaddress
import os
import smtplib
import ssl
import sys
from dataclasses import dataclass, field
from email.utils import parseaddr
from urllib.parse import urlsplit

import dns.exception
import dns.resolver

from .config import Config, ConfigError
from .mailer import SMTP_TIMEOUT, SMTPMailer

SPF_LOOKUPS = 10  # RFC 7208 §4.6.4: more DNS-querying terms than this is a permerror


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: int = 0

    def ok(self, what: str, text: str) -> None:
        self.lines.append(f"OK      {what} : {text}")

    def bad(self, what: str, text: str, record: str | None = None) -> None:
        self.problems += 1
        self.lines.append(f"À CORRIGER {what} : {text}")
        if record:
            self.lines.append(f"        à publier : {record}")


def resolver_from_env(env) -> dns.resolver.Resolver:
    """The system's resolver, or CHECK_MAIL_DNS=host[:port]."""
    where = (env.get("CHECK_MAIL_DNS") or "").strip()
    if not where:
        return dns.resolver.Resolver()
    host, _, port = where.rpartition(":") if where.count(":") == 1 else (where, "", "")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [host], int(port or 53)
    resolver.lifetime = 5
    return resolver


def txt(resolver, name: str) -> list[str]:
    """The TXT strings at `name` (each record's strings joined); [] when there is none."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def addresses(resolver, host: str) -> list[str]:
    """The IP addresses of `host` (itself when it is one)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    found = []
    for kind in ("A", "AAAA"):
        try:
            found += [r.address for r in resolver.resolve(host, kind)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            pass
    return found


def tags(record: str) -> dict[str, str]:
    """k=v; pairs of a DKIM or DMARC record."""
    pairs = (part.strip().partition("=") for part in record.split(";"))
    return {k.strip().lower(): v.strip() for k, _, v in pairs if k.strip()}


# -- SPF ---------------------------------------------------------------------------


def spf_record(resolver, domain: str) -> str | None:
    records = [r for r in txt(resolver, domain) if r.lower().startswith("v=spf1")]
    return records[0] if len(records) == 1 else (None if not records else "MULTIPLE")


def spf_allows(resolver, domain: str, ip: str, budget: list[int]) -> bool | None:
    """True if `domain`'s SPF authorises `ip` (pass), False if not, None if it can't be evaluated.
    Handles ip4, ip6, a, mx, include, redirect and all: what authors' records use."""
    record = spf_record(resolver, domain)
    if record in (None, "MULTIPLE"):
        return None
    address = ipaddress.ip_address(ip)
    redirect = None
    for term in record.split()[1:]:
        qualifier = term[0] if term[0] in "+-~?" else "+"
        term = term.lstrip("+-~?")
        name, _, value = term.partition(":")
        name, value = name.lower(), value
        if name.startswith("redirect="):
            redirect = term.partition("=")[2]
            continue
        if "=" in name:
            continue  # other modifiers (exp=)
        network, _, cidr = value.partition("/")
        if name in ("include", "a", "mx"):
            budget[0] -= 1
            if budget[0] < 0:
                return None
        if name == "all":
            matched = True
        elif name in ("ip4", "ip6"):
            try:
                matched = address in ipaddress.ip_network(value, strict=False)
            except ValueError:
                matched = False
        elif name == "a":
            matched = _in_hosts(resolver, [network or domain], address, cidr)
        elif name == "mx":
            matched = _in_hosts(resolver, _mx_hosts(resolver, network or domain), address, cidr)
        elif name == "include":
            matched = spf_allows(resolver, value, ip, budget) is True
        else:
            continue  # ptr, exists: not evaluated here
        if matched:
            return qualifier == "+"
    if redirect:
        budget[0] -= 1
        return spf_allows(resolver, redirect, ip, budget) if budget[0] >= 0 else None
    return False


def _mx_hosts(resolver, domain: str) -> list[str]:
    try:
        return [str(r.exchange).rstrip(".") for r in resolver.resolve(domain, "MX")]
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []


def _in_hosts(resolver, hosts: list[str], address, cidr: str) -> bool:
    for host in hosts:
        for found in addresses(resolver, host):
            network = ipaddress.ip_network(f"{found}/{cidr}" if cidr else found, strict=False)
            if address in network:
                return True
    return False


def check_spf(report: Report, resolver, domain: str, relay: str | None) -> None:
    record = spf_record(resolver, domain)
    if record is None:
        report.bad("SPF", f"aucun enregistrement SPF sur {domain} : les messageries ne savent pas quels "
                          "serveurs peuvent envoyer pour ce domaine (remplacez le mécanisme par celui que "
                          "donne votre fournisseur SMTP, par exemple include:…)",
                   f'{domain} TXT "v=spf1 {_spf_term(relay)} ~all"')
        return
    if record == "MULTIPLE":
        report.bad("SPF", f"plusieurs enregistrements v=spf1 sur {domain} : c’est une erreur (permerror), "
                          "fusionnez-les en un seul")
        return
    if relay is None:
        report.ok("SPF", f"{record} (pas de SMTP_URL : le relais n’est pas vérifié)")
        return
    ips = addresses(resolver, relay)
    if not ips:
        report.ok("SPF", f"{record} (l’adresse du relais {relay} n’a pas pu être résolue : non vérifié)")
        return
    verdicts = {ip: spf_allows(resolver, domain, ip, [SPF_LOOKUPS]) for ip in ips}
    refused = [ip for ip, allowed in verdicts.items() if allowed is False]
    unknown = [ip for ip, allowed in verdicts.items() if allowed is None]
    if refused:
        report.bad("SPF", f"{record} n’autorise pas le relais {relay} ({', '.join(refused)}) : ajoutez-le "
                          "(ou l’include: de votre fournisseur) avant le « all »",
                   f'{domain} TXT "{_with_term(record, _spf_term(relay, refused[0]))}"')
    elif unknown:
        report.bad("SPF", f"{record} : évaluation impossible pour {relay} (trop de requêtes DNS, plus de "
                          f"{SPF_LOOKUPS} include/a/mx, ou include sans SPF)")
    else:
        report.ok("SPF", f"{record} autorise le relais {relay}")


def _spf_term(relay: str | None, ip: str | None = None) -> str:
    if ip:
        return f"ip6:{ip}" if ":" in ip else f"ip4:{ip}"
    return f"a:{relay}" if relay else "mx"


def _with_term(record: str, term: str) -> str:
    words = record.split()
    last = len(words) - 1 if words[-1].lstrip("+-~?").lower() == "all" else len(words)
    return " ".join(words[:last] + [term] + words[last:])


# -- DKIM, DMARC, MX ----------------------------------------------------------------------


def check_dkim(report: Report, resolver, domain: str, config: Config) -> None:
    if config.dkim is None:
        report.bad("DKIM", "pas de signature DKIM : définissez DKIM_SELECTOR et DKIM_KEY_FILE (une clé RSA "
                           "de 2048 bits : openssl genrsa -out dkim.pem 2048), puis publiez la clé publique "
                           "que cette commande affichera")
        return
    key = config.dkim
    name = f"{key.selector}._domainkey.{domain}"
    records = [r for r in txt(resolver, name) if "p=" in r]
    expected = key.public_key_b64()
    if not records:
        report.bad("DKIM", f"aucune clé publiée à {name} : les mails signés ne peuvent pas être vérifiés",
                   key.dns_record(domain))
        return
    published = tags(records[0])
    if published.get("p", "").replace(" ", "") != expected:
        why = "la clé a été révoquée (p= vide)" if not published.get("p") else \
            "la clé publiée n’est pas celle de DKIM_KEY_FILE"
        report.bad("DKIM", f"{name} : {why} ; remplacez l’enregistrement", key.dns_record(domain))
        return
    report.ok("DKIM", f"{name} publie la clé de DKIM_KEY_FILE ; signature d={domain}, alignée sur le From")


def check_dmarc(report: Report, resolver, domain: str) -> None:
    suggestion = f'_dmarc.{domain} TXT "v=DMARC1; p=quarantine; adkim=s; rua=mailto:dmarc@{domain}"'
    name, records = f"_dmarc.{domain}", []
    for candidate in _dmarc_names(domain):
        records = [r for r in txt(resolver, candidate) if r.lower().startswith("v=dmarc1")]
        if records:
            name = candidate
            break
    if not records:
        report.bad("DMARC", f"aucun enregistrement DMARC ({name}) : Gmail et Yahoo l’exigent des "
                            "expéditeurs en nombre", suggestion)
        return
    policy = tags(records[0])
    p = policy.get("p", "").lower()
    if p not in ("quarantine", "reject"):
        report.bad("DMARC", f"{records[0]} : la politique p={p or '(absente)'} ne protège pas le domaine "
                            "(un faux mail à votre nom est livré) ; une fois SPF et DKIM en place, passez à "
                            "p=quarantine", suggestion)
        return
    alignment = "stricte" if policy.get("adkim", "r").lower() == "s" else "souple"
    report.ok("DMARC", f"{records[0]} (p={p} ; alignement DKIM {alignment} : d={domain} est le domaine du From)")


def _dmarc_names(domain: str) -> list[str]:
    """The domain's own _dmarc record, then its parent's (the organizational domain, roughly)."""
    labels = domain.split(".")
    names = [f"_dmarc.{domain}"]
    if len(labels) > 2:
        names.append(f"_dmarc.{'.'.join(labels[-2:])}")
    return names


def check_mx(report: Report, resolver, domain: str) -> None:
    hosts = _mx_hosts(resolver, domain)
    if not hosts:
        report.bad("MX", f"aucun MX pour {domain} : les réponses des lecteurs et les avis de non-remise ne "
                         "peuvent pas arriver, et des messageries refusent un From sans MX (mettez le serveur "
                         "de réception de votre hébergeur)", f"{domain} MX 10 mx.votre-hebergeur.fr.")
        return
    report.ok("MX", ", ".join(sorted(hosts)))


# -- the relay ------------------------------------------------------------------------------


def check_smtp(report: Report, config: Config, ssl_context: ssl.SSLContext | None = None) -> None:
    """Connect, EHLO, TLS (smtps:// or STARTTLS); log in only if SMTP_URL has credentials. No mail."""
    if not config.smtp_url:
        report.bad("SMTP", "SMTP_URL n’est pas défini : les mails vont dans le dossier NEWSLETTER_OUTBOX "
                           "au lieu d’être envoyés")
        return
    mailer = SMTPMailer(config.smtp_url, ssl_context)
    where = mailer.where
    if not mailer.tls and not mailer.starttls:
        try:
            with smtplib.SMTP(mailer.host, mailer.port, timeout=SMTP_TIMEOUT) as smtp:
                smtp.ehlo()
                offers = smtp.has_extn("starttls")
        except (OSError, smtplib.SMTPException) as exc:
            report.bad("SMTP", f"{where} injoignable ({exc.__class__.__name__}: {exc})")
            return
        if _loopback(mailer.host):
            report.ok("SMTP", f"{where} répond (sans TLS : acceptable, le relais est sur cette machine)")
        elif offers:
            report.bad("SMTP", f"{where} propose STARTTLS mais SMTP_URL ne l’utilise pas : le mot de passe "
                               "et les mails passent en clair ; ajoutez ?starttls=1 à SMTP_URL")
        else:
            report.bad("SMTP", f"{where} ne propose pas TLS : le mot de passe et les mails passent en clair ; "
                               "utilisez le port TLS de votre fournisseur (smtps://…:465 ou ?starttls=1)")
        return
    try:
        smtp = mailer.connect()  # EHLO, TLS, login: MailerError names the step that failed
    except Exception as exc:  # MailerError, whose message says which step failed
        report.bad("SMTP", str(exc))
        return
    try:
        version = smtp.sock.version() if hasattr(smtp.sock, "version") else "?"
    finally:
        smtp.quit()
    how = "TLS dès la connexion" if mailer.tls else "STARTTLS"
    report.ok("SMTP", f"{where} répond, {how} ({version}), certificat valide"
                      + (", identifiants acceptés" if mailer.user else ""))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check(config: Config, resolver, ssl_context: ssl.SSLContext | None = None) -> Report:
    report = Report()
    address = parseaddr(config.mail_from)[1]
    domain = address.rpartition("@")[2].rstrip(".").lower()
    if "@" not in address or "." not in domain:
        report.bad("From", f"NEWSLETTER_FROM n’est pas une adresse : {config.mail_from!r}")
        return report
    domain = domain.encode("idna").decode("ascii")
    report.lines.append(f"Domaine de l’expéditeur : {domain} ({address})")
    relay = urlsplit(config.smtp_url).hostname if config.smtp_url else None
    try:
        check_spf(report, resolver, domain, relay)
        check_dkim(report, resolver, domain, config)
        check_dmarc(report, resolver, domain)
        check_mx(report, resolver, domain)
    except dns.exception.DNSException as exc:
        report.bad("DNS", f"le serveur DNS ne répond pas correctement ({exc.__class__.__name__}: {exc})")
    check_smtp(report, config, ssl_context)
    return report


def main(environ=None, out=None, err=None) -> int:
    env = os.environ if environ is None else environ
    out, err = out or sys.stdout, err or sys.stderr
    try:
        config = Config.from_env(environ=env)
        resolver = resolver_from_env(env)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    report = check(config, resolver)
    print("\n".join(report.lines), file=out)
    if report.problems:
        print(f"\n{report.problems} point(s) à corriger avant d’envoyer la lettre.", file=out)
        return 1
    print("\nTout est en place : SPF, DKIM, DMARC, MX et le relais SMTP.", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
