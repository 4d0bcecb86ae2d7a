"""The service's own mails (confirmation, welcome): rendered once per process, addressed per reader.

Only the link, To, Date and Message-ID change from one reader to the next: the templates are rendered
and set in French typography once, with a stand-in for the link, and each message is assembled with the
stdlib's plain MIME classes, whose headers are not parsed again. A signup waits for its confirmation
mail to reach the relay, so this is on the reader's path: 3 ms a mail, not 8.
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

LINK_STAND_IN = "LIENDUSERVICEXQZ"  # letters only: typography leaves it as it is

UTF8_QP = charset.Charset("utf-8")  # quoted-printable bodies survive any relay (and a DKIM signature)
UTF8_QP.body_encoding = charset.QP
UTF8_QP.header_encoding = charset.QP


class ServiceMail:
    """One mail of the site, `template`.txt and .html under theme/templates/service/, ready to be addressed."""

    def __init__(self, config: Config, env: Environment, template: str, subject: str, context: dict):
        self.config = config
        context = {**context, "link": LINK_STAND_IN}
        self.text = fix_text(env.get_template(f"service/{template}.txt").render(context))
        self.html = fix_html(env.get_template(f"service/{template}.html").render(context))
        if LINK_STAND_IN not in self.text or LINK_STAND_IN not in self.html:
            raise ValueError(f"theme/templates/service/{template}.txt and .html must both show {{{{ link }}}}")
        name, address = parseaddr(config.mail_from)
        self.sender = formataddr((name, address), charset="utf-8")
        self.subject = Header(subject, "utf-8").encode()
        self.domain = address.rpartition("@")[2] or None

    def message(self, email: str, link: str, headers: dict[str, str]) -> Message:
        """The mail for `email`, carrying `link` and the extra `headers`."""
        msg = MIMEMultipart("alternative")
        msg["Subject"] = self.subject
        msg["From"] = self.sender
        msg["To"] = email  # ASCII: newsletter.addresses refuses the others
        if self.config.reply_to:
            msg["Reply-To"] = self.config.reply_to
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain=self.domain)
        for name, value in headers.items():
            msg[name] = value
        msg["Content-Language"] = "fr"
        msg.attach(MIMEText(self.text.replace(LINK_STAND_IN, link), "plain", UTF8_QP))
        msg.attach(MIMEText(self.html.replace(LINK_STAND_IN, str(escape(link))), "html", UTF8_QP))
        return msg
