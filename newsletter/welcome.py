"""The welcome mail, sent once when a reader confirms: what they will receive (NEWSLETTER_WELCOME_TEXT,
written by the author in pelicanconf.py), the From address to add to their contacts, and their signed
one-click unsubscribe link. Templates: theme/templates/service/mail_welcome.{txt,html}.

Built like the confirmation mail, by service_mail.py: rendered once per process, addressed per reader.
It carries List-Unsubscribe and List-Unsubscribe-Post as the newsletter does: it is the list's first mail.
"""
from __future__ import annotations

from email.message import Message
from email.utils import parseaddr

from jinja2 import Environment

from .config import Config
from .links import list_unsubscribe_headers, unsubscribe_url
from .service_mail import ServiceMail
from .signing import Signer

DEFAULT_TEXT = ("Vous recevrez un e-mail à chaque nouveau billet, pas plus : ni publicité, ni relance, "
                "et aucun suivi de votre lecture.")


def what_you_will_receive(config: Config) -> list[str]:
    """NEWSLETTER_WELCOME_TEXT as paragraphs (separated by blank lines)."""
    text = config.settings.get("NEWSLETTER_WELCOME_TEXT") or DEFAULT_TEXT
    if not isinstance(text, str):
        raise ValueError(f"NEWSLETTER_WELCOME_TEXT must be a text, not {text!r}")
    return [" ".join(part.split()) for part in text.strip().split("\n\n") if part.strip()]


class WelcomeMail:
    """The welcome mail of one site, ready to be addressed."""

    def __init__(self, config: Config, signer: Signer, env: Environment):
        self.config, self.signer = config, signer
        address = parseaddr(config.mail_from)[1]
        self.mail = ServiceMail(config, env, "mail_welcome", f"Bienvenue sur {config.site_name}",
                                {"site_name": config.site_name, "public_url": config.public_url,
                                 "what": what_you_will_receive(config), "sender": address})

    def message(self, email: str) -> tuple[Message, str]:
        """The message for `email`, and its unsubscribe link."""
        link = unsubscribe_url(self.config, self.signer, email)
        return self.mail.message(email, link, list_unsubscribe_headers(self.config, self.signer, email)), link

    def wire(self, email: str) -> tuple[bytes, str]:
        """The same mail as the relay gets it (ServiceMail.wire), and its unsubscribe link."""
        link = unsubscribe_url(self.config, self.signer, email)
        return self.mail.wire(email, link, list_unsubscribe_headers(self.config, self.signer, email)), link
