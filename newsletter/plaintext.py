"""The plain-text alternative of a post, rendered from its Markdown source.

Python-Markdown parses the source with the site's own extensions; instead of
serialising its element tree to HTML we walk it and write text a reader can
follow without any HTML: headings underlined, lists kept, quotes prefixed with
« > », links as numbered references [1] listed at the end, paragraphs wrapped
at 72 columns without ever breaking a URL. French typography (fix_text) is
applied to the prose of a French post, never to URLs or code.
"""
import html
import re
import textwrap
from pathlib import Path
from urllib.parse import urljoin
from xml.etree import ElementTree

import markdown
from markdown.treeprocessors import Treeprocessor

from blogcore.header import split_header
from blogcore.typography import fix_text

WIDTH = 72
BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "hr", "div",
          "table", "dl", "dt", "dd", "figure", "figcaption"}
UNDERLINES = {"h1": "=", "h2": "-"}
_STASH = re.compile("\x02wzxhzdk:(\\d+)\x03")
_LEFTOVER = re.compile("\x02[^\x03]*\x03")  # other placeholders (the footnotes' non-breaking space)
_PROTECTED = re.compile("qqprot(\\d+)qq")  # letters and digits only: fix_text leaves them alone
_TAG = re.compile(r"<[^>]+>")
_HREF = re.compile(r'<a\s[^>]*?href\s*=\s*"([^"]*)"', re.IGNORECASE)
_SRC = re.compile(r'<img\s[^>]*?src\s*=\s*"([^"]*)"', re.IGNORECASE)
HARD_BREAK = "\ue002"  # a <br>: the only line break kept inside a paragraph


_SPACES = re.compile(r"[ \t\n\r\f\v]+")


def squash(text: str) -> str:
    """Collapse ASCII white space only: the no-break spaces of French typography stay."""
    return _SPACES.sub(" ", text).strip()


class _Capture(Treeprocessor):
    """Runs last and keeps the finished element tree for us."""

    def run(self, root):
        self.md.captured_root = root


class _Extension(markdown.Extension):
    def extendMarkdown(self, md):
        md.treeprocessors.register(_Capture(md), "capture_tree", -100)


def strip_metadata(source: str) -> str:
    """The post without its metadata header, as Pelican's Markdown reader leaves it (blogcore.header)."""
    return split_header(source.lstrip("\ufeff"))[1]


class _Refs:
    """Numbered link references, one number per distinct URL."""

    def __init__(self):
        self.urls: list[str] = []

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1


class _Renderer:
    def __init__(self, md, base_url, hrefs, srcs, french=True):
        self.md = md
        self.french = french
        self.base_url = base_url
        self.hrefs = iter(hrefs) if hrefs is not None else None
        self.srcs = iter(srcs) if srcs is not None else None
        self.refs = _Refs()
        self.protected: list[str] = []

    # -- inline ---------------------------------------------------------------

    def stash(self, text: str) -> str:
        """Resolve Markdown's placeholders (raw HTML, entities, smart punctuation) to text."""
        def one(match):
            index = int(match[1])
            blocks = self.md.htmlStash.rawHtmlBlocks
            raw = blocks[index] if index < len(blocks) else ""
            raw = raw if isinstance(raw, str) else ElementTree.tostring(raw, encoding="unicode")
            return html.unescape(_TAG.sub("", raw))
        return _LEFTOVER.sub("", _STASH.sub(one, text or ""))

    def protect(self, text: str) -> str:
        """Keep a URL or code away from fix_text and from line breaking."""
        self.protected.append(text)
        return f"qqprot{len(self.protected) - 1}qq"

    def url(self, raw: str, mapped) -> str:
        following = next(mapped, None) if mapped is not None else None
        if following:
            return html.unescape(following)
        raw = (raw or "").strip()
        if raw.startswith(("{", "|")):  # an intra-site link Pelican resolved: the post itself is the best guess
            return self.base_url
        return urljoin(self.base_url, raw)

    def inline(self, element, skip_text=False) -> str:
        out = [] if skip_text else [self.stash(element.text)]
        for child in element:
            out.append(self.inline_element(child))
            out.append(self.stash(child.tail))
        return "".join(out)

    def inline_element(self, el) -> str:
        tag = el.tag
        classes = (el.get("class") or "").split()
        if tag == "a":
            if "footnote-backref" in classes:
                next(self.hrefs, None) if self.hrefs is not None else None
                return ""
            url = self.url(el.get("href"), self.hrefs)
            label = self.inline(el)
            if "footnote-ref" in classes:
                return f" (note {label.strip('[]')})"
            if url.startswith("mailto:") and label.strip() == url[len("mailto:"):]:
                return self.protect(label)
            if not label.strip() or label.strip() == url:
                return self.protect(url)
            return f"{label} {self.protect(f'[{self.refs.number(url)}]')}"
        if tag == "img":
            url = self.url(el.get("src"), self.srcs)
            alt = self.stash(el.get("alt") or "").strip()
            label = f"[Image : {alt}]" if alt else "[Image]"
            return f"{label} {self.protect(f'[{self.refs.number(url)}]')}"
        if tag == "code":
            return self.protect(html.unescape(self.stash(el.text or "")))
        if tag == "br":
            return HARD_BREAK
        if tag in ("strong", "b"):
            return f"*{self.inline(el)}*"
        if tag in ("em", "i"):
            return f"_{self.inline(el)}_"
        if tag == "sup":
            return self.inline(el)
        return self.inline(el)

    def restore(self, text: str) -> str:
        return _PROTECTED.sub(lambda m: self.protected[int(m[1])], text)

    def prose(self, text: str) -> str:
        """Typography on the prose only (French posts); protected parts come back untouched afterwards."""
        return fix_text(text) if self.french else text

    def wrap(self, text: str, first: str = "", rest: str = "", width: int = WIDTH) -> list[str]:
        lines = []
        for n, hard in enumerate(self.prose(squash(text)).split(HARD_BREAK)):
            words = squash(hard)
            lead = first if n == 0 else rest
            wrapped = textwrap.wrap(words, width=width, initial_indent=lead, subsequent_indent=rest,
                                    break_long_words=False, break_on_hyphens=False) or [lead.rstrip()]
            lines.extend(self.restore(line) for line in wrapped)
        return lines

    # -- blocks ---------------------------------------------------------------

    def blocks(self, element, first: str = "", rest: str = "") -> list[list[str]]:
        """The element's children as a list of blocks (each a list of lines)."""
        out: list[list[str]] = []
        inline_run = [self.stash(element.text)]

        def flush():
            text = "".join(inline_run).strip()
            inline_run.clear()
            if text:
                out.append(self.wrap(text, first if not out else rest, rest))

        for child in element:
            if child.tag in BLOCKS:
                flush()
                out.extend(self.block(child, first if not out else rest, rest))
            else:
                inline_run.append(self.inline_element(child))
            tail = self.stash(child.tail)
            if tail:
                inline_run.append(tail)
        flush()
        return out

    def block(self, el, first: str, rest: str) -> list[list[str]]:
        tag = el.tag
        if tag == "p":
            text = self.inline(el).strip()
            return [self.wrap(text, first, rest)] if text else []
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            title = self.restore(self.prose(squash(self.inline(el))))
            mark = UNDERLINES.get(tag, "~")
            return [[first + title, rest + mark * len(title)]]
        if tag in ("ul", "ol"):
            items = [child for child in el if child.tag == "li"]
            start = int(el.get("start") or 1)
            lines = []
            for n, item in enumerate(items):
                bullet = f"{start + n}. " if tag == "ol" else "- "
                pad = " " * len(bullet)
                sub = self.blocks(item, first=rest + bullet, rest=rest + pad)
                for i, block in enumerate(sub):
                    if i and not (block and block[0].startswith(rest + pad)):
                        block = [rest + pad + line.lstrip() for line in block]
                    lines.extend(block)
            return [lines] if lines else []
        if tag == "blockquote":
            inner = self.blocks(el, first=rest + "> ", rest=rest + "> ")
            lines = []
            for i, block in enumerate(inner):
                if i:
                    lines.append(rest + ">")
                lines.extend(block)
            return [lines] if lines else []
        if tag == "pre":
            code = html.unescape(self.stash("".join(el.itertext()))).rstrip("\n")
            return [[(rest + "    " + line).rstrip() for line in code.split("\n")]]
        if tag == "hr":
            return [[rest + "* * *"]]
        if tag == "div" and "footnote" in (el.get("class") or "").split():
            notes = [child for child in el if child.tag == "ol"]
            out = [[rest + "Notes", rest + "-----"]]
            for ol in notes:
                for n, li in enumerate(child for child in ol if child.tag == "li"):
                    for i, block in enumerate(self.blocks(li, first=rest + f"({n + 1}) ", rest=rest + "    ")):
                        out.append(block)
            return out
        if tag == "table":
            lines = []
            for row in el.iter("tr"):
                cells = [squash(self.inline(cell)) for cell in row if cell.tag in ("td", "th")]
                lines.extend(self.wrap(" | ".join(cells), rest, rest + "  "))
            return [lines] if lines else []
        if tag == "dt":
            return [self.wrap(self.inline(el).strip(), rest, rest)]
        if tag == "dd":
            return self.blocks(el, first=rest + "    ", rest=rest + "    ")
        # div, figure, dl, li without list, …: their children, in order.
        return self.blocks(el, first, rest)


def render_text(source: str, base_url: str, markdown_settings: dict | None = None,
                content_html: str | None = None, french: bool = True) -> str:
    """The plain text of one post's Markdown body (metadata header removed).

    `content_html` is the post as the site built it; its links and images, in
    document order, replace those of the Markdown tree so that intra-site
    links ({filename}…) come out exactly as the site resolved them.
    """
    settings = markdown_settings or {}
    extensions = list(settings.get("extensions", []))
    configs = dict(settings.get("extension_configs", {}))
    extensions += [name for name in configs if name not in extensions]
    md = markdown.Markdown(extensions=[*extensions, _Extension()], extension_configs=configs,
                           output_format="html")
    md.convert(strip_metadata(source))
    root = md.captured_root
    hrefs = srcs = None
    if content_html is not None:
        found_hrefs, found_srcs = _HREF.findall(content_html), _SRC.findall(content_html)
        if len(found_hrefs) == sum(1 for _ in root.iter("a")):
            hrefs = found_hrefs
        if len(found_srcs) == sum(1 for _ in root.iter("img")):
            srcs = found_srcs
    renderer = _Renderer(md, base_url, hrefs, srcs, french)
    paragraphs = ["\n".join(block) for block in renderer.blocks(root)]
    text = "\n\n".join(p for p in paragraphs if p.strip())
    if renderer.refs.urls:
        text += "\n\n" + "\n".join(f"[{n}] {url}" for n, url in enumerate(renderer.refs.urls, 1))
    return text + "\n"


def render_file(path: str | Path, base_url: str, markdown_settings: dict | None = None,
                content_html: str | None = None) -> str:
    return render_text(Path(path).read_text(encoding="utf-8"), base_url, markdown_settings, content_html)
