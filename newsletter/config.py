"""Run-time configuration: non-secret site settings from the Pelican settings file,
deployment values and secrets from the environment (ARCHITECTURE.md names them).

One reader, so the service, the sender and the commands agree on every value,
and a bad value is reported once with the name of its variable.
"""
from __future__ import annotations

import logging
import os
import runpy
import secrets as _secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from blogcore import urls

from .dkimsign import DkimKey, DkimKeyError

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "var/subscribers.sqlite3"
DEFAULT_OUTBOX = "var/outbox/"
DEV_SECRET_FILE = "var/secret"
MIN_SECRET_LENGTH = 16
MAX_CONNECTIONS = 64  # beyond this, a typo (1000) rather than a relay pool: each connection is a thread


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Config:
    """Everything the newsletter needs at run time. Secrets stay out of repr()."""

    public_url: str
    newsletter_url: str
    mail_from: str
    reply_to: str
    site_name: str
    db: str
    outbox: Path
    smtp_url: str | None = field(default=None, repr=False)  # the first relay: the service's confirmation mails
    smtp_urls: tuple[str, ...] = field(default=(), repr=False)  # every relay of SMTP_URL, for make send
    smtp_connections: int = 1  # NEWSLETTER_SMTP_CONNECTIONS: make send's connections, spread over smtp_urls
    welcome: bool = True  # NEWSLETTER_WELCOME: a welcome mail once a reader confirms (welcome.py)
    instances: tuple[str, ...] = ()  # NEWSLETTER_INSTANCES: host:port of every instance (peers.py)
    secrets: list[str] = field(default_factory=list, repr=False)
    dkim: DkimKey | None = field(default=None, repr=False)
    settings: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def newsletter_path(self) -> str:
        """The path part of newsletter_url ("/newsletter"): where the service's routes live."""
        return urlsplit(self.newsletter_url).path.rstrip("/")

    @classmethod
    def from_env(cls, settings_file: str | os.PathLike | None = None, environ=None) -> "Config":
        """Read the settings file (NEWSLETTER_SETTINGS, else the argument, else pelicanconf.py) and the environment."""
        env = os.environ if environ is None else environ
        settings_file = env.get("NEWSLETTER_SETTINGS") or settings_file or "pelicanconf.py"
        settings = read_settings(settings_file)

        public_url = urls.public_url(settings)
        if urls.problem(public_url):
            raise ConfigError(f"PUBLIC_URL ({settings_file}) doit être une adresse absolue http(s)://, pas {public_url!r}")
        newsletter_url = str(settings.get("NEWSLETTER_URL", "/newsletter")).rstrip("/")
        if newsletter_url.startswith("/"):
            newsletter_url = public_url + newsletter_url
        if urlsplit(newsletter_url).scheme not in ("http", "https"):
            raise ConfigError(f"NEWSLETTER_URL ({settings_file}) doit être un chemin (/newsletter) ou une adresse http(s)://, pas {newsletter_url!r}")

        smtp_urls = read_smtp_urls(env.get("SMTP_URL") or "")
        smtp_connections = read_connections(env.get("NEWSLETTER_SMTP_CONNECTIONS") or "")
        instances = read_instances(env.get("NEWSLETTER_INSTANCES") or "")

        welcome = settings.get("NEWSLETTER_WELCOME", True)
        if not isinstance(welcome, bool):
            raise ConfigError(f"NEWSLETTER_WELCOME ({settings_file}) doit valoir True ou False, pas {welcome!r}")

        mail_from = str(settings.get("NEWSLETTER_FROM", ""))
        dkim = read_dkim(env)
        if dkim is not None and "@" not in mail_from:
            raise ConfigError(f"NEWSLETTER_FROM ({settings_file}) : une adresse est nécessaire pour signer "
                              f"avec DKIM (son domaine est celui de la signature), pas {mail_from!r}")
        return cls(
            public_url=public_url,
            newsletter_url=newsletter_url,
            mail_from=mail_from,
            reply_to=str(settings.get("NEWSLETTER_REPLY_TO", "")),
            site_name=str(settings.get("SITENAME", "")),
            db=env.get("NEWSLETTER_DB") or str(ROOT / DEFAULT_DB),
            outbox=Path(env.get("NEWSLETTER_OUTBOX") or ROOT / DEFAULT_OUTBOX),
            smtp_url=smtp_urls[0] if smtp_urls else None,
            smtp_urls=smtp_urls,
            smtp_connections=smtp_connections,
            welcome=welcome,
            instances=instances,
            secrets=read_secrets(env),
            dkim=dkim,
            settings=settings,
        )


def read_instances(raw: str) -> tuple[str, ...]:
    """NEWSLETTER_INSTANCES: the service's instances as host:port, separated by spaces or commas."""
    instances = tuple(part for part in raw.replace(",", " ").split() if part)
    for instance in instances:
        try:
            host_port(instance)
        except ValueError:
            raise ConfigError(f"NEWSLETTER_INSTANCES : {instance!r} n’est pas de la forme hôte:port "
                              "(127.0.0.1:8001)") from None
    return instances


def host_port(text: str) -> tuple[str, int]:
    """("host", port) of "host:port" (an IPv6 host in brackets); ValueError if it is not one."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port: {text!r}")
    return host.strip("[]"), int(port)


def read_smtp_urls(raw: str) -> tuple[str, ...]:
    """SMTP_URL: one relay, or several separated by spaces (a pool that `make send` spreads its
    connections over). Each is checked; the error says which one, never its password."""
    urls = tuple(raw.split())
    for rank, url in enumerate(urls, 1):
        which = f"SMTP_URL (relais n° {rank})" if len(urls) > 1 else "SMTP_URL"
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"{which} doit être de la forme smtp://utilisateur:motdepasse@hôte:port "
                              f"(ou smtps://), pas {parts.scheme}://{parts.hostname or ''}…")
        try:
            parts.port
        except ValueError:
            raise ConfigError(f"{which} : port invalide pour l’hôte {parts.hostname}") from None
    return urls


def read_connections(raw: str) -> int:
    """NEWSLETTER_SMTP_CONNECTIONS: how many SMTP connections one `make send` uses at once (default 1)."""
    if not raw.strip():
        return 1
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_CONNECTIONS:
        raise ConfigError(f"NEWSLETTER_SMTP_CONNECTIONS doit être un nombre entier de connexions, "
                          f"de 1 à {MAX_CONNECTIONS}, pas {raw!r}")
    return count


def read_settings(settings_file: str | os.PathLike) -> dict:
    """The UPPER_CASE names of a Pelican settings file, run as Pelican runs it.

    A relative name is looked up in the current folder, then at the project root.
    The file's folder goes on sys.path so publishconf.py can import pelicanconf.
    """
    path = Path(settings_file)
    if not path.is_absolute() and not path.exists():
        path = ROOT / path
    if not path.exists():
        raise ConfigError(f"NEWSLETTER_SETTINGS : fichier de réglages introuvable : {settings_file}")
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        names = runpy.run_path(str(path))
    except SystemExit as exc:  # publishconf.py stops on a missing SITEURL or NEWSLETTER_SECRET
        raise ConfigError(str(exc.code)) from None
    finally:
        sys.path.remove(folder)
    return {k: v for k, v in names.items() if k.isupper()}


def read_dkim(env) -> DkimKey | None:
    """DKIM_SELECTOR with DKIM_KEY_FILE (a PEM file) or DKIM_KEY (the PEM itself), checked now:
    a bad key stops the start with the variable's name, instead of failing every send."""
    selector = (env.get("DKIM_SELECTOR") or "").strip()
    key_file = (env.get("DKIM_KEY_FILE") or "").strip()
    key = env.get("DKIM_KEY") or ""
    if not (selector or key_file or key.strip()):
        return None
    if key_file and key.strip():
        raise ConfigError("DKIM_KEY_FILE et DKIM_KEY sont tous deux définis : gardez-en un seul")
    if not selector:
        raise ConfigError("DKIM_SELECTOR manque : il accompagne DKIM_KEY_FILE ou DKIM_KEY (par exemple : lettre2026)")
    if not (key_file or key.strip()):
        raise ConfigError("DKIM_KEY_FILE (ou DKIM_KEY) manque : DKIM_SELECTOR est défini, mais sans clé privée")
    if key_file:
        source = f"DKIM_KEY_FILE={key_file}"
        try:
            pem = Path(key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{source} : fichier illisible ({exc.strerror or exc.__class__.__name__})") from None
    else:
        source, pem = "DKIM_KEY", key.replace("\\n", "\n").encode("ascii", "replace")
    try:
        return DkimKey.load(selector, pem, source)
    except DkimKeyError as exc:
        raise ConfigError(str(exc)) from None


def read_secrets(env) -> list[str]:
    """NEWSLETTER_SECRET first (signs), then NEWSLETTER_SECRET_PREVIOUS (still accepted after a rotation).

    Without NEWSLETTER_SECRET (development), a secret is generated once into var/secret
    and reused, so links stay valid across restarts. publishconf.py refuses to run without it.
    """
    found = []
    for name in ("NEWSLETTER_SECRET", "NEWSLETTER_SECRET_PREVIOUS"):
        value = env.get(name)
        if value:
            if len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(f"{name} est trop court : au moins {MIN_SECRET_LENGTH} caractères "
                                  "(par exemple : python -c 'import secrets; print(secrets.token_urlsafe())')")
            found.append(value)
    if env.get("NEWSLETTER_SECRET"):
        return found
    return [dev_secret(ROOT / DEV_SECRET_FILE)] + found


def dev_secret(path: Path) -> str:
    """The development secret, created on first use (readable by its owner only)."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = _secrets.token_urlsafe(32)
    # Written in full to a temporary name, then linked: a concurrent reader never sees half a secret.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text(encoding="ascii").strip()
    finally:
        tmp.unlink()
    logger.info("NEWSLETTER_SECRET is not set: generated a development secret in %s", path)
    return value
