"""Signed links: the confirmation link carries the address and the lists chosen, signed and
expiring, so nothing is stored before consent; the unsubscribe link never expires.

A confirmation for the whole blog alone carries the address only (the token of before lists,
still valid); for other lists, [address, [list keys]].

Tokens are signed with secrets[0] and accepted with any secret of the list, so
NEWSLETTER_SECRET can be rotated (old one in NEWSLETTER_SECRET_PREVIOUS).
The payload is signed, not encrypted: the address can be read from the token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Sequence

from itsdangerous import BadData, BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, int_to_bytes

from .store import WHOLE_BLOG

CONFIRM_MAX_AGE = 48 * 3600
CONFIRM_SALT = "newsletter.confirm"
UNSUBSCRIBE_SALT = "newsletter.unsubscribe"
BOUNCE_SALT = b"newsletter.bounce"
BOUNCE_MAC = 10     # bytes of HMAC-SHA256 in a bounce token carrying the address (80 bits)
BOUNCE_DIGEST = 15  # bytes of HMAC-SHA256 in a bounce token made of the digest only (120 bits)
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # itsdangerous's, made once


class BadLink(ValueError):
    """The link was not signed by us, or was altered."""


class ExpiredLink(BadLink):
    """The link is genuine but older than its maximum age."""


class _OnceSerializer(URLSafeTimedSerializer):
    """URLSafeTimedSerializer with one signer per salt, made once: itsdangerous makes a new one for every
    token, and derives its keys again for every signature, which was half the cost of a token. The
    tokens are the same bytes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._signers: dict = {}

    def make_signer(self, salt=None):
        salt = self.salt if salt is None else salt
        signer = self._signers.get(salt)
        if signer is None:
            signer = self._signers[salt] = super().make_signer(salt)
        return signer


class Signer:
    """Makes and reads the link tokens and the bounce tokens. `clock` exists for tests (expired links)."""

    def __init__(self, secrets: list[str], clock: Callable[[], float] = time.time):
        if not secrets:
            raise ValueError("Signer needs at least one secret")

        class ClockedSigner(TimestampSigner):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._derived: dict = {}

            def get_timestamp(self) -> int:
                return int(clock())

            def derive_key(self, secret_key=None) -> bytes:
                key = self._derived.get(secret_key)
                if key is None:
                    key = self._derived[secret_key] = super().derive_key(secret_key)
                return key

        self._clock = clock
        # itsdangerous signs with the LAST key of the list and verifies with all of them.
        keys = list(reversed(secrets))
        self._bounce_keys = [hmac.new(secret.encode(), BOUNCE_SALT, hashlib.sha256).digest() for secret in secrets]
        self._confirm = _OnceSerializer(keys, salt=CONFIRM_SALT, signer=ClockedSigner)
        self._unsubscribe = _OnceSerializer(keys, salt=UNSUBSCRIBE_SALT, signer=ClockedSigner)
        self._last_unsubscribe = ("", "")  # a mail carries its reader's token two or three times
        self._confirm_keys = self._verifying_keys(self._confirm)
        self._unsubscribe_keys = self._verifying_keys(self._unsubscribe)
        self._confirm_key = self._minting_key(self._confirm)
        self._unsubscribe_key = self._minting_key(self._unsubscribe)

    def _verifying_keys(self, serializer: URLSafeTimedSerializer) -> list:
        """HMAC-SHA1 with each key itsdangerous verifies `serializer`'s tokens with (its key derivation),
        for _genuine; none if a token it makes does not check out so (another itsdangerous: _genuine off)."""
        signer = serializer.make_signer()
        keys = [hmac.new(signer.derive_key(secret), digestmod=hashlib.sha1) for secret in reversed(signer.secret_keys)]
        token = serializer.dumps(["x@exemple.fr", ["essai"]])
        return keys if self._genuine(token, keys, None) == ["x@exemple.fr", ["essai"]] else []

    def _minting_key(self, serializer: URLSafeTimedSerializer):
        """HMAC-SHA1 with the key itsdangerous signs `serializer`'s tokens with, for _mint; None if a token
        _mint makes is not the one itsdangerous makes (another itsdangerous: _mint off)."""
        key = hmac.new(serializer.make_signer().derive_key(), digestmod=hashlib.sha1)
        payload = ["x@exemple.fr", ["essai"]]
        # Twice: the clock's second may tick between the two tokens of a try (not between two tries), and
        # a mismatch so would have left this process on itsdangerous's slower path for good.
        same = any(self._mint(key, payload) == serializer.dumps(payload) for _ in range(2))
        return key if same else None

    def _mint(self, key, payload) -> str:
        """The token itsdangerous makes of `payload` (compact JSON, base64, time stamp, HMAC-SHA1), at a
        third of its cost: one HMAC state copied, no signer objects. Never compressed: itsdangerous
        compresses a payload that zlib shortens (a long address repeating itself), and reads both."""
        data = base64.urlsafe_b64encode(_COMPACT_JSON(payload).encode())
        signed = data.rstrip(b"=") + b"." + base64.urlsafe_b64encode(int_to_bytes(int(self._clock()))).rstrip(b"=")
        mac = key.copy()
        mac.update(signed)
        return (signed + b"." + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")).decode("ascii")

    def _genuine(self, token: str, keys: list, max_age: int | None):
        """The payload of a token that is, by the very checks itsdangerous makes, genuine and young enough;
        None for anything else, which itsdangerous then reads itself (and refuses with its reason). A
        third of its cost a link: one HMAC, no signer objects, no exceptions on the way."""
        try:
            signed, _, mac = token.encode("ascii").rpartition(b".")
            payload, _, stamp = signed.rpartition(b".")
            if not payload or payload.startswith(b"."):  # compressed: itsdangerous's own path
                return None
            mac = base64_decode(mac)
            for key in keys:
                computed = key.copy()  # the key's HMAC state, prepared once
                computed.update(signed)
                if hmac.compare_digest(computed.digest(), mac):
                    break
            else:
                return None
            if max_age is not None:
                stamp = base64_decode(stamp)
                if len(stamp) > 8 or not 0 <= int(self._clock()) - int.from_bytes(stamp, "big") <= max_age:
                    return None
            return json.loads(base64_decode(payload).decode())
        except (ValueError, BadData):  # not ASCII, not base64, not JSON (UnicodeError is a ValueError)
            return None

    def confirm_token(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> str:
        payload = email if list(lists) == [WHOLE_BLOG] else [email, sorted(lists)]
        if self._confirm_key is None:
            return self._confirm.dumps(payload)
        return self._mint(self._confirm_key, payload)

    def read_confirm_token(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> str:
        """The address of a confirmation token; ExpiredLink after max_age seconds, BadLink if forged."""
        return self.read_confirm(token, max_age)[0]

    def read_confirm(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> tuple[str, list[str]]:
        """The address and list keys of a confirmation token (an address alone: the whole blog)."""
        payload = self._genuine(token, self._confirm_keys, max_age)
        try:
            if payload is None:
                payload = self._confirm.loads(token, max_age=max_age)
        except SignatureExpired:
            raise ExpiredLink("lien expiré") from None
        except (BadSignature, UnicodeError, ValueError):
            raise BadLink("lien invalide") from None
        if isinstance(payload, str):
            return _address(payload), [WHOLE_BLOG]
        if (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], list) and payload[1]
                and all(isinstance(key, str) for key in payload[1])):
            return _address(payload[0]), payload[1]
        raise BadLink("lien invalide")

    def unsubscribe_token(self, email: str) -> str:
        """The token of `email`'s unsubscribe link. It never expires, so the last one made serves again
        for the same address (a mail's link, its List-Unsubscribe URL and mailto)."""
        last_email, token = self._last_unsubscribe
        if email != last_email:
            key = self._unsubscribe_key
            token = self._unsubscribe.dumps(email) if key is None else self._mint(key, email)
            self._last_unsubscribe = (email, token)
        return token

    def read_unsubscribe_token(self, token: str) -> str:
        """The address of an unsubscribe token (no expiry: old newsletters keep working)."""
        email = self._genuine(token, self._unsubscribe_keys, None)
        try:
            if email is None:
                email = self._unsubscribe.loads(token)
        except (BadSignature, UnicodeError, ValueError):
            raise BadLink("lien invalide") from None
        return _address(email)

    # Bounce tokens go in the local part of the envelope sender (VERP): only lower-case letters and
    # digits (base32), because a relay may change the case of a local part; a local part holds 64
    # characters at most. The long form carries the address ("a" + address + "-" + MAC); when it does
    # not fit, the short form is "h" + a keyed digest of the address, found again among the subscribers.

    def bounce_token(self, email: str, room: int = 64) -> str:
        """A token of at most `room` characters saying which reader a bounce is about."""
        address = _b32(email.encode())
        long_form = f"a{address}-{_b32(self._mac(self._bounce_keys[0], b'a' + email.encode())[:BOUNCE_MAC])}"
        if len(long_form) <= room:
            return long_form
        return "h" + _b32(self._digest(self._bounce_keys[0], email))

    def read_bounce_token(self, token: str, candidates: Callable[[], Iterable[str]] = lambda: ()) -> str:
        """The address of a bounce token; a short-form token is looked up among `candidates()`
        (the subscribers). BadLink if forged, or if no candidate matches."""
        token = token.strip().lower()
        try:
            if token.startswith("a") and "-" in token:
                address, mac = token[1:].rsplit("-", 1)
                email = _unb32(address).decode()
                signed = b"a" + email.encode()
                if any(hmac.compare_digest(_b32(self._mac(key, signed)[:BOUNCE_MAC]), mac)
                       for key in self._bounce_keys):
                    return _address(email)
            elif token.startswith("h"):
                wanted = _unb32(token[1:])
                for email in candidates():
                    if any(hmac.compare_digest(self._digest(key, email), wanted) for key in self._bounce_keys):
                        return _address(email)
        except (ValueError, UnicodeError):
            pass
        raise BadLink("jeton de retour invalide")

    @staticmethod
    def _mac(key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, hashlib.sha256).digest()

    def _digest(self, key: bytes, email: str) -> bytes:
        # Lower-cased: the store holds one reader per address whatever its case.
        return self._mac(key, b"h" + email.lower().encode())[:BOUNCE_DIGEST]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    if not text.isalnum():
        raise ValueError("not base32")
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def _address(payload: object) -> str:
    if not isinstance(payload, str) or "@" not in payload:
        raise BadLink("lien invalide")
    return payload
