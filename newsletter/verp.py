"""The per-reader return path (VERP): the envelope sender of a newsletter names its reader, signed.

A bounce or a complaint comes back to `lettre+<token>@exemple.fr` (the local part and domain of
BOUNCE_ADDRESS, from the environment or the settings, else of NEWSLETTER_FROM), so the bounce
reader knows whose address failed without anything stored about the send. The token is made by
`Signer.bounce_token` (forged ones are refused). The mailbox must accept "+" sub-addresses, as
Dovecot, Postfix (recipient_delimiter = +), Gmail and Fastmail do.
"""
from __future__ import annotations

import os
import re
from email.utils import parseaddr

from .config import Config, ConfigError
from .signing import Signer

LOCAL_PART_MAX = 64  # RFC 5321, 4.5.3.1.1
# Any "+a…" or "+h…" sub-address: a token made under an earlier BOUNCE_ADDRESS still counts.
# A look-behind rather than the whole local part: linear time, even over a 100 kB header.
TOKEN = re.compile(r"(?<=[\w.!#$%&'*/=?^`{|}~-])\+([ah][a-z0-9]{1,100}(?:-[a-z0-9]{1,40})?)@", re.IGNORECASE)


def bounce_base(config: Config, environ=os.environ) -> tuple[str, str]:
    """(local part, domain) of the return path."""
    address = parseaddr(environ.get("BOUNCE_ADDRESS") or str(config.settings.get("BOUNCE_ADDRESS") or "")
                        or config.mail_from)[1]
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise ConfigError(f"BOUNCE_ADDRESS / NEWSLETTER_FROM: no address in {address!r}")
    return local, domain


def return_path(config: Config, signer: Signer, email: str, environ=os.environ) -> str:
    """The signed envelope sender of the newsletter sent to `email`."""
    local, domain = bounce_base(config, environ)
    token = signer.bounce_token(email, room=LOCAL_PART_MAX - len(local) - 1)
    return f"{local}+{token}@{domain}"


def tokens_in(text: str) -> list[str]:
    """Every bounce token written in `text` (headers, a report), in order, once each."""
    return list(dict.fromkeys(match.lower() for match in TOKEN.findall(text or "")))
