"""Which email addresses the newsletter accepts, and their one stored form.

email-validator checks the syntax (no deliverability lookup: no network on the
request path); the rules below add what a signup form must refuse. Every refusal
is an `InvalidAddress` with a French message naming the field.

Refused domains: domain literals ([192.0.2.1]), single-label names, and names
that can never receive mail from the Internet: the special-use TLDs of RFC 2606,
6761, 6762, 7686, 8375 and 9476 (test, example, invalid, localhost, local, onion,
home.arpa and all of arpa, alt), ICANN's private-use `internal`, the common
private LAN suffixes lan, intranet, corp, home, and the reserved second-level
names example.com/.net/.org. International domains and +tags are accepted; a
local part (before @) with non-ASCII letters is refused: it needs SMTPUTF8, which
many mail servers still refuse, so no newsletter could reach it.

Stored form: the local part as typed (NFC), `@`, the domain lower-cased in its
ASCII (punycode) form, so exämple.fr and xn--exmple-cua.fr are one reader.
"""
from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

FIELD = "adresse e-mail"
MAX_ADDRESS = 254   # RFC 5321 path limit (256) minus the angle brackets
MAX_LOCAL = 64      # RFC 5321 4.5.3.1.1
REFUSED_TLDS = frozenset({"test", "example", "invalid", "localhost", "local", "onion", "arpa", "alt",
                          "internal", "lan", "intranet", "corp", "home", "localdomain"})
REFUSED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# Dot-separated atoms of RFC 5322's atext, @, then lower-case ASCII labels (no IDNA: "--" goes to
# email-validator) and a TLD of letters: most addresses typed into a form.
PLAIN = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                   r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class InvalidAddress(ValueError):
    """Why an address was refused, in French, for the reader. `code` is stable for tests and pages."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def normalize_address(raw: object) -> str:
    """The stored form of one address typed by a reader, or InvalidAddress."""
    if not isinstance(raw, str) or not raw.strip(" \t"):
        raise InvalidAddress("vide", f"Le champ « {FIELD} » est vide : indiquez votre adresse.")
    if CONTROL.search(raw):
        raise InvalidAddress("caracteres", f"Le champ « {FIELD} » contient des caractères interdits "
                                           "(retour à la ligne, caractère nul ou de contrôle).")
    text = raw.strip(" \t")
    if len(text) > MAX_ADDRESS:
        raise InvalidAddress("longueur", f"Le champ « {FIELD} » est trop long : {MAX_ADDRESS} caractères au plus.")
    if text.count("@") > 1 or any(sep in text for sep in (",", ";", " ")):
        raise InvalidAddress("plusieurs", f"Le champ « {FIELD} » doit contenir une seule adresse, sans espace ni virgule.")
    if "@" not in text:
        raise InvalidAddress("syntaxe", f"Le champ « {FIELD} » doit contenir un « @ », "
                                        "comme dans prenom@exemple.fr.")
    if text.rsplit("@", 1)[1].startswith("["):
        raise InvalidAddress("domaine", f"Le champ « {FIELD} » : les adresses IP entre crochets ne sont pas acceptées, "
                                        "indiquez un nom de domaine.")
    typed_domain = text.rsplit("@", 1)[1].lower().rstrip(".")
    if _refused_domain(typed_domain):
        raise InvalidAddress("domaine", f"Le champ « {FIELD} » : le domaine « {typed_domain} » ne peut pas recevoir "
                                        "de courrier depuis Internet.")
    local, domain = _plain(text) or _validated(text)
    if "=?" in local:
        # An RFC 2047 encoded word (=?utf-8?q?…?=): a mail program may decode it in the To: header and show,
        # or answer to, another address than the one that was confirmed.
        raise InvalidAddress("caracteres", f"Le champ « {FIELD} » : la suite « =? » n’est pas acceptée avant « @ » ; "
                                           "indiquez votre adresse telle que votre messagerie l’affiche.")
    if not local.isascii():
        # Such an address only travels over SMTPUTF8, which many mail servers still refuse: the
        # newsletter could not reach it. The domain may be international; it goes as punycode.
        raise InvalidAddress("caracteres", f"Le champ « {FIELD} » : les lettres accentuées ou non latines ne sont pas "
                                           "acceptées avant « @ » ; indiquez une adresse sans accents avant « @ ».")
    if len(local.encode("utf-8")) > MAX_LOCAL:
        raise InvalidAddress("longueur", f"Le champ « {FIELD} » : la partie avant « @ » est trop longue "
                                         f"({MAX_LOCAL} octets au plus).")
    stored = f"{local}@{domain}"
    if len(stored.encode("utf-8")) > MAX_ADDRESS:
        raise InvalidAddress("longueur", f"Le champ « {FIELD} » est trop long : {MAX_ADDRESS} caractères au plus.")
    return stored


def _plain(text: str) -> tuple[str, str] | None:
    """(local part, domain) of an address of the usual shape, which email-validator would take as it is
    written (its domain lower-cased); None for any other, which goes to email-validator. Its checks,
    character by character in Python, were a tenth of a signup's time; tests/test_addresses.py proves
    the two agree on generated addresses of this shape."""
    local, _, domain = text.rpartition("@")
    if not domain.isascii():  # (lower() turns a few others into ASCII letters: the Kelvin sign into k)
        return None
    domain = domain.lower()
    if len(local) > MAX_LOCAL or "--" in domain or not PLAIN.fullmatch(local + "@" + domain):
        return None
    return local, domain


def _validated(text: str) -> tuple[str, str]:
    """(local part, ASCII domain) as email-validator reads the address, or InvalidAddress."""
    try:
        info = validate_email(text, check_deliverability=False, allow_quoted_local=False,
                              allow_domain_literal=False, allow_display_name=False, allow_empty_local=False,
                              globally_deliverable=True)
    except EmailNotValidError as exc:
        raise InvalidAddress("syntaxe", f"Le champ « {FIELD} » n’est pas une adresse valide ({_french(str(exc))}).") from None
    domain = info.ascii_domain.lower()
    if _refused_domain(domain):
        raise InvalidAddress("domaine", f"Le champ « {FIELD} » : le domaine « {info.domain} » ne peut pas recevoir "
                                        "de courrier depuis Internet.")
    return info.local_part, domain


def _refused_domain(domain: str) -> bool:
    """Single-label names and the local-only names listed in the module docstring."""
    labels = domain.split(".")
    return (len(labels) < 2 or labels[-1] in REFUSED_TLDS
            or any(domain == d or domain.endswith("." + d) for d in REFUSED_DOMAINS))


def _french(reason: str) -> str:
    """email-validator explains in English; keep its precise reason, but say the usual ones in French."""
    known = {
        "There must be something after the @-sign.": "il manque le domaine après « @ »",
        "There must be something before the @-sign.": "il manque le nom avant « @ »",
        "An email address cannot end with a period.": "l’adresse ne peut pas finir par un point",
        "An email address cannot start with a period.": "l’adresse ne peut pas commencer par un point",
        "An email address cannot have two periods in a row.": "deux points de suite",
        "The part after the @-sign is not valid. It should have a period.": "le domaine doit contenir un point",
    }
    if reason in known:
        return known[reason]
    if "character" in reason:
        return "caractère non autorisé"
    if "hyphen" in reason:
        return "un tiret mal placé dans le domaine"
    if "period" in reason or "dot" in reason:
        return "un point mal placé"
    if "too long" in reason:
        return "trop long"
    return "vérifiez l’orthographe, par exemple prenom@exemple.fr"
