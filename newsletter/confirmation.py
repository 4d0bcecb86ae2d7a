"""The confirmation mail: French, plain text plus simple HTML, one signed link,
no image, no tracking. Templates: theme/templates/service/mail_confirm.{txt,html}.
Rendered once per process and addressed per reader (service_mail.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from email.message import Message

from jinja2 import Environment

from .config import Config
from .links import confirm_url
from .service_mail import ServiceMail
from .signing import CONFIRM_MAX_AGE, Signer
from .store import WHOLE_BLOG


HEADERS = {"Auto-Submitted": "auto-generated"}  # RFC 3834: no vacation replies to this.


def subject(config: Config) -> str:
    return f"Confirmez votre inscription à {config.site_name}"


class ConfirmationMail:
    """The confirmation mail of one site, ready to be addressed."""

    def __init__(self, config: Config, signer: Signer, env: Environment):
        self.config, self.signer = config, signer
        self.mail = ServiceMail(config, env, "mail_confirm", subject(config),
                                {"site_name": config.site_name, "public_url": config.public_url,
                                 "hours": CONFIRM_MAX_AGE // 3600})

    def message(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> tuple[Message, str]:
        """The message for `email` joining `lists`, and the link it carries (the dev server prints it)."""
        link = confirm_url(self.config, self.signer, email, lists)
        return self.mail.message(email, link, HEADERS), link

    def wire(self, email: str, lists: Sequence[str] = (WHOLE_BLOG,)) -> tuple[bytes, str]:
        """The same mail as the relay gets it (ServiceMail.wire), and its link."""
        link = confirm_url(self.config, self.signer, email, lists)
        return self.mail.wire(email, link, HEADERS), link
