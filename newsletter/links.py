"""Absolute links put in mails: confirm, unsubscribe, and the List-Unsubscribe mailto.

mailto format: mailto:{reply_to}?subject=unsubscribe-{token}. It reaches the author's
inbox (NEWSLETTER_REPLY_TO); the signed token proves the request came from a real
newsletter, and the author removes the address with `make remove EMAIL=…`.
The HTTPS link with RFC 8058 one-click is the automatic path.
"""
from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from functools import lru_cache
from urllib.parse import quote

from .config import Config
from .signing import Signer
from .store import WHOLE_BLOG


def confirm_url(config: Config, signer: Signer, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> str:
    return f"{config.newsletter_url}/confirmer/{signer.confirm_token(email, lists)}"


def unsubscribe_url(config: Config, signer: Signer, email: str) -> str:
    return f"{config.newsletter_url}/desinscription/{signer.unsubscribe_token(email)}"


def unsubscribe_mailto(config: Config, signer: Signer, email: str) -> str:
    token = signer.unsubscribe_token(email)
    return f"mailto:{mailto_address(config.reply_to)}?subject=unsubscribe-{token}"


@lru_cache(maxsize=4)
def mailto_address(reply_to: str) -> str:
    """NEWSLETTER_REPLY_TO's address, as a mailto: URL carries it (parsed once, not for every mail)."""
    return quote(parseaddr(reply_to)[1], safe="@")


def list_unsubscribe_headers(config: Config, signer: Signer, email: str) -> dict[str, str]:
    """RFC 2369 + RFC 8058 headers for a newsletter sent to `email`."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(config, signer, email)}>, <{unsubscribe_mailto(config, signer, email)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
