"""The service's own mails (confirmation, welcome): rendered once per process, addressed per reader.

Only the link, To, Date and Message-ID change from one reader to the next: the templates are rendered
and set in French typography once, with a stand-in for the link. A signup waits for its confirmation
mail to reach the relay, so this is on the reader's path. `message` assembles a Message with the
stdlib's plain MIME classes (tests, previews); `wire`, what the outgoing workers send, goes further:
the whole message is flattened once per process with stand-ins, and each mail only fills them in,
quoted-printable encoding only the line that holds the link (as mail_message does for posts). Building
and flattening a Message took 6 ms of the workers' GIL per mail; `wire` takes a few hundredths of that.
"""
from __future__ import annotations

import binascii
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
        self._text = _Line(self.text, lambda link: link)
        self._html = _Line(self.html, lambda link: str(escape(link)))
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

    def _flattened_once(self) -> list[bytes]:
        """The message as wire_bytes flattens it, with stand-ins, cut around them: [bytes, stand-in, …]."""
        msg = self.message(TO_STAND_IN, LINK_STAND_IN, {"X-Xqz": HEADERS_STAND_IN},
                           boundary="=_" + secrets.token_hex(16))  # no QP line can hold "=_"
        msg.replace_header("Date", DATE_STAND_IN)
        msg.replace_header("Message-ID", ID_STAND_IN)
        text, html = msg.get_payload()
        text.set_payload(TEXT_STAND_IN)
        html.set_payload(HTML_STAND_IN)
        buffer = BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
        data = buffer.getvalue().replace(b"X-Xqz: " + HEADERS_STAND_IN.encode() + b"\r\n", HEADERS_STAND_IN.encode())
        pieces: list[bytes] = []
        for name in (TO_STAND_IN, DATE_STAND_IN, ID_STAND_IN, HEADERS_STAND_IN, TEXT_STAND_IN, HTML_STAND_IN):
            before, found, data = data.partition(name.encode())
            if not found or name.encode() in data:
                raise ValueError(f"{name} must appear once in the flattened mail")
            pieces += [before, name]
        return pieces + [data]

    def wire(self, email: str, link: str, headers: dict[str, str]) -> bytes:
        """The bytes of message(email, link, headers) as the relay gets them (CRLF, not DKIM-signed)."""
        values = {
            TO_STAND_IN: email.encode("ascii"),  # newsletter.addresses refuses the others
            DATE_STAND_IN: formatdate(localtime=True).encode("ascii"),
            ID_STAND_IN: make_msgid(domain=self.domain).encode("ascii"),
            HEADERS_STAND_IN: b"".join(_header_line(name, value) for name, value in headers.items()),
            TEXT_STAND_IN: self._text.encoded(link),
            HTML_STAND_IN: self._html.encoded(link),
        }
        return b"".join(values[piece] if isinstance(piece, str) else piece for piece in self._wire)


def _qp(text: str) -> bytes:
    """Quoted-printable, CRLF line ends (binascii: C speed)."""
    return binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


class _Line:
    """A body encoded once around the lines that hold the link; those lines are encoded per reader."""

    def __init__(self, body: str, escape):
        self.pieces: list[bytes | str] = []  # encoded bytes, and the lines (str) that hold the link
        done = 0
        while (at := body.find(LINK_STAND_IN, done)) >= 0:
            start = body.rfind("\n", 0, at) + 1
            end = body.find("\n", at)
            end = len(body) if end < 0 else end + 1
            self.pieces += [_qp(body[done:start]), body[start:end]]
            done = end
        self.pieces.append(_qp(body[done:]))
        self.escape = escape

    def encoded(self, link: str) -> bytes:
        link = self.escape(link)
        return b"".join(_qp(piece.replace(LINK_STAND_IN, link)) if isinstance(piece, str) else piece
                        for piece in self.pieces)


def _header_line(name: str, value: str) -> bytes:
    """`Name: value` CRLF, ASCII, folded at spaces to 78 characters where it can be."""
    words = f"{name}: {value}".split(" ")
    lines, line = [], words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) > 78:
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    return ("\r\n".join(lines + [line]) + "\r\n").encode("ascii")
