"""The confirmation mail: French, plain text plus simple HTML, one signed link,
no image, no tracking. Templates: theme/templates/service/mail_confirm.{txt,html}.

Only the link, To, Date and Message-ID change from one reader to the next: the templates are
rendered and set in French typography once per process (with a stand-in for the link), and the
message is assembled with the stdlib's plain MIME classes, whose headers are not parsed again.
A signup waits for its mail to reach the relay, so this is on the reader's path: 3 ms, not 8.
"""
from __future__ import annotations

from email import charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from jinja2 import Environment
from markupsafe import escape

from blogcore.typography import fix_html, fix_text

from .config import Config
from .links import confirm_url
from .signing import CONFIRM_MAX_AGE, Signer

LINK_STAND_IN = "LIENDECONFIRMATIONXQZ"  # letters only: typography leaves it as it is

UTF8_QP = charset.Charset("utf-8")  # quoted-printable bodies survive any relay (and a DKIM signature)
UTF8_QP.body_encoding = charset.QP
UTF8_QP.header_encoding = charset.QP


def subject(config: Config) -> str:
    return f"Confirmez votre inscription à {config.site_name}"


class ConfirmationMail:
    """The confirmation mail of one site, ready to be addressed."""

    def __init__(self, config: Config, signer: Signer, env: Environment):
        self.config, self.signer = config, signer
        context = {"link": LINK_STAND_IN, "site_name": config.site_name, "public_url": config.public_url,
                   "hours": CONFIRM_MAX_AGE // 3600}
        self.text = fix_text(env.get_template("service/mail_confirm.txt").render(context))
        self.html = fix_html(env.get_template("service/mail_confirm.html").render(context))
        if LINK_STAND_IN not in self.text or LINK_STAND_IN not in self.html:
            raise ValueError("theme/templates/service/mail_confirm.txt and .html must both show {{ link }}")
        name, address = parseaddr(config.mail_from)
        self.sender = formataddr((name, address), charset="utf-8")
        self.subject = Header(subject(config), "utf-8").encode()
        self.domain = address.rpartition("@")[2] or None

    def message(self, email: str) -> tuple[Message, str]:
        """The message for `email`, and the link it carries (the dev server prints it)."""
        link = confirm_url(self.config, self.signer, email)
        msg = MIMEMultipart("alternative")
        msg["Subject"] = self.subject
        msg["From"] = self.sender
        msg["To"] = email  # ASCII: newsletter.addresses refuses the others
        if self.config.reply_to:
            msg["Reply-To"] = self.config.reply_to
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=self.domain)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
        msg["Content-Language"] = "fr"
        msg.attach(MIMEText(self.text.replace(LINK_STAND_IN, link), "plain", UTF8_QP))
        msg.attach(MIMEText(self.html.replace(LINK_STAND_IN, str(escape(link))), "html", UTF8_QP))
        return msg, link


def confirmation_message(config: Config, signer: Signer, env: Environment, email: str) -> tuple[Message, str]:
    """One message, for a caller that sends one (the service keeps a ConfirmationMail)."""
    return ConfirmationMail(config, signer, env).message(email)
