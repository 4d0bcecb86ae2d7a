"""The service's own mails (confirmation, welcome): rendered once per process, addressed per reader.

Only the link, To, Date and Message-ID change from one reader to the next: the templates are rendered
and set in French typography once, with a stand-in for the link. A signup waits for its confirmation
mail to reach the relay, so this is on the reader's path. `message` assembles a Message with the
stdlib's plain MIME classes (tests, previews); `wire`, what the outgoing workers send, goes further:
the whole message is flattened once per process with stand-ins, and each mail only fills them in,
quoted-printable encoding only the line that holds the link (stand_ins.py, shared with mail_message). Building
and flattening a Message took 6 ms of the workers' GIL per mail; `wire` takes a few hundredths of that.
"""
from __future__ import annotations

import secrets
from email import charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from io import BytesIO

from jinja2 import Environment
from markupsafe import escape

from blogcore.typography import fix_html, fix_text

from .config import Config
from .stand_ins import Line, cut, date_now, fill, header_line

LINK_STAND_IN = "LIENDUSERVICEXQZ"  # letters only: typography leaves it as it is
# Stand-ins of the flattened message (`wire`): letters only, none folded or encoded by the generator.
TO_STAND_IN, DATE_STAND_IN, ID_STAND_IN = "DESTINATAIREXQZ", "DATEXQZ", "IDENTIFIANTXQZ"
HEADERS_STAND_IN, TEXT_STAND_IN, HTML_STAND_IN = "EXTRAXQZ", "TEXTEXQZ", "HTMLXQZ"

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
        self._text = Line(self.text, LINK_STAND_IN, lambda link: link)
        self._html = Line(self.html, LINK_STAND_IN, lambda link: str(escape(link)))
        self._wire = self._flattened_once()

    def message(self, email: str, link: str, headers: dict[str, str], boundary: str | None = None) -> Message:
        """The mail for `email`, carrying `link` and the extra `headers`."""
        msg = MIMEMultipart("alternative", boundary=boundary)
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

    def _flattened_once(self) -> list[bytes | str]:
        """The message as wire_bytes flattens it, with stand-ins, cut around them (stand_ins.cut)."""
        msg = self.message(TO_STAND_IN, LINK_STAND_IN, {"X-Xqz": HEADERS_STAND_IN},
                           boundary="=_" + secrets.token_hex(16))  # no QP line can hold "=_"
        msg.replace_header("Date", DATE_STAND_IN)
        msg.replace_header("Message-ID", ID_STAND_IN)
        text, html = msg.get_payload()
        text.set_payload(TEXT_STAND_IN)
        html.set_payload(HTML_STAND_IN)
        buffer = BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
        return cut(buffer.getvalue(), [TO_STAND_IN, DATE_STAND_IN, ID_STAND_IN, HEADERS_STAND_IN, TEXT_STAND_IN,
                                       HTML_STAND_IN], headers={"X-Xqz": HEADERS_STAND_IN})

    def wire(self, email: str, link: str, headers: dict[str, str]) -> bytes:
        """The bytes of message(email, link, headers) as the relay gets them (CRLF, not DKIM-signed)."""
        return fill(self._wire, {
            TO_STAND_IN: email.encode("ascii"),  # newsletter.addresses refuses the others
            DATE_STAND_IN: date_now(),
            ID_STAND_IN: make_msgid(domain=self.domain).encode("ascii"),
            HEADERS_STAND_IN: b"".join(header_line(name, value) for name, value in headers.items()),
            TEXT_STAND_IN: self._text.encoded(link),
            HTML_STAND_IN: self._html.encoded(link),
        })
