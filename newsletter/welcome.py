"""The welcome mail, sent once when a reader confirms: what they will receive (NEWSLETTER_WELCOME_TEXT,
written by the author in pelicanconf.py), the From address to add to their contacts, and their signed
one-click unsubscribe link. Templates: theme/templates/service/mail_welcome.{txt,html}.

Built like the confirmation mail, by service_mail.py: rendered once per process, addressed per reader.
It carries List-Unsubscribe and List-Unsubscribe-Post as the newsletter does: it is the list's first mail.
"""
from __future__ import annotations

from collections.abc import Sequence
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


def joined(names: Sequence[str]) -> str:
    """« tout le blog et la rubrique « X » »: the lists a reader is on, as one French phrase."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]


class WelcomeMail:
    """The welcome mail of one site, ready to be addressed: rendered once per set of lists named."""

    def __init__(self, config: Config, signer: Signer, env: Environment):
        self.config, self.signer, self.env = config, signer, env
        self.context = {"site_name": config.site_name, "public_url": config.public_url,
                        "what": what_you_will_receive(config), "sender": parseaddr(config.mail_from)[1]}
        self.mails: dict[tuple[str, ...], ServiceMail] = {}  # a few: the combinations readers chose

    def for_lists(self, names: Sequence[str]) -> ServiceMail:
        """The mail naming the lists `names` (none: no list named), rendered at its first use."""
        key = tuple(names)
        mail = self.mails.get(key)
        if mail is None:
            if len(self.mails) >= 64:  # combinations are few; a bound all the same
                self.mails.clear()
            mail = self.mails[key] = ServiceMail(self.config, self.env, "mail_welcome",
                                                 f"Bienvenue sur {self.config.site_name}",
                                                 {**self.context, "lists": joined(key) if key else ""})
        return mail

    def message(self, email: str, names: Sequence[str] = ()) -> tuple[Message, str]:
        """The message for `email`, naming the lists `names`, and its unsubscribe link."""
        link = unsubscribe_url(self.config, self.signer, email)
        return self.for_lists(names).message(email, link, list_unsubscribe_headers(self.config, self.signer, email)), link

    def wire(self, email: str, names: Sequence[str] = ()) -> tuple[bytes, str]:
        """The same mail as the relay gets it (ServiceMail.wire), and its unsubscribe link."""
        link = unsubscribe_url(self.config, self.signer, email)
        return self.for_lists(names).wire(email, link, list_unsubscribe_headers(self.config, self.signer, email)), link
