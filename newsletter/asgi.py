"""Production entry point: `python -m newsletter.server` (uvicorn + guard) behind the web server that serves output/.

Route /newsletter/inscription, /newsletter/confirmer/ and /newsletter/desinscription/
to it, keep the paths unchanged, and turn off access logs for them (the links carry a
signed address). Behind a proxy, pass --proxy-headers so rate limits see clients.
"""
import os

from .app import create_app
from .config import Config


def mail_process_wanted(choice: str) -> bool:
    """`python -m newsletter.server --mail-process auto|yes|no`: auto is yes with more than one CPU to run
    on; on one, a second process would only add context switches to every mail."""
    if choice == "auto":
        return len(os.sched_getaffinity(0)) > 1
    return choice == "yes"


app = create_app(Config.from_env(), mail_process=mail_process_wanted(os.environ.get("NEWSLETTER_MAIL_PROCESS", "auto")),
                 instance=os.environ.get("NEWSLETTER_INSTANCE"))
