"""HTML as one line of plain text: feed titles and summaries, mail subjects and previews.

Only ASCII white space is collapsed: str.split() would also drop the no-break spaces
French typography put there on purpose.
"""
import html
import re

TAG = re.compile(r"<[^>]+>")
ASCII_SPACES = re.compile(r"[ \t\n\r\f\v]+")


def plain_text(fragment: str) -> str:
    """HTML as one line of text, entities decoded, no-break spaces kept."""
    return ASCII_SPACES.sub(" ", html.unescape(TAG.sub(" ", fragment or ""))).strip()
