"""Read a WordPress export (WXR) into plain records, or refuse it with the line it failed on.

A WXR file is RSS 2.0 with WordPress's namespaces: `wp:` (post ids, dates, statuses, terms),
`content:encoded` (the body), `excerpt:encoded` and `dc:creator`. Exports 1.0 to 1.2, from
WordPress or WordPress.com, differ only by the namespace address (http or https,
/export/1.x/), so elements are known by prefix, whatever the address.

The file is untrusted input. defusedxml parses it: a DTD may be there, but an entity
declaration is refused (no entity-expansion bomb, no external entity, so no file or
network read). The whole file is read before anything is written: a malformed file is
refused with its line and column, and the import writes nothing.

Leading blank lines before `<?xml` are tolerated: a WordPress theme or plugin that prints a
newline before the export is a classic cause of "XML declaration not at start"; line
numbers in messages still count them.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote
from xml.etree.ElementTree import ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

# Namespace addresses to the prefixes used below (RSS's own elements have none).
NAMESPACES = (
    (re.compile(r"https?://wordpress\.org/export/\d+\.\d+/excerpt/?$"), "excerpt"),
    (re.compile(r"https?://wordpress\.org/export/\d+\.\d+/?$"), "wp"),
    (re.compile(r"http://purl\.org/rss/1\.0/modules/content/?$"), "content"),
    (re.compile(r"http://purl\.org/dc/elements/1\.1/?$"), "dc"),
)
NO_DATE = "0000-00-00 00:00:00"


class ExportError(Exception):
    """The export cannot be read; the message names the file and the line."""


@dataclass
class Term:
    """A category or a tag: its name, its slug (WordPress's nicename), its parent's slug (categories)."""

    name: str
    slug: str
    parent: str = ""
    id: int = 0


@dataclass
class Item:
    """One <item>: a post, a page, an attachment, a menu item... as the export has it."""

    line: int
    id: int
    type: str
    status: str
    title: str
    link: str
    slug: str
    date: datetime | None
    modified: datetime | None
    author: str
    content: str
    excerpt: str
    parent: int = 0
    order: int = 0
    password: str = ""
    attachment_url: str = ""
    categories: list = field(default_factory=list)  # Term, in the export's order
    tags: list = field(default_factory=list)  # Term
    meta: dict = field(default_factory=dict)  # wp:postmeta key -> value (the last one wins)
    comments: int = 0


@dataclass
class Export:
    """The channel: the old site's addresses and language, its terms, its authors, its items in file order."""

    title: str
    link: str
    blog_url: str
    language: str
    authors: dict  # login, lower-cased -> display name
    categories: dict  # slug -> Term
    tags: dict  # slug -> Term
    items: list


class _LineTreeBuilder:
    """ElementTree's TreeBuilder, naming elements by prefix and noting the line each <item> starts on."""

    def __init__(self, offset: int):
        self.builder = TreeBuilder()
        self.parser = None  # the expat parser, set once the XMLParser exists
        self.offset = offset
        self.item_lines = []
        self.names = {}

    def _name(self, tag: str) -> str:
        if tag not in self.names:
            name = tag
            if tag.startswith("{"):
                uri, _, local = tag[1:].partition("}")
                prefix = next((p for pattern, p in NAMESPACES if pattern.match(uri)), None)
                name = f"{prefix}:{local}" if prefix else local
            self.names[tag] = name
        return self.names[tag]

    def start(self, tag, attrs):
        name = self._name(tag)
        if name == "item":
            self.item_lines.append(self.parser.CurrentLineNumber + self.offset)
        return self.builder.start(name, {self._name(k): v for k, v in attrs.items()})

    def end(self, tag):
        return self.builder.end(self._name(tag))

    def data(self, text):
        self.builder.data(text)

    def close(self):
        return self.builder.close()


def parse_bytes(data: bytes, name: str) -> Export:
    """The export in `data`; ExportError naming `name` and the line when it is not a readable WXR file."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    stripped = data.lstrip(b" \t\r\n")
    offset = data[: len(data) - len(stripped)].count(b"\n")
    builder = _LineTreeBuilder(offset)
    parser = DefusedXMLParser(target=builder, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    builder.parser = parser.parser
    try:
        parser.feed(stripped)
        root = parser.close()
    except ParseError as error:
        line, column = error.position
        reason = re.sub(r": line \d+, column \d+$", "", str(error))
        raise ExportError(f"{name}:{line + offset}: malformed XML ({reason}, column {column + 1})") from None
    except DefusedXmlException as error:
        what = f"entity {error.name!r}" if getattr(error, "name", None) else type(error).__name__
        raise ExportError(f"{name}:{parser.parser.CurrentLineNumber + offset}: refused: the file declares {what} "
                          "(a WordPress export declares none; entities could expand without end)") from None
    return _export(root, builder.item_lines, name)


def read(path) -> Export:
    """The export in the file at `path`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ExportError(f"{path}: cannot read the export ({error.strerror})") from None
    return parse_bytes(data, str(path))


def _text(element, name: str, default: str = "") -> str:
    """The text of the first child called `name` (prefix:local), or default."""
    for child in element:
        if child.tag == name:
            return child.text or ""
    return default


def _date(value: str, where: str, what: str) -> datetime | None:
    value = (value or "").strip()
    if not value or value == NO_DATE:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ExportError(f"{where}: {what} {value!r} is not a date (expected YYYY-MM-DD HH:MM:SS)") from None


def _int(value: str, where: str, what: str, default=None) -> int:
    value = (value or "").strip()
    if not value and default is not None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ExportError(f"{where}: {what} {value!r} is not a number") from None


def _item(element, line: int, name: str, authors: dict) -> Item:
    where = f"{name}:{line}"
    post_id = _text(element, "wp:post_id", None)
    post_type = _text(element, "wp:post_type", None)
    if post_id is None or post_type is None:
        raise ExportError(f"{where}: <item> without wp:post_id or wp:post_type: not a WordPress export item")
    item = Item(
        line=line,
        id=_int(post_id, where, "wp:post_id"),
        type=post_type.strip(),
        status=_text(element, "wp:status").strip(),
        title=_text(element, "title"),
        link=_text(element, "link").strip(),
        slug=unquote(_text(element, "wp:post_name").strip()),
        date=_date(_text(element, "wp:post_date"), where, "wp:post_date"),
        modified=_date(_text(element, "wp:post_modified"), where, "wp:post_modified"),
        author="",
        content=_text(element, "content:encoded"),
        excerpt=_text(element, "excerpt:encoded"),
        parent=_int(_text(element, "wp:post_parent"), where, "wp:post_parent", default=0),
        order=_int(_text(element, "wp:menu_order"), where, "wp:menu_order", default=0),
        password=_text(element, "wp:post_password").strip(),
        attachment_url=_text(element, "wp:attachment_url").strip(),
    )
    login = _text(element, "dc:creator").strip()
    item.author = authors.get(login.lower(), login)  # dc:creator's case may differ from the author's login
    for child in element:
        if child.tag == "category":
            term = Term(name=(child.text or "").strip(), slug=unquote(child.get("nicename", "")).strip())
            if child.get("domain") == "category":
                item.categories.append(term)
            elif child.get("domain") == "post_tag":
                item.tags.append(term)
        elif child.tag == "wp:postmeta":
            item.meta[_text(child, "wp:meta_key")] = _text(child, "wp:meta_value")
        elif child.tag == "wp:comment":
            item.comments += 1
    return item


def _export(root, item_lines: list, name: str) -> Export:
    channel = root.find("channel") if root.tag == "rss" else None
    if channel is None or _text(channel, "wp:wxr_version", None) is None:
        raise ExportError(f"{name}:1: not a WordPress export (no <rss><channel> with wp:wxr_version); "
                          "export it from WordPress with Tools > Export")
    authors = {}
    for element in channel.iter("wp:author"):
        login = _text(element, "wp:author_login").strip()
        authors[login.lower()] = _text(element, "wp:author_display_name").strip() or login
    categories, tags = {}, {}
    for element in channel.iter("wp:category"):
        term = Term(name=_text(element, "wp:cat_name").strip(),
                    slug=unquote(_text(element, "wp:category_nicename").strip()),
                    parent=unquote(_text(element, "wp:category_parent").strip()),
                    id=_int(_text(element, "wp:term_id"), name, "wp:term_id", default=0))
        categories[term.slug] = term
    for element in channel.iter("wp:tag"):
        term = Term(name=_text(element, "wp:tag_name").strip(), slug=unquote(_text(element, "wp:tag_slug").strip()),
                    id=_int(_text(element, "wp:term_id"), name, "wp:term_id", default=0))
        tags[term.slug] = term
    elements = channel.findall("item")
    items = [_item(element, line, name, authors) for element, line in zip(elements, item_lines)]
    link = _text(channel, "link").strip()
    return Export(title=_text(channel, "title").strip(), link=link,
                  blog_url=_text(channel, "wp:base_blog_url").strip() or link,
                  language=_text(channel, "language").strip(), authors=authors, categories=categories,
                  tags=tags, items=items)
