"""DKIM signing (RFC 6376) of the exact bytes a mailer hands over, with dkimpy.

One place signs every mail the product sends: the mailer calls `DkimKey.sign` on the
flattened message right before it leaves (SMTP or outbox). The signing domain (d=) is
the From address's domain, so DMARC aligns with it. Relaxed/relaxed canonicalization
survives relays that refold headers or re-wrap whitespace; only the headers that say
who, what and how are signed (those present, From twice so none can be added), so a
relay that adds Received, Return-Path or X-* headers leaves the signature valid.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from email.utils import getaddresses

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

# The order they are signed in; each is signed only when the message has it.
SIGNED = (b"from", b"to", b"cc", b"reply-to", b"subject", b"date", b"message-id", b"mime-version",
          b"content-type", b"list-unsubscribe", b"list-unsubscribe-post", b"list-id")
OVERSIGNED = (b"from",)  # signed once more than present: a second From added later breaks the signature
SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
MIN_BITS = 1024


class DkimKeyError(ValueError):
    """The DKIM key or selector can't be used; the message names the variable."""


@dataclass(frozen=True)
class DkimKey:
    """A selector and its RSA private key (PEM), checked once at start."""

    selector: str
    pem: bytes = field(repr=False)

    @classmethod
    def load(cls, selector: str, pem: bytes, source: str) -> "DkimKey":
        """Check the selector and the key now, so a bad key stops the start, not a send. `source` names
        where the key came from (DKIM_KEY_FILE=… or DKIM_KEY) for the error message."""
        if not SELECTOR.match(selector):
            raise DkimKeyError(f"DKIM_SELECTOR : {selector!r} n’est pas un sélecteur DNS valide "
                               "(lettres, chiffres, tirets, points ; par exemple : lettre2026)")
        pem = pem.strip() + b"\n"
        if not pem.startswith(b"-----BEGIN"):
            raise DkimKeyError(f"{source} : ce n’est pas une clé privée PEM (-----BEGIN PRIVATE KEY----- ou "
                               "-----BEGIN RSA PRIVATE KEY-----)")
        try:
            key = parse_pem_private_key(pem)
        except (UnparsableKeyError, ValueError, IndexError, TypeError) as exc:
            raise DkimKeyError(f"{source} : clé privée RSA illisible ({exc.__class__.__name__}) ; "
                               "une clé RSA au format PEM est attendue (openssl genrsa 2048)") from None
        if key["modulus"].bit_length() < MIN_BITS:
            raise DkimKeyError(f"{source} : clé RSA de {key['modulus'].bit_length()} bits ; "
                               f"les messageries refusent moins de {MIN_BITS} bits (2048 conseillés)")
        return cls(selector, pem)

    def public_key_b64(self) -> str:
        """The p= value to publish: the SubjectPublicKeyInfo (DER) of the key, base64."""
        key = parse_pem_private_key(self.pem)
        return base64.b64encode(_spki(key["modulus"], key["publicExponent"])).decode("ascii")

    def dns_record(self, domain: str) -> str:
        """The TXT record to publish, as one line an author can paste."""
        return f'{self.selector}._domainkey.{domain} TXT "v=DKIM1; k=rsa; p={self.public_key_b64()}"'

    def sign(self, data: bytes) -> bytes:
        """`data` (a whole message, CRLF) with a DKIM-Signature header in front."""
        headers = _headers(data)
        domain = _from_domain(headers)
        present = [name for name in SIGNED if name in headers]
        include = present + [name for name in OVERSIGNED if name in headers]
        signature = dkim.sign(data, self.selector.encode("ascii"), domain.encode("ascii"), self.pem,
                              canonicalize=(b"relaxed", b"relaxed"), include_headers=include,
                              linesep=b"\r\n")
        return signature + data


def _headers(data: bytes) -> dict[bytes, bytes]:
    """Header names (lower case) → first value, unfolded; enough to pick what to sign."""
    head = data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    found: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            found.setdefault(name.strip().lower(), value.strip())
    return found


def _from_domain(headers: dict[bytes, bytes]) -> str:
    """The d= domain: From's, in IDNA (a relay compares it in ASCII)."""
    addresses = getaddresses([headers.get(b"from", b"").decode("ascii", "replace")])
    address = addresses[0][1] if addresses else ""
    domain = address.rpartition("@")[2].strip().rstrip(".")
    if not domain:
        raise DkimKeyError("DKIM : le message n’a pas d’adresse From avec un domaine (NEWSLETTER_FROM)")
    return domain.encode("idna").decode("ascii").lower()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_int(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")  # a leading zero byte keeps it positive
    return _der(0x02, body)


def _spki(modulus: int, exponent: int) -> bytes:
    """SubjectPublicKeyInfo for rsaEncryption, the form DKIM's p= carries (RFC 6376 §3.6.1)."""
    rsa_oid = bytes.fromhex("06092a864886f70d0101010500")  # OID 1.2.840.113549.1.1.1, NULL
    rsa_public = _der(0x30, _der_int(modulus) + _der_int(exponent))
    return _der(0x30, _der(0x30, rsa_oid) + _der(0x03, b"\x00" + rsa_public))
