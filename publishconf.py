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
