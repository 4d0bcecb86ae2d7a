"""The theme's Jinja templates, rendered outside Pelican: the service's pages
(theme/templates/service/*.html extend the site's base.html) and the
confirmation mail, so both look like the site and are edited in one place.
"""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .config import ROOT, Config


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
