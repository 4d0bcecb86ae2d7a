"""The welcome mail, sent once when a reader confirms: what they will receive (NEWSLETTER_WELCOME_TEXT,
written by the author in pelicanconf.py), the From address to add to their contacts, and their signed
one-click unsubscribe link. Templates: theme/templates/service/mail_welcome.{txt,html}.

Built like the confirmation mail (confirmation.py): rendered and set in French typography once per
process with a stand-in for the link; per reader only the link, To, Date and Message-ID change.
It carries List-Unsubscribe and List-Unsubscribe-Post as the newsletter does: it is the list's first mail.
"""
from __future__ import annotations

from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from jinja2 import Environment
from markupsafe import escape

from blogcore.typography import fix_html, fix_text

from .config import Config
from .confirmation import UTF8_QP
from .links import list_unsubscribe_headers, unsubscribe_url
from .signing import Signer

LINK_STAND_IN = "LIENDEDESINSCRIPTIONXQZ"  # letters only: typography leaves it as it is
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
        name, address = parseaddr(config.mail_from)
        context = {"link": LINK_STAND_IN, "site_name": config.site_name, "public_url": config.public_url,
                   "what": what_you_will_receive(config), "sender": address}
        self.text = fix_text(env.get_template("service/mail_welcome.txt").render(context))
        self.html = fix_html(env.get_template("service/mail_welcome.html").render(context))
        if LINK_STAND_IN not in self.text or LINK_STAND_IN not in self.html:
            raise ValueError("theme/templates/service/mail_welcome.txt and .html must both show {{ link }}")
        self.sender = formataddr((name, address), charset="utf-8")
        self.subject = Header(f"Bienvenue sur {config.site_name}", "utf-8").encode()
        self.domain = address.rpartition("@")[2] or None

    def message(self, email: str) -> tuple[Message, str]:
        """The message for `email`, and its unsubscribe link."""
        link = unsubscribe_url(self.config, self.signer, email)
        msg = MIMEMultipart("alternative")
        msg["Subject"] = self.subject
        msg["From"] = self.sender
        msg["To"] = email  # ASCII: newsletter.addresses refuses the others
        if self.config.reply_to:
            msg["Reply-To"] = self.config.reply_to
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=self.domain)
        msg["Content-Language"] = "fr"
        for name, value in list_unsubscribe_headers(self.config, self.signer, email).items():
            msg[name] = value
        msg.attach(MIMEText(self.text.replace(LINK_STAND_IN, link), "plain", UTF8_QP))
        msg.attach(MIMEText(self.html.replace(LINK_STAND_IN, str(escape(link))), "html", UTF8_QP))
        return msg, link
