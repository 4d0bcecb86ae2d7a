"""Production entry point: `python -m newsletter.server` (uvicorn + guard) behind the web server that serves output/.

Route /newsletter/inscription, /newsletter/confirmer/ and /newsletter/desinscription/
to it, keep the paths unchanged, and turn off access logs for them (the links carry a
signed address). Behind a proxy, pass --proxy-headers so rate limits see clients.
"""
from .app import create_app
from .config import Config

app = create_app(Config.from_env(), mail_process=True)  # mails built and sent by a child process
