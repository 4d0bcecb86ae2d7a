"""The confirmation mail: French, plain text plus simple HTML, one signed link,
no image, no tracking. Templates: theme/templates/service/mail_confirm.{txt,html}.
"""
from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from jinja2 import Environment

from blogcore.typography import fix_html, fix_text

from .config import Config
from .links import confirm_url
from .signing import CONFIRM_MAX_AGE, Signer


def subject(config: Config) -> str:
    return f"Confirmez votre inscription à {config.site_name}"


def confirmation_message(config: Config, signer: Signer, env: Environment, email: str) -> tuple[EmailMessage, str]:
    """The message for `email`, and the link it carries (the dev server prints it)."""
    link = confirm_url(config, signer, email)
    context = {"link": link, "site_name": config.site_name, "public_url": config.public_url,
               "hours": CONFIRM_MAX_AGE // 3600}
    msg = EmailMessage(policy=policy.SMTP)  # addresses are ASCII: newsletter.addresses refuses the others
    msg["Subject"] = subject(config)
    msg["From"] = config.mail_from
    msg["To"] = email
    if config.reply_to:
        msg["Reply-To"] = config.reply_to
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=parseaddr(config.mail_from)[1].rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    msg["Content-Language"] = "fr"
    msg.set_content(fix_text(env.get_template("service/mail_confirm.txt").render(context)))
    msg.add_alternative(fix_html(env.get_template("service/mail_confirm.html").render(context)), subtype="html")
    return msg, link
