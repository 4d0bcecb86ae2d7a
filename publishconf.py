"""Production: pelicanconf plus the public address, which must come from the environment."""
import os
import sys

sys.path.append(os.curdir)
from pelicanconf import *  # noqa: E402,F401,F403

PUBLIC_URL = os.environ.get("SITEURL", "").rstrip("/")
if not PUBLIC_URL.startswith("https://"):
    raise SystemExit("publishconf.py: set SITEURL to the public https:// address of the blog, e.g. SITEURL=https://blog.example.fr")
if not os.environ.get("NEWSLETTER_SECRET"):
    raise SystemExit("publishconf.py: set NEWSLETTER_SECRET (the key that signs newsletter links) before publishing")

# The From of every mail: a real address of a domain the author controls (make check-mail verifies it).
# Not pelicanconf's placeholder: a production send once went out from an .example address.
_from = os.environ.get("NEWSLETTER_FROM", "").strip()
_domain = _from.rpartition("@")[2].strip(" >").rstrip(".").lower()
if "@" not in _from or "." not in _domain:
    raise SystemExit("publishconf.py: set NEWSLETTER_FROM to the From address of the newsletter, on a domain "
                     "you control, e.g. NEWSLETTER_FROM='Mon blog <lettre@exemple.fr>'")
if _domain.rpartition(".")[2] in ("example", "invalid", "localhost", "test", "local") or _domain.endswith(
        (".example.com", ".example.org", ".example.net")) or _domain in ("example.com", "example.org", "example.net"):
    raise SystemExit(f"publishconf.py: NEWSLETTER_FROM uses the domain {_domain}, which no mail can come from "
                     "(reserved for examples and tests): use your own domain")
NEWSLETTER_FROM = _from
