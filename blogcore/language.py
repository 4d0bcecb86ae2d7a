"""Which texts are French: French rules (typography, dates) apply to French text only.

A post's language is its `Lang:` metadata, else the site's DEFAULT_LANG, as Pelican
decides it. Language tags come written many ways ("fr", "FR", "fr-FR", "fr_CA"): only
the primary subtag counts.
"""

DEFAULT_LANG = "fr"  # the blog's language when a setting or a post says nothing


def primary(lang) -> str:
    """'fr' for 'fr_CA', 'en' for 'en-GB'; the site's default for an empty value."""
    text = str(lang or DEFAULT_LANG).strip().lower().replace("_", "-")
    return text.split("-", 1)[0] or DEFAULT_LANG


def is_french(lang) -> bool:
    """True for 'fr', 'fr-FR', 'fr_CA'...; an empty value is the blog's default, French."""
    return primary(lang) == "fr"


def lang_of(item, settings=None) -> str:
    """The language of a post or page (its `lang`), else DEFAULT_LANG of the settings, else French."""
    lang = getattr(item, "lang", None)
    if not lang:
        lang = (settings or {}).get("DEFAULT_LANG") or DEFAULT_LANG
    return str(lang)
