"""Signed links: the confirmation link carries the address, signed and expiring,
so nothing is stored before consent; the unsubscribe link never expires.

Tokens are signed with secrets[0] and accepted with any secret of the list, so
NEWSLETTER_SECRET can be rotated (old one in NEWSLETTER_SECRET_PREVIOUS).
The payload is signed, not encrypted: the address can be read from the token.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

CONFIRM_MAX_AGE = 48 * 3600
CONFIRM_SALT = "newsletter.confirm"
UNSUBSCRIBE_SALT = "newsletter.unsubscribe"


class BadLink(ValueError):
    """The link was not signed by us, or was altered."""


class ExpiredLink(BadLink):
    """The link is genuine but older than its maximum age."""


class Signer:
    """Makes and reads the two kinds of link tokens. `clock` exists for tests (expired links)."""

    def __init__(self, secrets: list[str], clock: Callable[[], float] = time.time):
        if not secrets:
            raise ValueError("Signer needs at least one secret")

        class ClockedSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        # itsdangerous signs with the LAST key of the list and verifies with all of them.
        keys = list(reversed(secrets))
        self._confirm = URLSafeTimedSerializer(keys, salt=CONFIRM_SALT, signer=ClockedSigner)
        self._unsubscribe = URLSafeTimedSerializer(keys, salt=UNSUBSCRIBE_SALT, signer=ClockedSigner)

    def confirm_token(self, email: str) -> str:
        return self._confirm.dumps(email)

    def read_confirm_token(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> str:
        """The address of a confirmation token; ExpiredLink after max_age seconds, BadLink if forged."""
        try:
            email = self._confirm.loads(token, max_age=max_age)
        except SignatureExpired:
            raise ExpiredLink("lien expiré") from None
        except (BadSignature, UnicodeError, ValueError):
            raise BadLink("lien invalide") from None
        return _address(email)

    def unsubscribe_token(self, email: str) -> str:
        return self._unsubscribe.dumps(email)

    def read_unsubscribe_token(self, token: str) -> str:
        """The address of an unsubscribe token (no expiry: old newsletters keep working)."""
        try:
            email = self._unsubscribe.loads(token)
        except (BadSignature, UnicodeError, ValueError):
            raise BadLink("lien invalide") from None
        return _address(email)


def _address(payload: object) -> str:
    if not isinstance(payload, str) or "@" not in payload:
        raise BadLink("lien invalide")
    return payload
