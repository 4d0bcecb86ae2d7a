"""The theme's Jinja templates, rendered outside Pelican: the service's pages
(theme/templates/service/*.html extend the site's base.html) and the
confirmation mail, so both look like the site and are edited in one place.
"""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from blogcore.typography import fix_html

from .config import ROOT, Config

ADDRESS_STAND_IN = "ADRESSEDULECTEURXQZ"  # letters only: typography leaves it as it is


def theme_environment(config: Config) -> Environment:
    """base.html renders with SITENAME, SITEURL, NEWSLETTER_URL, PUBLIC_URL (and every other setting)."""
    theme = Path(config.settings.get("THEME", "theme"))
    if not theme.is_absolute():
        theme = ROOT / theme
    env = Environment(
        loader=FileSystemLoader(theme / "templates"),
        autoescape=select_autoescape(["html"], default_for_string=False),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.globals.update(config.settings)
    env.globals.update(
        SITENAME=config.site_name,
        SITEURL=config.settings.get("SITEURL", ""),
        NEWSLETTER_URL=config.settings.get("NEWSLETTER_URL", config.newsletter_path),
        PUBLIC_URL=config.public_url,
    )
    return env


def mail_environment(config: Config) -> Environment:
    """Same templates, stricter: a mail with a missing value is a bug, not a blank."""
    env = theme_environment(config)
    return env.overlay(undefined=StrictUndefined)


class AddressPages:
    """The pages that show a reader their address (confirm, unsubscribe), set in French typography once.

    Typography over the whole page was 44 % of a confirmation page's time: each page is rendered once
    with a stand-in for the address, and each request only puts the escaped address in its place. The
    address is shown exactly as it is written, never « corrected » by typography (« a »@b.fr keeps its
    plain spaces). Escaped as the whole-page typography left it in text (&, <, > only: quotes are plain
    characters there), fully inside a tag's attribute.
    """

    def __init__(self, env: Environment):
        self.env = env
        self._pages: dict[tuple, tuple[str, str, bool]] = {}  # a handful of (template, fixed texts) keys

    def render(self, template: str, email: str, **context) -> str:
        """The page for `email`; `context` holds the page's other values, each hashable (tuples, not lists)."""
        key = (template, *sorted(context.items()))
        page = self._pages.get(key)
        if page is None:
            html = fix_html(self.env.get_template(template).render({**context, "email": ADDRESS_STAND_IN}))
            before, stand_in, after = html.partition(ADDRESS_STAND_IN)
            if not stand_in or ADDRESS_STAND_IN in after:
                raise ValueError(f"theme/templates/{template} must show {{{{ email }}}} exactly once")
            if len(self._pages) >= 256:  # lists chosen, messages: a few combinations; a bound all the same
                self._pages.clear()
            page = self._pages[key] = (before, after, before.rfind("<") > before.rfind(">"))
        before, after, in_tag = page
        if in_tag:
            return before + str(escape(email)) + after
        return before + email.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + after
