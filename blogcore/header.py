"""The metadata header of a Markdown post, read exactly as Pelican 4.12 reads it.

Pelican's MarkdownReader opens the file as UTF-8 with an optional byte-order mark and
hands it to Python-Markdown's `meta` extension, whose rules are, line by line (tabs
expanded to 4 spaces, lines of spaces taken as blank):

- an optional first line starting with `---` opens a YAML-style fence and is dropped;
- `Key: value`, the key made of letters, digits, `_` and `-`, after at most 3 spaces;
  the key is case-insensitive and may repeat;
- a line indented by 4 spaces or more continues the previous key's value;
- a blank line, or a line starting with `---` or `...`, ends the header (and is dropped);
- any other line also ends it, and is the body's first line.

This module is that reading, once, for everyone who needs a post's header without
Pelican: the content checks (which also want line numbers) and the newsletter (the
Slug of a source, the body of the plain-text mail).
"""
import re
from dataclasses import dataclass, field
from typing import Iterable

# The patterns of markdown.extensions.meta (Python-Markdown 3.x).
META = re.compile(r"^[ ]{0,3}(?P<key>[A-Za-z0-9_-]+):\s*(?P<value>.*)")
META_MORE = re.compile(r"^[ ]{4,}(?P<value>.*)")
BEGIN = re.compile(r"^-{3}(\s.*)?")
END = re.compile(r"^(-{3}|\.{3})(\s.*)?")
TAB_LENGTH = 4


@dataclass
class Entry:
    """One `Key: value` line; `more` holds its continuation lines."""

    line: int  # 1-based
    key: str  # as written
    value: str
    more: list = field(default_factory=list)

    @property
    def name(self) -> str:
        """The key as Pelican names the metadata: lower case."""
        return self.key.lower()


@dataclass
class Header:
    entries: list  # Entry, in file order
    fenced: bool = False  # opened by a `---` line
    end: int = 0  # 1-based number of the line that ended the header (0: the file ended first)
    body_line: int | None = None  # the line that ended the header and is the body's first, if any
    body_text: str = ""

    def get(self, name: str):
        """The first value of a key (case-insensitive), or None."""
        name = name.lower()
        return next((entry.value for entry in self.entries if entry.name == name), None)


def _normalized(line: str) -> str:
    line = line.rstrip("\r\n").expandtabs(TAB_LENGTH)
    return "" if not line.strip(" ") else line


def parse_header(lines: Iterable[str]) -> Header:
    """Read the header from `lines` (an open file works: only the header's lines are read)."""
    header = Header(entries=[])
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = _normalized(raw.lstrip("\ufeff") if number == 1 else raw)
        if number == 1:
            if BEGIN.match(line):
                header.fenced = True
                continue
        if not line.strip() or END.match(line):
            header.end = number
            return header
        match = META.match(line)
        if match:
            header.entries.append(Entry(number, match["key"].strip(), match["value"].strip()))
            continue
        more = META_MORE.match(line)
        if more and header.entries:
            header.entries[-1].more.append(more["value"].strip())
            continue
        header.end = header.body_line = number
        header.body_text = line
        return header
    return header


def read_header(path: str) -> Header:
    """The header of one file (UTF-8, a byte-order mark allowed); UnicodeDecodeError if not UTF-8."""
    with open(path, encoding="utf-8-sig") as source:
        return parse_header(source)


def split_header(text: str) -> tuple[Header, str]:
    """The header and the body of a whole post, as the Markdown converter sees the body."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header = parse_header(lines)
    if header.body_line is not None:
        start = header.body_line - 1
    elif header.end:
        start = header.end
    else:
        start = len(lines)
    return header, "\n".join(lines[start:])
